// Frame-level helpers for the forwarder's data path: the virtio-net header, checksum
// completion and software segmentation of GSO frames. No I/O, no allocation.
// Everything here reads frames a guest wrote: every offset is checked against the frame.
#pragma once
#include <cstddef>
#include <cstdint>

namespace vnl::fwd {

// struct virtio_net_hdr as the tap device reads and writes it (host byte order).
struct VnetHdr {
  uint8_t flags;
  uint8_t gsoType;
  uint16_t hdrLen;
  uint16_t gsoSize;
  uint16_t csumStart;
  uint16_t csumOffset;
};
static_assert(sizeof(VnetHdr) == 10, "virtio_net_hdr is 10 bytes");

constexpr uint8_t kHdrNeedsCsum = 1;  // VIRTIO_NET_HDR_F_NEEDS_CSUM
constexpr uint8_t kHdrDataValid = 2;  // VIRTIO_NET_HDR_F_DATA_VALID
constexpr uint8_t kGsoNone = 0, kGsoTcp4 = 1, kGsoUdp = 3, kGsoTcp6 = 4, kGsoUdpL4 = 5, kGsoEcn = 0x80;

// Limits on the GSO frames the forwarder accepts (README, "Limits"). A guest picks gso_size,
// and software segmentation costs one write per segment: without a bound, gso_size 1 turns one
// 64 KiB frame into 64 Ki writes while every other port on the worker waits.
// The smallest gso_size taken: TCP_MIN_MSS, the smallest MSS a Linux socket may be set to.
constexpr uint16_t kMinGsoSize = 88;
// The most segments one frame may become: UDP_MAX_SEGMENTS, the kernel's own cap on a
// virtio_net_hdr UDP GSO frame; a 64 KiB TCP frame at the 536-byte default MSS needs 123.
constexpr size_t kMaxGsoSegs = 128;
// gso_size 0xffff is GSO_BY_FRAGS inside the kernel, which refuses it in a virtio_net_hdr.
constexpr uint16_t kGsoByFrags = 0xffff;
// The IPv4 total length and IPv6 payload length fields are 16 bits.
constexpr size_t kMaxIpLen = 65535;

enum class Verdict : uint8_t {
  Ok,
  Unsupported,  // well-formed, but not something segment() cuts (VLAN tag, UFO, extension headers)
  Malformed,    // offsets outside the frame, unknown GSO type, lengths the IP header contradicts
  GsoLimit,     // outside the limits above, or a segment whose length the IP header cannot hold
};

// Checks a frame's vnet header as the forwarder reads it from a port: checksum offsets inside
// the frame, a known GSO type, gso_size and segment count within the limits, and (for the
// GSO frames segment() handles) IP lengths that agree with the frame. Unsupported is Ok here:
// such frames still pass whole between ports with a vnet header.
Verdict checkVnetHdr(const uint8_t* frame, size_t len, const VnetHdr& h);

// Fills in a CHECKSUM_PARTIAL checksum (the field already holds the pseudo-header sum).
// Returns false when csumStart/csumOffset point outside the frame.
bool completeChecksum(uint8_t* frame, size_t len, const VnetHdr& h);

// The scratch space segment() needs: headers plus the largest segment.
constexpr size_t kSegScratch = 14 + 40 + kMaxIpLen;  // Ethernet + IPv6 header + the largest payload length

// Splits a TCP (IPv4/IPv6) or UDP-L4 GSO frame into wire-sized frames with correct headers and
// checksums. `emit(ptr, len)` is called once per segment, each built in `scratch` (at least
// kSegScratch bytes, or headers + gsoSize). Returns the number of segments, or -1 (unsupported),
// -2 (malformed) or -3 (over the limits) with nothing emitted.
template <class Emit>
int segment(const uint8_t* frame, size_t len, const VnetHdr& h, uint8_t* scratch, size_t scratchLen, Emit&& emit);

// Internals shared with the template (and the fuzz harness).
uint32_t csumAdd(uint32_t sum, const uint8_t* p, size_t n);
uint16_t csumFold(uint32_t sum);
struct SegLayout {
  size_t l3;       // offset of the IP header
  size_t l4;       // offset of TCP/UDP header
  size_t payload;  // offset of the payload
  size_t segs;     // segments the frame becomes
  bool v6;
  bool udp;
};
Verdict segLayout(const uint8_t* frame, size_t len, const VnetHdr& h, SegLayout& out);
// Builds segment `index` (payload [off, off+n)) into scratch; returns its length.
size_t buildSegment(const uint8_t* frame, const SegLayout& L, size_t off, size_t n, bool first, bool last,
                    uint32_t index, uint8_t* scratch);

template <class Emit>
int segment(const uint8_t* frame, size_t len, const VnetHdr& h, uint8_t* scratch, size_t scratchLen, Emit&& emit) {
  SegLayout L;
  switch (segLayout(frame, len, h, L)) {
    case Verdict::Ok: break;
    case Verdict::Unsupported: return -1;
    case Verdict::Malformed: return -2;
    case Verdict::GsoLimit: return -3;
  }
  size_t mss = h.gsoSize;
  size_t total = len - L.payload;
  size_t biggest = total < mss ? total : mss;
  if (L.payload + biggest > scratchLen) return -1;
  // segLayout bounded L.segs (<= kMaxGsoSegs): this loop runs at most that many times.
  for (size_t i = 0; i < L.segs; i++) {
    size_t off = i * mss;
    size_t n = total - off < mss ? total - off : mss;
    size_t segLen = buildSegment(frame, L, off, n, i == 0, i + 1 == L.segs, static_cast<uint32_t>(i), scratch);
    emit(scratch, segLen);
  }
  return static_cast<int>(L.segs);
}

}  // namespace vnl::fwd
