// Routes as `ip -j route show` describes them (RTM_NEWROUTE/RTM_DELROUTE), for list and monitors.
#include <linux/rtnetlink.h>

#include <cstring>
#include <string>
#include <utility>

#include "codec/format.h"
#include "codec/rtnl.h"

namespace vnl {

// A protocol ip knows by name, else the number (as `ip route` prints it).
static std::string protoName(uint8_t p) {
  switch (p) {
    case RTPROT_KERNEL: return "kernel";
    case RTPROT_BOOT: return "boot";
    case RTPROT_STATIC: return "static";
    case RTPROT_DHCP: return "dhcp";
    case RTPROT_RA: return "ra";
    default: return std::to_string(p);
  }
}

static const char* typeName(uint8_t t) {
  switch (t) {
    case RTN_UNICAST: return "unicast";
    case RTN_LOCAL: return "local";
    case RTN_BROADCAST: return "broadcast";
    case RTN_ANYCAST: return "anycast";
    case RTN_MULTICAST: return "multicast";
    case RTN_BLACKHOLE: return "blackhole";
    case RTN_UNREACHABLE: return "unreachable";
    case RTN_PROHIBIT: return "prohibit";
    case RTN_THROW: return "throw";
    default: return "other";
  }
}

// RTNH_F_* (in rtm_flags and in each rtnexthop) as ip prints them.
static Value nhFlagNames(uint32_t f) {
  static const std::pair<uint32_t, const char*> names[] = {
      {RTNH_F_DEAD, "dead"}, {RTNH_F_PERVASIVE, "pervasive"}, {RTNH_F_ONLINK, "onlink"},
      {RTNH_F_OFFLOAD, "offload"}, {RTNH_F_LINKDOWN, "linkdown"}, {RTNH_F_UNRESOLVED, "unresolved"}};
  Value a = Value::array();
  for (auto& n : names)
    if (f & n.first) a.push(n.second);
  return a;
}

Value decodeRoute(const nlmsghdr* h, const Names& names) {
  const rtmsg* r = familyHeader<rtmsg>(h);
  if (!r) throw DecodeError("short RTM_NEWROUTE message");
  const uint8_t* p;
  size_t len;
  if (!payloadAfter(h, sizeof(rtmsg), p, len)) throw DecodeError("short RTM_NEWROUTE message");
  AttrTable tb(p, len, RTA_MAX);
  Value v = Value::object();
  int fam = r->rtm_family;
  // Addresses are read only when the attribute holds a whole one of the route's family.
  const bool ip = fam == AF_INET || fam == AF_INET6;
  const size_t alen = fam == AF_INET ? 4 : 16;
  auto wholeAttr = [&](const Attr* a) -> const Attr* { return ip && a && a->len >= alen ? a : nullptr; };
  auto whole = [&](uint16_t t) { return wholeAttr(tb[t]); };
  v.set("family", fam == AF_INET ? "inet" : fam == AF_INET6 ? "inet6" : "other");
  if (const Attr* d = whole(RTA_DST))
    v.set("dst", ipToString(fam, d->data) + "/" + std::to_string(r->rtm_dst_len));
  else
    v.set("dst", r->rtm_dst_len == 0 ? "default" : "?");
  if (const Attr* g = whole(RTA_GATEWAY)) v.set("via", ipToString(fam, g->data));
  if (const Attr* s = whole(RTA_PREFSRC)) v.set("src", ipToString(fam, s->data));
  if (tb[RTA_OIF]) {
    uint32_t oif = tb[RTA_OIF]->u32();
    v.set("devIndex", oif);
    std::string n = names.name(oif);
    if (!n.empty()) v.set("dev", n);
  }
  if (tb[RTA_PRIORITY]) v.set("metric", tb[RTA_PRIORITY]->u32());
  v.set("table", tb[RTA_TABLE] ? tb[RTA_TABLE]->u32() : r->rtm_table);
  v.set("protocol", protoName(r->rtm_protocol));
  v.set("scope", scopeName(r->rtm_scope));
  v.set("type", typeName(r->rtm_type));
  v.set("flags", nhFlagNames(r->rtm_flags));
  if (const Attr* mp = tb[RTA_MULTIPATH]) {
    // A run of rtnexthop headers, each followed by its own attributes; every length is
    // checked against what is left, and the count is bounded by the attribute's size.
    Value hops = Value::array();
    const uint8_t* q = mp->data;
    size_t left = mp->len;
    while (left >= sizeof(rtnexthop)) {
      rtnexthop nh;
      memcpy(&nh, q, sizeof nh);
      if (nh.rtnh_len < sizeof(rtnexthop) || nh.rtnh_len > left) break;
      Value o = Value::object();
      AttrTable nt(q + sizeof(rtnexthop), nh.rtnh_len - sizeof(rtnexthop), RTA_MAX);
      if (const Attr* g = wholeAttr(nt[RTA_GATEWAY])) o.set("via", ipToString(fam, g->data));
      if (nh.rtnh_ifindex > 0) {
        o.set("devIndex", nh.rtnh_ifindex);
        std::string n = names.name(static_cast<uint32_t>(nh.rtnh_ifindex));
        if (!n.empty()) o.set("dev", n);
      }
      o.set("weight", static_cast<uint32_t>(nh.rtnh_hops) + 1);
      o.set("flags", nhFlagNames(nh.rtnh_flags));
      hops.push(std::move(o));
      size_t step = RTNH_ALIGN(nh.rtnh_len);
      if (step >= left) break;
      q += step;
      left -= step;
    }
    v.set("nexthops", std::move(hops));
  }
  if (const Attr* mx = tb[RTA_METRICS]) {
    AttrTable mt(*mx, RTAX_MAX);
    if (mt[RTAX_MTU] && mt[RTAX_MTU]->len >= 4) v.set("mtu", mt[RTAX_MTU]->u32());
    if (mt[RTAX_ADVMSS] && mt[RTAX_ADVMSS]->len >= 4) v.set("advmss", mt[RTAX_ADVMSS]->u32());
    if (mt[RTAX_HOPLIMIT] && mt[RTAX_HOPLIMIT]->len >= 4) v.set("hoplimit", mt[RTAX_HOPLIMIT]->u32());
  }
  return v;
}

}  // namespace vnl
