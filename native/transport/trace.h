// NODE_DEBUG=vnetlink: every netlink message sent or received, one line each on stderr, as
// `VNETLINK <pid>: > RTM_NEWLINK flags=REQUEST,ACK,CREATE seq=7 len=64 attrs ...`. Off unless the
// TS layer turns it on (util.debuglog); when off it costs one relaxed atomic load per datagram.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace vnl {

extern std::atomic<bool> gTrace;

// Prints each message of a datagram; `out` is true for what we send. Never throws.
void traceDatagramSlow(int fd, const uint8_t* p, size_t len, bool out) noexcept;

inline void traceDatagram(int fd, const uint8_t* p, size_t len, bool out) noexcept {
  if (gTrace.load(std::memory_order_relaxed)) traceDatagramSlow(fd, p, len, out);
}

// Attribute types from a message's top level down to one attribute; kTraceAnyAttr matches
// every type at its depth (the numbered entries of a list).
using TraceAttrPath = std::vector<int>;
constexpr int kTraceAnyAttr = -1;

// Names a generic netlink family's message type in traces and lists the attributes of its
// messages (both ways) that hold secrets: those print as their length only, and so does any
// nest on their path that is not printed as a nest. Process-wide, like the trace switch.
void traceGenlFamily(uint16_t id, const std::string& name, const std::vector<TraceAttrPath>& secrets) noexcept;

}  // namespace vnl
