// The rtnetlink decoders shared by list/get and by monitors: one message in, the same object
// `list`/`get` return out. With `names` given (an index->name map the caller keeps), no
// lookup is made through `ctx`, so a monitor's reader thread (which is not in the handle's
// namespace) can decode safely; without it, names are looked up on the namespace thread.
#pragma once
#include <linux/netlink.h>

#include <cstdint>
#include <map>
#include <string>

#include "codec/value.h"
#include "ops/ops.h"

namespace vnl {

using IndexNames = std::map<uint32_t, std::string>;

// RTM_NEWLINK / RTM_DELLINK -> Link
Value decodeLink(Ctx& ctx, const nlmsghdr* h, const IndexNames* names);
// RTM_NEWADDR / RTM_DELADDR -> Address
Value decodeAddr(Ctx& ctx, const nlmsghdr* h, const IndexNames* names);
// RTM_NEWROUTE / RTM_DELROUTE -> Route
Value decodeRoute(Ctx& ctx, const nlmsghdr* h, const IndexNames* names = nullptr);
// RTM_NEWNEIGH / RTM_DELNEIGH -> Neighbour (as `ip neigh` prints it)
Value decodeNeigh(Ctx& ctx, const nlmsghdr* h, const IndexNames* names);

const char* scopeName(uint8_t s);

}  // namespace vnl
