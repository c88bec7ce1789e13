// Routes as `ip -j route show` describes them (RTM_NEWROUTE/RTM_DELROUTE), for list and monitors.
#include <linux/rtnetlink.h>

#include "codec/format.h"
#include "codec/rtnl.h"

namespace vnl {

static const char* protoName(uint8_t p) {
  switch (p) {
    case RTPROT_KERNEL: return "kernel";
    case RTPROT_BOOT: return "boot";
    case RTPROT_STATIC: return "static";
    case RTPROT_DHCP: return "dhcp";
    case RTPROT_RA: return "ra";
    default: return "other";
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
    default: return "other";
  }
}

Value decodeRoute(const nlmsghdr* h, const Names& names) {
  const rtmsg* r = familyHeader<rtmsg>(h);
  if (!r) throw CodecError("short RTM_NEWROUTE message");
  const uint8_t* p;
  size_t len;
  if (!payloadAfter(h, sizeof(rtmsg), p, len)) throw CodecError("short RTM_NEWROUTE message");
  AttrTable tb(p, len, RTA_MAX);
  Value v = Value::object();
  int fam = r->rtm_family;
  // Addresses are read only when the attribute holds a whole one of the route's family.
  const bool ip = fam == AF_INET || fam == AF_INET6;
  const size_t alen = fam == AF_INET ? 4 : 16;
  auto whole = [&](uint16_t t) -> const Attr* { return ip && tb[t] && tb[t]->len >= alen ? tb[t] : nullptr; };
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
  return v;
}

}  // namespace vnl
