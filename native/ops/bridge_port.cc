// Bridge port flags are changed with an AF_BRIDGE RTM_SETLINK carrying IFLA_PROTINFO, as
// `bridge link set` does; per-port VLANs (`bridge vlan`) are sent and dumped here, their
// bytes built and read by codec/rtnl_bridge.cc. (The bridge kind and its ports' decoding are a table: lib/kinds/bridge.ts.)
#include <linux/if_bridge.h>
#include <sys/socket.h>

#include "codec/rtnl.h"
#include "ops/link.h"

namespace vnl {
namespace {

// bridge link set dev PORT hairpin on learning on ...: AF_BRIDGE RTM_SETLINK + IFLA_PROTINFO.
MsgBuilder bridgeSetPort(Ctx& ctx, const Value& args, const char* op) {
  MsgBuilder m(RTM_SETLINK, 0);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_BRIDGE;
  ifi.ifi_index = static_cast<int>(ctx.ifindex(args.str("name"), op));
  m.putHeader(ifi);
  {
    auto pi = m.nest(IFLA_PROTINFO);
    auto flag = [&](const char* key, uint16_t t) {
      if (const Value* v = args.get(key)) m.putU8(t, v->boolean() ? 1 : 0);
    };
    flag("hairpin", IFLA_BRPORT_MODE);
    flag("guard", IFLA_BRPORT_GUARD);
    flag("rootBlock", IFLA_BRPORT_PROTECT);
    flag("fastLeave", IFLA_BRPORT_FAST_LEAVE);
    flag("learning", IFLA_BRPORT_LEARNING);
    flag("flood", IFLA_BRPORT_UNICAST_FLOOD);
    flag("mcastFlood", IFLA_BRPORT_MCAST_FLOOD);
    flag("bcastFlood", IFLA_BRPORT_BCAST_FLOOD);
    flag("proxyArp", IFLA_BRPORT_PROXYARP);
    flag("neighSuppress", IFLA_BRPORT_NEIGH_SUPPRESS);
    flag("isolated", IFLA_BRPORT_ISOLATED);
    if (const Value* v = args.get("cost")) m.putU32(IFLA_BRPORT_COST, static_cast<uint32_t>(v->number()));
    if (const Value* v = args.get("priority")) m.putU16(IFLA_BRPORT_PRIORITY, static_cast<uint16_t>(v->number()));
  }
  return m;
}

// bridge vlan add|del dev PORT vid N ...: built by the codec (codec/rtnl_bridge.cc).
Value bridgeVlanModify(Ctx& ctx, const Value& args) {
  std::string op = args.str("op", "bridge.vlan");
  MsgBuilder m = buildBridgeVlan(args, ctx.names(op.c_str()));
  ctx.rtnl().request(m, op.c_str());
  return Value();
}

// The request as it would be sent (seq and port 0), for golden-bytes tests.
Value bridgeVlanEncode(Ctx& ctx, const Value& args) {
  MsgBuilder m = buildBridgeVlan(args, ctx.names("bridge.vlan.encode"));
  m.addFlags(NLM_F_REQUEST | NLM_F_ACK);
  m.setSeq(0);
  return Value::bytes(m.data(), m.size());
}

// bridge vlan show: every port's (and bridge's) VLANs, one entry per VLAN id.
Value bridgeVlanList(Ctx& ctx, const Value& args) {
  const char* op = "bridge.vlan.list";
  MsgBuilder m = buildBridgeVlanDump();
  Value out = Value::array();
  ctx.rtnl().dump(m, op, [&](const nlmsghdr* h) {
    if (h->nlmsg_type == RTM_NEWLINK) decodeBridgeVlans(h, ctx.names(), out);
  });
  return out;
}

}  // namespace

VNL_CHANGE_OP("bridge.setPort", bridgeSetPort);
VNL_OP("bridge.vlan.modify", bridgeVlanModify);
VNL_OP("bridge.vlan.encode", bridgeVlanEncode);
VNL_OP("bridge.vlan.list", bridgeVlanList);

}  // namespace vnl
