// Routes: ip route add/del/show.
#include <linux/rtnetlink.h>

#include "codec/format.h"
#include "codec/rtnl.h"
#include "ops/ops.h"

namespace vnl {

namespace {

// args (checked in TypeScript): del, dst ('default' or dstAddress/dstLen), family, via, dev,
// nexthops [{ via, dev, weight, onlink }], type, metric, table, src, scope, protocol, onlink,
// mtu, advmss, hoplimit. Header defaults and attribute order follow iproute2 6.1 (golden bytes).
MsgBuilder buildRoute(Ctx& ctx, uint16_t type, uint16_t flags, const Value& args, const char* op) {
  const bool del = args.flag("del");
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
  const Value* hops = args.get("nexthops");
  if (!family) family = AF_INET;
  r.rtm_family = static_cast<uint8_t>(family);
  uint32_t table = args.u32("table", RT_TABLE_MAIN);
  r.rtm_table = table < 256 ? static_cast<uint8_t>(table) : static_cast<uint8_t>(RT_TABLE_UNSPEC);
  uint8_t rtype = static_cast<uint8_t>(args.u32("type", del ? RTN_UNSPEC : RTN_UNICAST));
  r.rtm_type = rtype;
  r.rtm_protocol = static_cast<uint8_t>(args.u32("protocol", del ? RTPROT_UNSPEC : RTPROT_BOOT));
  if (args.has("scope")) {
    r.rtm_scope = static_cast<uint8_t>(args.u32("scope"));
  } else if (family == AF_INET6) {
    r.rtm_scope = RT_SCOPE_UNIVERSE;
  } else if (rtype == RTN_LOCAL) {
    r.rtm_scope = RT_SCOPE_HOST;
  } else if ((rtype == RTN_UNICAST || rtype == RTN_UNSPEC) && !del) {
    // As iproute2: a unicast route with no gateway is on-link.
    r.rtm_scope = hasGw || hops ? static_cast<uint8_t>(RT_SCOPE_UNIVERSE) : static_cast<uint8_t>(RT_SCOPE_LINK);
  } else {
    r.rtm_scope = del ? static_cast<uint8_t>(RT_SCOPE_NOWHERE) : static_cast<uint8_t>(RT_SCOPE_UNIVERSE);
  }
  if (args.flag("onlink")) r.rtm_flags |= RTNH_F_ONLINK;
  m.putHeader(r);
  if (!isDefault) m.put(RTA_DST, d.bytes, d.len());
  if (hasGw) m.put(RTA_GATEWAY, gw.bytes, gw.len());
  if (const Value* src = args.get("src")) {
    IpAddr s = parseIp(src->string(), "src");
    m.put(RTA_PREFSRC, s.bytes, s.len());
  }
  if (const Value* met = args.get("metric")) m.putU32(RTA_PRIORITY, static_cast<uint32_t>(met->number()));
  if (table >= 256) m.putU32(RTA_TABLE, table);
  if (const Value* dev = args.get("dev")) m.putU32(RTA_OIF, ctx.ifindex(dev->string(), op));
  if (args.has("mtu") || args.has("advmss") || args.has("hoplimit")) {
    auto mx = m.nestAs(RTA_METRICS);  // a plain nest, as iproute2 sends it
    if (const Value* x = args.get("mtu")) m.putU32(RTAX_MTU, static_cast<uint32_t>(x->number()));
    if (const Value* x = args.get("advmss")) m.putU32(RTAX_ADVMSS, static_cast<uint32_t>(x->number()));
    if (const Value* x = args.get("hoplimit")) m.putU32(RTAX_HOPLIMIT, static_cast<uint32_t>(x->number()));
  }
  if (hops) {
    // RTA_MULTIPATH: rtnexthop headers, each followed by its gateway; the header's length
    // covers the gateway and is written once that is known.
    auto mp = m.nestAs(RTA_MULTIPATH);
    for (const Value& h : hops->items()) {
      rtnexthop nh{};
      nh.rtnh_hops = static_cast<uint8_t>(h.u32("weight", 1) - 1);
      if (h.flag("onlink")) nh.rtnh_flags |= RTNH_F_ONLINK;
      if (const Value* dev = h.get("dev")) nh.rtnh_ifindex = static_cast<int>(ctx.ifindex(dev->string(), op));
      size_t off = m.size();
      m.putBody(&nh, sizeof nh);
      if (const Value* via = h.get("via")) {
        IpAddr g = parseIp(via->string(), "nexthops.via");
        m.put(RTA_GATEWAY, g.bytes, g.len());
      }
      m.headerAt<rtnexthop>(off)->rtnh_len = static_cast<unsigned short>(m.size() - off);
    }
  }
  return m;
}

MsgBuilder routeAdd(Ctx& ctx, const Value& args, const char* op) {
  return buildRoute(ctx, RTM_NEWROUTE, NLM_F_CREATE | (args.flag("replace") ? NLM_F_REPLACE : NLM_F_EXCL), args, op);
}

MsgBuilder routeDel(Ctx& ctx, const Value& args, const char* op) { return buildRoute(ctx, RTM_DELROUTE, 0, args, op); }

// The request add/del would send (seq and port 0), for golden bytes and users.
MsgBuilder routeByCmd(Ctx& ctx, const Value& args, const char* op) {
  return args.flag("del") ? routeDel(ctx, args, op) : routeAdd(ctx, args, op);
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

VNL_CHANGE_OP("route.add", routeAdd);
VNL_CHANGE_OP("route.del", routeDel);
VNL_OP("route.list", routeList);
VNL_ENCODE_OP("route.encode", routeByCmd);

}  // namespace vnl
