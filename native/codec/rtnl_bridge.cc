// Bridge per-port VLANs as `bridge vlan` speaks them: an AF_BRIDGE RTM_SETLINK (add) or
// RTM_DELLINK (del) whose IFLA_AF_SPEC holds IFLA_BRIDGE_FLAGS (self/master, when given) and a
// struct bridge_vlan_info per VLAN (a range is a RANGE_BEGIN/RANGE_END pair of them); and the
// VLANs an AF_BRIDGE link dump reports with RTEXT_FILTER_BRVLAN. No I/O.
#include <linux/if_bridge.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include "codec/rtnl.h"

namespace vnl {

namespace {

// VLAN ids 1..4094 (0 and 4095 are reserved by 802.1Q): no port has more entries than that.
constexpr uint16_t kMaxVid = 4094;

void putVlanInfo(MsgBuilder& m, uint16_t flags, uint16_t vid) {
  bridge_vlan_info vi{};
  vi.flags = flags;
  vi.vid = vid;
  m.put(IFLA_BRIDGE_VLAN_INFO, &vi, sizeof vi);
}

}  // namespace

MsgBuilder buildBridgeVlan(const Value& args, const Names& names) {
  const bool del = args.str("cmd") == "del";
  MsgBuilder m(del ? RTM_DELLINK : RTM_SETLINK, 0);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_BRIDGE;
  ifi.ifi_index = static_cast<int>(names.index(args.str("dev")));
  m.putHeader(ifi);
  // A plain nest (no NLA_F_NESTED), as iproute2 sends it.
  auto spec = m.nestAs(IFLA_AF_SPEC);
  uint16_t where = (args.flag("self", false) ? BRIDGE_FLAGS_SELF : 0) | (args.flag("master", false) ? BRIDGE_FLAGS_MASTER : 0);
  if (where) m.putU16(IFLA_BRIDGE_FLAGS, where);
  uint16_t flags = (args.flag("pvid", false) ? BRIDGE_VLAN_INFO_PVID : 0) |
                   (args.flag("untagged", false) ? BRIDGE_VLAN_INFO_UNTAGGED : 0);
  uint16_t vid = static_cast<uint16_t>(args.u32("vid"));
  if (args.has("vidEnd")) {
    putVlanInfo(m, flags | BRIDGE_VLAN_INFO_RANGE_BEGIN, vid);
    putVlanInfo(m, flags | BRIDGE_VLAN_INFO_RANGE_END, static_cast<uint16_t>(args.u32("vidEnd")));
  } else {
    putVlanInfo(m, flags, vid);
  }
  return m;
}

MsgBuilder buildBridgeVlanDump() {
  MsgBuilder m(RTM_GETLINK, NLM_F_DUMP);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_BRIDGE;
  m.putHeader(ifi);
  m.putU32(IFLA_EXT_MASK, RTEXT_FILTER_BRVLAN);
  return m;
}

void decodeBridgeVlans(const nlmsghdr* h, const Names& names, Value& out) {
  const ifinfomsg* ifi = familyHeader<ifinfomsg>(h);
  const uint8_t* p;
  size_t len;
  if (!ifi || ifi->ifi_family != AF_BRIDGE || !payloadAfter(h, sizeof(ifinfomsg), p, len)) return;
  AttrTable tb(p, len, IFLA_MAX);
  if (!tb[IFLA_AF_SPEC]) return;
  std::string port = tb[IFLA_IFNAME] ? tb[IFLA_IFNAME]->str() : names.name(static_cast<uint32_t>(ifi->ifi_index));
  std::string master = tb[IFLA_MASTER] && tb[IFLA_MASTER]->len >= 4 ? names.name(tb[IFLA_MASTER]->u32()) : std::string();
  auto push = [&](uint16_t vid, uint16_t flags) {
    Value v = Value::object();
    v.set("port", port);
    v.set("index", ifi->ifi_index);
    if (!master.empty()) v.set("master", master);
    v.set("vid", vid);
    v.set("pvid", (flags & BRIDGE_VLAN_INFO_PVID) != 0);
    v.set("untagged", (flags & BRIDGE_VLAN_INFO_UNTAGGED) != 0);
    out.push(std::move(v));
  };
  AttrIter it(*tb[IFLA_AF_SPEC]);
  Attr a;
  size_t n = 0;
  int rangeBegin = -1;
  while (it.next(a) && n < kMaxVid) {
    bridge_vlan_info vi{};
    if (a.type != IFLA_BRIDGE_VLAN_INFO || !a.as(vi) || vi.vid == 0 || vi.vid > kMaxVid) continue;
    // A compressed dump (RTEXT_FILTER_BRVLAN_COMPRESSED) sends ranges as a begin/end pair.
    if (vi.flags & BRIDGE_VLAN_INFO_RANGE_BEGIN) { rangeBegin = vi.vid; continue; }
    if ((vi.flags & BRIDGE_VLAN_INFO_RANGE_END) && rangeBegin > 0 && rangeBegin < vi.vid) {
      for (int v = rangeBegin; v <= vi.vid && n < kMaxVid; v++, n++) push(static_cast<uint16_t>(v), vi.flags);
    } else {
      push(vi.vid, vi.flags);
      n++;
    }
    rangeBegin = -1;
  }
}

}  // namespace vnl
