// bridge: IFLA_INFO_DATA holds IFLA_BR_* (timers in clock_t, i.e. USER_HZ = centiseconds);
// its ports carry IFLA_BRPORT_* as IFLA_INFO_SLAVE_DATA ("bridge_slave"). Port flags are
// changed with an AF_BRIDGE RTM_SETLINK carrying IFLA_PROTINFO, as `bridge link set` does.
#include <linux/if_bridge.h>
#include <sys/socket.h>

#include <cmath>
#include <cstdio>

#include "ops/format.h"
#include "ops/link.h"

namespace vnl {
namespace {

// The kernel's bridge timers are clock_t with USER_HZ = 100.
constexpr double kUserHz = 100.0;
uint32_t toClock(double seconds) { return static_cast<uint32_t>(std::llround(seconds * kUserHz)); }
double fromClock(uint32_t t) { return t / kUserHz; }

void fillBridge(Ctx&, MsgBuilder& m, const Value& s, const char*) {
  if (const Value* v = s.get("forwardDelay")) m.putU32(IFLA_BR_FORWARD_DELAY, toClock(v->number()));
  if (const Value* v = s.get("helloTime")) m.putU32(IFLA_BR_HELLO_TIME, toClock(v->number()));
  if (const Value* v = s.get("maxAge")) m.putU32(IFLA_BR_MAX_AGE, toClock(v->number()));
  if (const Value* v = s.get("ageingTime")) m.putU32(IFLA_BR_AGEING_TIME, toClock(v->number()));
  if (const Value* v = s.get("stp")) m.putU32(IFLA_BR_STP_STATE, v->boolean() ? 1 : 0);
  if (const Value* v = s.get("priority")) m.putU16(IFLA_BR_PRIORITY, static_cast<uint16_t>(v->number()));
  if (const Value* v = s.get("vlanFiltering")) m.putU8(IFLA_BR_VLAN_FILTERING, v->boolean() ? 1 : 0);
  if (const Value* v = s.get("defaultPvid")) m.putU16(IFLA_BR_VLAN_DEFAULT_PVID, static_cast<uint16_t>(v->number()));
  if (const Value* v = s.get("mcastSnooping")) m.putU8(IFLA_BR_MCAST_SNOOPING, v->boolean() ? 1 : 0);
  if (const Value* v = s.get("groupFwdMask")) m.putU16(IFLA_BR_GROUP_FWD_MASK, static_cast<uint16_t>(v->number()));
}

void fillBridgeAdd(Ctx& ctx, MsgBuilder& m, const Value& s, const char* op, std::vector<Fd>&) {
  fillBridge(ctx, m, s, op);
}

// "8000.52540082327e", the form brctl prints.
std::string bridgeIdString(const Attr& a) {
  ifla_bridge_id id{};
  if (!a.as(id)) return "";
  char b[32];
  snprintf(b, sizeof b, "%02x%02x.%02x%02x%02x%02x%02x%02x", id.prio[0], id.prio[1], id.addr[0], id.addr[1],
           id.addr[2], id.addr[3], id.addr[4], id.addr[5]);
  return b;
}

void decodeBridge(const Attr& data, Value& info) {
  AttrTable tb(data, IFLA_BR_MAX);
  if (tb[IFLA_BR_STP_STATE]) info.set("stp", tb[IFLA_BR_STP_STATE]->u32() != 0);
  if (tb[IFLA_BR_FORWARD_DELAY]) info.set("forwardDelay", fromClock(tb[IFLA_BR_FORWARD_DELAY]->u32()));
  if (tb[IFLA_BR_HELLO_TIME]) info.set("helloTime", fromClock(tb[IFLA_BR_HELLO_TIME]->u32()));
  if (tb[IFLA_BR_MAX_AGE]) info.set("maxAge", fromClock(tb[IFLA_BR_MAX_AGE]->u32()));
  if (tb[IFLA_BR_AGEING_TIME]) info.set("ageingTime", fromClock(tb[IFLA_BR_AGEING_TIME]->u32()));
  if (tb[IFLA_BR_PRIORITY]) info.set("priority", tb[IFLA_BR_PRIORITY]->u16());
  if (tb[IFLA_BR_VLAN_FILTERING]) info.set("vlanFiltering", tb[IFLA_BR_VLAN_FILTERING]->u8() != 0);
  if (tb[IFLA_BR_VLAN_DEFAULT_PVID]) info.set("defaultPvid", tb[IFLA_BR_VLAN_DEFAULT_PVID]->u16());
  if (tb[IFLA_BR_MCAST_SNOOPING]) info.set("mcastSnooping", tb[IFLA_BR_MCAST_SNOOPING]->u8() != 0);
  if (tb[IFLA_BR_GROUP_FWD_MASK]) info.set("groupFwdMask", tb[IFLA_BR_GROUP_FWD_MASK]->u16());
  if (tb[IFLA_BR_BRIDGE_ID]) info.set("bridgeId", bridgeIdString(*tb[IFLA_BR_BRIDGE_ID]));
  if (tb[IFLA_BR_ROOT_ID]) info.set("rootId", bridgeIdString(*tb[IFLA_BR_ROOT_ID]));
  if (tb[IFLA_BR_ROOT_PORT]) info.set("rootPort", tb[IFLA_BR_ROOT_PORT]->u16());
  if (tb[IFLA_BR_ROOT_PATH_COST]) info.set("rootPathCost", tb[IFLA_BR_ROOT_PATH_COST]->u32());
  if (tb[IFLA_BR_TOPOLOGY_CHANGE]) info.set("topologyChange", tb[IFLA_BR_TOPOLOGY_CHANGE]->u8() != 0);
}

const char* stpStateName(uint8_t s) {
  switch (s) {
    case BR_STATE_DISABLED: return "disabled";
    case BR_STATE_LISTENING: return "listening";
    case BR_STATE_LEARNING: return "learning";
    case BR_STATE_FORWARDING: return "forwarding";
    case BR_STATE_BLOCKING: return "blocking";
    default: return "unknown";
  }
}

void decodeBridgePort(const Attr& data, Value& p) {
  AttrTable tb(data, IFLA_BRPORT_MAX);
  auto flag = [&](uint16_t t, const char* name) {
    if (tb[t]) p.set(name, tb[t]->u8() != 0);
  };
  if (tb[IFLA_BRPORT_STATE]) p.set("state", stpStateName(tb[IFLA_BRPORT_STATE]->u8()));
  if (tb[IFLA_BRPORT_PRIORITY]) p.set("priority", tb[IFLA_BRPORT_PRIORITY]->u16());
  if (tb[IFLA_BRPORT_COST]) p.set("cost", tb[IFLA_BRPORT_COST]->u32());
  flag(IFLA_BRPORT_MODE, "hairpin");
  flag(IFLA_BRPORT_GUARD, "guard");
  flag(IFLA_BRPORT_PROTECT, "rootBlock");
  flag(IFLA_BRPORT_FAST_LEAVE, "fastLeave");
  flag(IFLA_BRPORT_LEARNING, "learning");
  flag(IFLA_BRPORT_UNICAST_FLOOD, "flood");
  flag(IFLA_BRPORT_MCAST_FLOOD, "mcastFlood");
  flag(IFLA_BRPORT_BCAST_FLOOD, "bcastFlood");
  flag(IFLA_BRPORT_PROXYARP, "proxyArp");
  flag(IFLA_BRPORT_NEIGH_SUPPRESS, "neighSuppress");
  flag(IFLA_BRPORT_ISOLATED, "isolated");
  if (tb[IFLA_BRPORT_ID]) p.set("id", tb[IFLA_BRPORT_ID]->u16());
  if (tb[IFLA_BRPORT_NO]) p.set("no", tb[IFLA_BRPORT_NO]->u16());
  if (tb[IFLA_BRPORT_ROOT_ID]) p.set("designatedRoot", bridgeIdString(*tb[IFLA_BRPORT_ROOT_ID]));
  if (tb[IFLA_BRPORT_BRIDGE_ID]) p.set("designatedBridge", bridgeIdString(*tb[IFLA_BRPORT_BRIDGE_ID]));
}

const LinkKind bridge{"bridge", fillBridgeAdd, fillBridge, decodeBridge};
VNL_LINK_KIND(bridge);
const SlaveKind bridgeSlave{"bridge", decodeBridgePort};
VNL_LINK_KIND(bridgeSlave);

// bridge link set dev PORT hairpin on learning on ...: AF_BRIDGE RTM_SETLINK + IFLA_PROTINFO.
Value bridgeSetPort(Ctx& ctx, const Value& args) {
  const char* op = "bridge.setPort";
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
  ctx.rtnl().request(m, op);
  return Value();
}

}  // namespace

VNL_OP("bridge.setPort", bridgeSetPort);

}  // namespace vnl
