#include "fwd/packet.h"

#include <cstring>

namespace vnl::fwd {

static inline uint16_t rd16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
static inline void wr16(uint8_t* p, uint16_t v) { p[0] = v >> 8; p[1] = v & 0xff; }
static inline uint32_t rd32(const uint8_t* p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }
static inline void wr32(uint8_t* p, uint32_t v) { p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v; }

uint32_t csumAdd(uint32_t sum, const uint8_t* p, size_t n) {
  // Sums little-endian words 8 bytes at a time; the one's complement sum does not depend on
  // byte order except for a final swap (RFC 1071), so only the folded result is swapped.
  uint64_t s = 0;
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    s += w;
    s += s < w;  // end-around carry
  }
  s = (s & 0xffffffff) + (s >> 32);  // < 2^33: the tail below cannot overflow
  for (; n >= 2; p += 2, n -= 2) {
    uint16_t w;
    std::memcpy(&w, p, 2);
    s += w;
  }
  if (n) s += p[0];
  s = (s & 0xffffffff) + (s >> 32);
  s = (s & 0xffffffff) + (s >> 32);
  s = (s & 0xffff) + (s >> 16);
  s = (s & 0xffff) + (s >> 16);
  uint32_t le = static_cast<uint32_t>(s);
  uint32_t be = ((le >> 8) | (le << 8)) & 0xffff;
  return sum + be;
}

uint16_t csumFold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

bool completeChecksum(uint8_t* frame, size_t len, const VnetHdr& h) {
  size_t start = h.csumStart, at = size_t(h.csumStart) + h.csumOffset;
  if (start >= len || at + 2 > len) return false;
  uint16_t c = static_cast<uint16_t>(~csumFold(csumAdd(0, frame + start, len - start)));
  // 0 and 0xffff verify alike; 0xffff keeps UDP from reading as "no checksum".
  wr16(frame + at, c ? c : 0xffff);
  return true;
}

bool segLayout(const uint8_t* f, size_t len, const VnetHdr& h, SegLayout& L) {
  uint8_t type = h.gsoType & ~kGsoEcn;
  if (type != kGsoTcp4 && type != kGsoTcp6 && type != kGsoUdpL4) return false;
  if (len < 14) return false;
  uint16_t et = rd16(f + 12);
  L.l3 = 14;
  if (et == 0x0800) {
    if (len < L.l3 + 20) return false;
    size_t ihl = size_t(f[L.l3] & 0x0f) * 4;
    if (ihl < 20 || len < L.l3 + ihl) return false;
    uint8_t proto = f[L.l3 + 9];
    L.v6 = false;
    L.l4 = L.l3 + ihl;
    L.udp = proto == 17;
    if (proto != 6 && proto != 17) return false;
  } else if (et == 0x86dd) {
    if (len < L.l3 + 40) return false;
    uint8_t nh = f[L.l3 + 6];
    L.v6 = true;
    L.l4 = L.l3 + 40;
    L.udp = nh == 17;
    if (nh != 6 && nh != 17) return false;  // extension headers: not segmented here
  } else {
    return false;
  }
  if (L.udp != (type == kGsoUdpL4)) return false;
  if (L.udp) {
    L.payload = L.l4 + 8;
  } else {
    if (len < L.l4 + 20) return false;
    size_t doff = size_t(f[L.l4 + 12] >> 4) * 4;
    if (doff < 20) return false;
    L.payload = L.l4 + doff;
  }
  return L.payload <= len;
}

size_t buildSegment(const uint8_t* f, const SegLayout& L, size_t off, size_t n, bool first, bool last,
                    uint32_t index, uint8_t* s) {
  std::memcpy(s, f, L.payload);
  std::memcpy(s + L.payload, f + L.payload + off, n);
  size_t l4len = L.payload - L.l4 + n;
  uint8_t* ip = s + L.l3;
  uint8_t* l4 = s + L.l4;
  uint32_t pseudo;
  uint8_t proto = L.udp ? 17 : 6;
  if (!L.v6) {
    wr16(ip + 2, static_cast<uint16_t>(L.l4 - L.l3 + l4len));
    if (!L.udp) wr16(ip + 4, static_cast<uint16_t>(rd16(ip + 4) + index));
    wr16(ip + 10, 0);
    wr16(ip + 10, static_cast<uint16_t>(~csumFold(csumAdd(0, ip, L.l4 - L.l3))));
    pseudo = csumAdd(0, ip + 12, 8) + proto + static_cast<uint32_t>(l4len);
  } else {
    wr16(ip + 4, static_cast<uint16_t>(l4len));
    pseudo = csumAdd(0, ip + 8, 32) + proto + static_cast<uint32_t>(l4len);
  }
  uint8_t* check;
  if (L.udp) {
    wr16(l4 + 4, static_cast<uint16_t>(l4len));
    check = l4 + 6;
  } else {
    wr32(l4 + 4, rd32(l4 + 4) + static_cast<uint32_t>(off));
    uint8_t flags = l4[13];
    if (!last) flags &= ~(0x01 | 0x08);  // FIN, PSH only on the last segment
    if (!first) flags &= ~0x80;          // CWR only on the first
    l4[13] = flags;
    check = l4 + 16;
  }
  wr16(check, 0);
  uint16_t c = static_cast<uint16_t>(~csumFold(csumAdd(pseudo, l4, l4len)));
  wr16(check, c ? c : 0xffff);
  return L.payload + n;
}

}  // namespace vnl::fwd
