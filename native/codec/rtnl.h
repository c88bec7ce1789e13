// The rtnetlink codec shared by list/get, monitors, `*.encode` and the fuzzers: one message in,
// the same object `list`/`get` return out, and the requests for neighbours and rules built
// from normalized arguments. No I/O: interface names come through `names` (codec/names.h), so a
// monitor's reader thread (not in the handle's namespace) decodes from the names it has seen.
#pragma once
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <cstdint>
#include <string>

#include "codec/names.h"
#include "codec/nlmsg.h"
#include "codec/value.h"

namespace vnl {

// RTM_NEWLINK / RTM_DELLINK -> Link
Value decodeLink(const nlmsghdr* h, const Names& names);

// The ifi_flags bits link.add/link.set take by name and decodeLink reports as booleans
// (`arp` is IFF_NOARP turned around, as `ip link set X arp off` sets IFF_NOARP).
struct LinkFlagName {
  const char* key;
  uint32_t bit;
  bool inverted;
};
extern const LinkFlagName kLinkFlagNames[5];
// Sets ifi_flags and ifi_change for every flag `spec` names, as iproute2 does.
void putLinkFlags(ifinfomsg& ifi, const Value& spec);
// The plain u32 link attributes beyond mtu/txqueuelen/group, in wire order (iproute2 sends
// them in command-line order; the golden commands give them in this one). `readOnly` ones
// are only decoded.
struct LinkU32Attr {
  const char* key;
  uint16_t attr;
  bool readOnly;
};
extern const LinkU32Attr kLinkU32Attrs[6];
// Appends the writable kLinkU32Attrs `spec` holds (values range-checked in TypeScript).
void putLinkU32Attrs(MsgBuilder& m, const Value& spec);
// RTM_NEWADDR / RTM_DELADDR -> Address
Value decodeAddr(const nlmsghdr* h, const Names& names);
// RTM_NEWROUTE / RTM_DELROUTE -> Route
Value decodeRoute(const nlmsghdr* h, const Names& names);
// RTM_NEWNEIGH / RTM_DELNEIGH -> Neighbour (as `ip neigh` prints it) or FDB entry (`bridge fdb`)
Value decodeNeigh(const nlmsghdr* h, const Names& names);
// RTM_NEWRULE -> Rule, as `ip -j rule show` describes it
Value decodeRule(const nlmsghdr* h);

// args: cmd (add|replace|append|change|del), family (AF_*), dev or ifindex, and the normalized
// entry: dst, lladdr, state (NUD_* bits), flags (NTF_* bits), vlan, port, vni, via (dev).
MsgBuilder buildNeigh(const Value& args, const Names& names);
// args: cmd (add|del), family, action (FR_ACT_*), and the normalized selector and target:
// priority, src/srcLen, dst/dstLen, iif, oif, fwmark, fwmask, tos, table, goto,
// suppressPrefixlen, l3mdev, protocol, invert.
MsgBuilder buildRule(const Value& args);

// Bridge VLANs (`bridge vlan add|del`): args cmd (add|del), dev, vid, vidEnd (a range), pvid,
// untagged, self, master.
MsgBuilder buildBridgeVlan(const Value& args, const Names& names);
// The AF_BRIDGE link dump with RTEXT_FILTER_BRVLAN (`bridge vlan show`).
MsgBuilder buildBridgeVlanDump();
// Appends the VLANs one AF_BRIDGE RTM_NEWLINK reports, one { port, index, master?, vid, pvid,
// untagged } per VLAN id (ranges expanded, at most 4094 per message).
void decodeBridgeVlans(const nlmsghdr* h, const Names& names, Value& out);

const char* scopeName(uint8_t s);

}  // namespace vnl
