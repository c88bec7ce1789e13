// NODE_DEBUG=vnetlink: every netlink message sent or received, one line each on stderr, as
// `VNETLINK <pid>: > RTM_NEWLINK flags=REQUEST,ACK,CREATE seq=7 len=64 attrs ...`. Off unless the
// TS layer turns it on (util.debuglog); when off it costs one relaxed atomic load per datagram.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace vnl {

extern std::atomic<bool> gTrace;

// Prints each message of a datagram; `out` is true for what we send. Never throws.
void traceDatagramSlow(int fd, const uint8_t* p, size_t len, bool out) noexcept;

inline void traceDatagram(int fd, const uint8_t* p, size_t len, bool out) noexcept {
  if (gTrace.load(std::memory_order_relaxed)) traceDatagramSlow(fd, p, len, out);
}

}  // namespace vnl
