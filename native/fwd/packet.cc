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

// The kernel's rule (skb_partial_csum_set): the 2-byte field lies inside the frame.
static inline bool csumInFrame(size_t len, const VnetHdr& h) {
  size_t start = h.csumStart, at = size_t(h.csumStart) + h.csumOffset;
  return start < len && at + 2 <= len;
}

bool completeChecksum(uint8_t* frame, size_t len, const VnetHdr& h) {
  if (!csumInFrame(len, h)) return false;
  size_t start = h.csumStart, at = start + h.csumOffset;
  uint16_t c = static_cast<uint16_t>(~csumFold(csumAdd(0, frame + start, len - start)));
  // 0 and 0xffff verify alike; 0xffff keeps UDP from reading as "no checksum".
  wr16(frame + at, c ? c : 0xffff);
  return true;
}

Verdict checkVnetHdr(const uint8_t* frame, size_t len, const VnetHdr& h) {
  if ((h.flags & kHdrNeedsCsum) && !csumInFrame(len, h)) return Verdict::Malformed;
  if (h.gsoType == kGsoNone) return Verdict::Ok;
  uint8_t type = h.gsoType & ~kGsoEcn;
  // As virtio_net_hdr_to_skb: a known type (ECN alone is not one), and no gso_size the
  // kernel would refuse.
  if (type != kGsoTcp4 && type != kGsoUdp && type != kGsoTcp6 && type != kGsoUdpL4) return Verdict::Malformed;
  if (h.gsoSize == 0 || h.gsoSize == kGsoByFrags) return Verdict::Malformed;
  if (h.gsoSize < kMinGsoSize) return Verdict::GsoLimit;
  SegLayout L;
  Verdict v = segLayout(frame, len, h, L);
  return v == Verdict::Unsupported ? Verdict::Ok : v;
}

Verdict segLayout(const uint8_t* f, size_t len, const VnetHdr& h, SegLayout& L) {
  uint8_t type = h.gsoType & ~kGsoEcn;
  if (type != kGsoTcp4 && type != kGsoTcp6 && type != kGsoUdpL4) return Verdict::Unsupported;
  if (h.gsoSize == 0 || h.gsoSize == kGsoByFrags) return Verdict::Malformed;
  if (h.gsoSize < kMinGsoSize) return Verdict::GsoLimit;
  if (len < 14) return Verdict::Malformed;
  uint16_t et = rd16(f + 12);
  L.l3 = 14;
  uint8_t proto;
  size_t ipLen;  // what the IP header says follows it (total length / payload length); 0: unset
  if (et == 0x0800) {
    if (type == kGsoTcp6) return Verdict::Malformed;
    if (len < L.l3 + 20) return Verdict::Malformed;
    if ((f[L.l3] >> 4) != 4) return Verdict::Malformed;
    size_t ihl = size_t(f[L.l3] & 0x0f) * 4;
    if (ihl < 20 || len < L.l3 + ihl) return Verdict::Malformed;
    if (rd16(f + L.l3 + 6) & 0x3fff) return Verdict::Malformed;  // a fragment is never a GSO frame
    proto = f[L.l3 + 9];
    L.v6 = false;
    L.l4 = L.l3 + ihl;
    size_t tot = rd16(f + L.l3 + 2);
    if (tot && tot <= ihl) return Verdict::Malformed;
    ipLen = tot ? tot - ihl : 0;  // what follows the IP header
  } else if (et == 0x86dd) {
    if (type == kGsoTcp4) return Verdict::Malformed;
    if (len < L.l3 + 40) return Verdict::Malformed;
    if ((f[L.l3] >> 4) != 6) return Verdict::Malformed;
    proto = f[L.l3 + 6];
    L.v6 = true;
    L.l4 = L.l3 + 40;
    ipLen = rd16(f + L.l3 + 4);
  } else {
    return Verdict::Unsupported;  // VLAN tags and the rest: passed whole, never cut here
  }
  if (proto != 6 && proto != 17) return Verdict::Unsupported;  // IPv6 extension headers among them
  L.udp = proto == 17;
  if (L.udp != (type == kGsoUdpL4)) return Verdict::Malformed;
  // The IP header must describe this very frame: a shorter length would make us cut trailing
  // bytes into segments, a longer one means the frame was cut short. 0 is the kernel's "as long
  // as the frame" for TCP GSO (BIG TCP); the segments below still get lengths that fit.
  if (ipLen ? ipLen != len - L.l4 : L.udp) return Verdict::Malformed;
  if (L.udp) {
    if (len < L.l4 + 8) return Verdict::Malformed;
    L.payload = L.l4 + 8;
  } else {
    if (len < L.l4 + 20) return Verdict::Malformed;
    size_t doff = size_t(f[L.l4 + 12] >> 4) * 4;
    if (doff < 20) return Verdict::Malformed;
    L.payload = L.l4 + doff;
  }
  if (L.payload > len) return Verdict::Malformed;
  // Where the guest asked for checksum offload, it must name this L4 header's checksum field
  // (the kernel refuses anything else on a GSO frame).
  if ((h.flags & kHdrNeedsCsum) && (h.csumStart != L.l4 || h.csumOffset != (L.udp ? 6 : 16))) return Verdict::Malformed;
  size_t mss = h.gsoSize, total = len - L.payload;
  L.segs = total == 0 ? 1 : (total + mss - 1) / mss;
  if (L.segs > kMaxGsoSegs) return Verdict::GsoLimit;
  // The largest segment's IP length must fit its 16-bit field (65535 + headers would wrap).
  size_t biggest = total < mss ? total : mss;
  size_t segIpLen = L.payload - (L.v6 ? L.l4 : L.l3) + biggest;
  if (segIpLen > kMaxIpLen) return Verdict::GsoLimit;
  return Verdict::Ok;
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
    wr16(ip + 4, static_cast<uint16_t>(rd16(ip + 4) + index));  // one IP ID per segment, as the kernel's GSO
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
