// Connection tracking over nfnetlink (NFNL_SUBSYS_CTNETLINK): the codec for the messages
// vnetlink sends (a dump request, a delete by tuple) and for the entries a dump returns, with
// no I/O. Tuples arrive normalized from TypeScript: family, addresses as bytes, numbers.
#pragma once
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>

#include <cstdint>

#include "codec/nlmsg.h"
#include "codec/value.h"

namespace vnl {
namespace ct {

inline uint16_t msgType(uint8_t ctMsg) { return static_cast<uint16_t>((NFNL_SUBSYS_CTNETLINK << 8) | ctMsg); }

// IPCTNL_MSG_CT_GET with NLM_F_DUMP for one family (AF_INET / AF_INET6).
MsgBuilder dumpRequest(uint8_t family);

// IPCTNL_MSG_CT_DELETE of the entry whose original tuple is `tuple` ({proto, src, dst,
// sport?, dport?}, addresses as 4 or 16 bytes), in zone `zone`; with `id`, only that entry.
MsgBuilder deleteRequest(uint8_t family, const Value& tuple, const Value* id, uint16_t zone);

// One entry of a dump: {family, orig: tuple, reply: tuple, status, id?, zone?, mark?}.
// Addresses come back as bytes; a tuple without ports (ICMP) has none. Throws CodecError on
// a truncated attribute.
Value decodeEntry(const nlmsghdr* h);

}  // namespace ct
}  // namespace vnl
