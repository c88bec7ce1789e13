// The slow part of an operation off the handle's thread. An operation that must start on the
// handle's thread (to be in its namespace) but then waits (a daemon's launcher) hands the wait
// to finishOffThread and returns; the handle runs `rest` on a waiter thread of its own and
// settles the call with what it returns or throws, so other calls on the handle go on.
// `rest` must return promptly once `cancelFd` is readable (the handle closes, the process exits).
#pragma once
#include <functional>
#include <utility>

#include "codec/value.h"

namespace vnl {

using OffThreadRest = std::function<Value(int cancelFd)>;

// The continuation the current operation asked for (handle thread only).
inline OffThreadRest& offThreadSlot() {
  thread_local OffThreadRest rest;
  return rest;
}

inline void finishOffThread(OffThreadRest rest) { offThreadSlot() = std::move(rest); }

}  // namespace vnl
