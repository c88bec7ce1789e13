// Frame-level helpers for the forwarder's data path: the virtio-net header, checksum
// completion and software segmentation of GSO frames. No I/O, no allocation.
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

// Fills in a CHECKSUM_PARTIAL checksum (the field already holds the pseudo-header sum).
// Returns false when csumStart/csumOffset point outside the frame.
bool completeChecksum(uint8_t* frame, size_t len, const VnetHdr& h);

// Splits a TCP (IPv4/IPv6) or UDP-L4 GSO frame into wire-sized frames with correct headers and
// checksums. `emit(ptr, len)` is called once per segment, each built in `scratch` (at least
// headers + gsoSize bytes). Returns the number of segments, or -1 when the frame cannot be
// segmented (unsupported type, VLAN tag, IP options beyond the frame, bad sizes).
template <class Emit>
int segment(const uint8_t* frame, size_t len, const VnetHdr& h, uint8_t* scratch, size_t scratchLen, Emit&& emit);

// Internals shared with the template.
uint32_t csumAdd(uint32_t sum, const uint8_t* p, size_t n);
uint16_t csumFold(uint32_t sum);
struct SegLayout {
  size_t l3;       // offset of the IP header
  size_t l4;       // offset of TCP/UDP header
  size_t payload;  // offset of the payload
  bool v6;
  bool udp;
};
bool segLayout(const uint8_t* frame, size_t len, const VnetHdr& h, SegLayout& out);
// Builds segment i (payload [off, off+n)) into scratch; returns its length.
size_t buildSegment(const uint8_t* frame, const SegLayout& L, size_t off, size_t n, bool first, bool last,
                    uint32_t index, uint8_t* scratch);

template <class Emit>
int segment(const uint8_t* frame, size_t len, const VnetHdr& h, uint8_t* scratch, size_t scratchLen, Emit&& emit) {
  SegLayout L;
  if (!segLayout(frame, len, h, L)) return -1;
  size_t mss = h.gsoSize;
  if (mss == 0 || L.payload + mss > scratchLen) return -1;
  size_t total = len - L.payload;
  int count = 0;
  for (size_t off = 0; off < total || (total == 0 && count == 0); off += mss) {
    size_t n = total - off < mss ? total - off : mss;
    size_t segLen = buildSegment(frame, L, off, n, off == 0, off + n >= total, static_cast<uint32_t>(count), scratch);
    emit(scratch, segLen);
    count++;
    if (total == 0) break;
  }
  return count;
}

}  // namespace vnl::fwd
