// Routes: ip route add/del/show.
#include <linux/rtnetlink.h>

#include "codec/format.h"
#include "codec/rtnl.h"
#include "ops/ops.h"

namespace vnl {

namespace {

MsgBuilder buildRoute(Ctx& ctx, uint16_t type, uint16_t flags, const Value& args, const char* op, bool del) {
  MsgBuilder m(type, flags);
  rtmsg r{};
  std::string dst = args.str("dst");
  IpAddr d;
  bool isDefault = dst == "default";
  int family = static_cast<int>(args.num("family", 0));
  if (!isDefault) {
    d = parseIp(args.str("dstAddress"), "dst");
    r.rtm_dst_len = static_cast<uint8_t>(args.u32("dstLen"));
    family = d.family;
  }
  IpAddr gw;
  bool hasGw = args.has("via");
  if (hasGw) {
    gw = parseIp(args.str("via"), "via");
    if (!family) family = gw.family;
  }
  if (!family) family = AF_INET;
  r.rtm_family = static_cast<uint8_t>(family);
  uint32_t table = args.u32("table", RT_TABLE_MAIN);
  r.rtm_table = table < 256 ? static_cast<uint8_t>(table) : static_cast<uint8_t>(RT_TABLE_UNSPEC);
  if (del) {
    r.rtm_scope = RT_SCOPE_NOWHERE;
  } else {
    r.rtm_protocol = static_cast<uint8_t>(args.u32("protocol", RTPROT_BOOT));
    r.rtm_type = RTN_UNICAST;
    // As iproute2: a route with no gateway is on-link.
    r.rtm_scope = hasGw ? static_cast<uint8_t>(RT_SCOPE_UNIVERSE) : static_cast<uint8_t>(RT_SCOPE_LINK);
  }
  m.putHeader(r);
  if (table >= 256) m.putU32(RTA_TABLE, table);
  if (!isDefault) m.put(RTA_DST, d.bytes, d.len());
  if (hasGw) m.put(RTA_GATEWAY, gw.bytes, gw.len());
  if (const Value* dev = args.get("dev")) m.putU32(RTA_OIF, ctx.ifindex(dev->string(), op));
  if (const Value* met = args.get("metric")) m.putU32(RTA_PRIORITY, static_cast<uint32_t>(met->number()));
  if (const Value* src = args.get("src")) {
    IpAddr s = parseIp(src->string(), "src");
    m.put(RTA_PREFSRC, s.bytes, s.len());
  }
  return m;
}

Value routeAdd(Ctx& ctx, const Value& args) {
  uint16_t flags = NLM_F_CREATE | (args.flag("replace") ? NLM_F_REPLACE : NLM_F_EXCL);
  MsgBuilder m = buildRoute(ctx, RTM_NEWROUTE, flags, args, "route.add", false);
  ctx.rtnl().request(m, "route.add");
  return Value();
}

Value routeDel(Ctx& ctx, const Value& args) {
  MsgBuilder m = buildRoute(ctx, RTM_DELROUTE, 0, args, "route.del", true);
  ctx.rtnl().request(m, "route.del");
  return Value();
}

Value routeList(Ctx& ctx, const Value& args) {
  std::string fam = args.str("family", "");
  int family = fam == "inet6" ? AF_INET6 : fam == "inet" ? AF_INET : AF_UNSPEC;
  int64_t table = args.has("table") ? args.i64("table") : static_cast<int64_t>(RT_TABLE_MAIN);  // -1: all tables
  MsgBuilder m(RTM_GETROUTE, 0);
  rtmsg r{};
  r.rtm_family = static_cast<uint8_t>(family);
  m.putHeader(r);
  Value out = Value::array();
  ctx.rtnl().dump(m, "route.list", [&](const nlmsghdr* h) {
    if (h->nlmsg_type != RTM_NEWROUTE) return;
    Value v = decodeRoute(h, ctx.names());
    if (table >= 0 && static_cast<int64_t>(v.num("table")) != table) return;
    out.push(std::move(v));
  });
  return out;
}

}  // namespace

VNL_OP("route.add", routeAdd);
VNL_OP("route.del", routeDel);
VNL_OP("route.list", routeList);

}  // namespace vnl
