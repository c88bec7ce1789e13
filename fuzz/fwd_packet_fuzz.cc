// The forwarder's packet path as a guest drives it: the vnet header check a frame passes on its
// way in (checkVnetHdr), then what a port without vnet header gets: GSO segmentation or
// checksum completion. The oracle recomputes every emitted segment's IP/TCP/UDP lengths and
// checksums with its own (byte-wise) arithmetic, checks the payload was carried over intact and
// the segment count within the limits; ASan sees any byte read or written outside the frame
// or the scratch buffer (both are exactly as large as the engine's).
//
// Input: 10 bytes of struct virtio_net_hdr (host byte order, as a tap reads it), 2 bytes (little
// endian) of zero padding to append, then the frame: the padding lets small inputs reach the
// 64 KiB frames where lengths wrap, which byte-level mutation of 64 KiB inputs rarely does.
// Build (self-contained; `npm run fuzz` also links the rest of the addon's non-N-API sources):
//   clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
//     -Inative fuzz/fwd_packet_fuzz.cc native/fwd/packet.cc -o build-fuzz/fwd_packet_fuzz
//   build-fuzz/fwd_packet_fuzz fuzz/corpus/fwd_packet_fuzz
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "fwd/packet.h"

using namespace vnl::fwd;

namespace {

// The engine's read buffer (kBufLen in fwd/engine.h): no longer frame ever reaches this code.
constexpr size_t kMaxFrame = 65536 + 4096;

[[noreturn]] void fail() { __builtin_trap(); }
void require(bool ok) { if (!ok) fail(); }

uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

// RFC 1071 the slow way, independent of csumAdd's 8-byte loop.
uint32_t sum16(const uint8_t* p, size_t n, uint32_t s = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) s += be16(p + i);
  if (n & 1) s += uint32_t(p[n - 1]) << 8;
  return s;
}
uint16_t fold(uint64_t s) {
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(s);
}

// One segment as a receiver would check it.
void checkSegment(const uint8_t* frame, const SegLayout& L, const uint8_t* s, size_t len, size_t mss,
                  size_t off, size_t& carried) {
  require(len >= L.payload && len <= kSegScratch);
  size_t n = len - L.payload;
  require(n <= mss);
  require(std::memcmp(s, frame, 14) == 0);  // Ethernet header carried as is
  size_t l4len = len - L.l4;
  uint64_t pseudo;
  const uint8_t* ip = s + L.l3;
  if (!L.v6) {
    require((ip[0] >> 4) == 4);
    require(be16(ip + 2) == len - L.l3);               // total length: no wrap, no slack
    require(fold(sum16(ip, L.l4 - L.l3)) == 0xffff);    // header checksum
    pseudo = sum16(ip + 12, 8) + (L.udp ? 17 : 6) + l4len;
  } else {
    require((ip[0] >> 4) == 6);
    require(be16(ip + 4) == len - L.l4);               // payload length
    pseudo = sum16(ip + 8, 32) + (L.udp ? 17 : 6) + l4len;
  }
  const uint8_t* l4 = s + L.l4;
  if (L.udp) {
    require(be16(l4 + 4) == l4len);
    require(be16(l4 + 6) != 0);  // 0 would mean "no checksum"
  }
  require(fold(sum16(l4, l4len, 0) + pseudo) == 0xffff);
  require(std::memcmp(s + L.payload, frame + L.payload + off, n) == 0);
  carried += n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < sizeof(VnetHdr) + 2) return 0;
  VnetHdr h;
  std::memcpy(&h, data, sizeof h);
  size_t pad = size_t(data[sizeof h]) | size_t(data[sizeof h + 1]) << 8;
  size_t len = size - sizeof h - 2 + pad;
  if (len > kMaxFrame) return 0;
  // Exactly `len` bytes on the heap: one byte past the frame is an ASan report.
  std::vector<uint8_t> frame(data + sizeof h + 2, data + size);
  frame.resize(len, 0);
  const uint8_t* f = frame.data();

  Verdict in = checkVnetHdr(f, len, h);
  if (in != Verdict::Ok) return 0;  // dropped on the way in: nothing else runs

  if (h.gsoType != kGsoNone) {
    SegLayout L{};
    Verdict lv = segLayout(f, len, h, L);
    // What passed the check is either cut without complaint or passed whole (Unsupported).
    require(lv == Verdict::Ok || lv == Verdict::Unsupported);
    std::vector<uint8_t> scratch(kSegScratch);
    size_t count = 0, carried = 0;
    int r = segment(f, len, h, scratch.data(), scratch.size(), [&](const uint8_t* s, size_t sl) {
      require(s == scratch.data());
      checkSegment(f, L, s, sl, h.gsoSize, count * h.gsoSize, carried);
      count++;
    });
    if (lv == Verdict::Unsupported) {
      require(r == -1 && count == 0);
      return 0;
    }
    require(r >= 1 && size_t(r) == count && count <= kMaxGsoSegs && count == L.segs);
    require(carried == len - L.payload);
    return 0;
  }

  if (h.flags & kHdrNeedsCsum) {
    // The checksum field holds the pseudo-header sum; completed, the region plus that sum folds
    // to 0xffff (what the receiver checks once it adds its own pseudo header).
    size_t start = h.csumStart, at = start + h.csumOffset;
    uint16_t pseudo = be16(f + at);
    require(completeChecksum(frame.data(), len, h));
    // (A field at an odd distance from csum_start straddles two 16-bit words: no such equation.)
    require(fold(sum16(f + start, len - start) + pseudo) == 0xffff || (at - start) % 2 == 1);
  }
  return 0;
}
