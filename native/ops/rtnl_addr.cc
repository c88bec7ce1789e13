// Addresses: ip addr add/del/show.
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>

#include <map>

#include "ops/format.h"
#include "ops/ops.h"
#include "ops/rtnl_decode.h"

namespace vnl {

const char* scopeName(uint8_t s) {
  switch (s) {
    case RT_SCOPE_UNIVERSE: return "global";
    case RT_SCOPE_SITE: return "site";
    case RT_SCOPE_LINK: return "link";
    case RT_SCOPE_HOST: return "host";
    case RT_SCOPE_NOWHERE: return "nowhere";
    default: return "unknown";
  }
}

Value decodeAddr(Ctx& ctx, const nlmsghdr* h, const std::map<uint32_t, std::string>* names) {
  const ifaddrmsg* ifa = familyHeader<ifaddrmsg>(h);
  if (!ifa) throw CodecError("short RTM_NEWADDR message");
  const uint8_t* p;
  size_t len;
  if (!payloadAfter(h, sizeof(ifaddrmsg), p, len)) throw CodecError("short RTM_NEWADDR message");
  AttrTable tb(p, len, IFA_MAX);
  Value a = Value::object();
  int fam = ifa->ifa_family;
  a.set("family", fam == AF_INET ? "inet" : fam == AF_INET6 ? "inet6" : "other");
  a.set("index", ifa->ifa_index);
  std::string ln;
  if (names) { auto it = names->find(ifa->ifa_index); if (it != names->end()) ln = it->second; }
  else ln = ctx.ifname(ifa->ifa_index);
  if (!ln.empty()) a.set("link", ln);
  // An address attribute is used only when it holds a whole address of the family; a short
  // one is ignored as if absent (it was once compared over the other one's length).
  const bool ip = fam == AF_INET || fam == AF_INET6;
  const size_t alen = fam == AF_INET ? 4 : 16;
  auto whole = [&](uint16_t t) -> const Attr* { return ip && tb[t] && tb[t]->len >= alen ? tb[t] : nullptr; };
  const Attr* ifaLocal = whole(IFA_LOCAL);
  const Attr* ifaAddress = whole(IFA_ADDRESS);
  const Attr* local = ifaLocal ? ifaLocal : ifaAddress;
  if (local) {
    std::string s = ipToString(fam, local->data);
    a.set("address", s);
    a.set("prefixLen", ifa->ifa_prefixlen);
    a.set("cidr", s + "/" + std::to_string(ifa->ifa_prefixlen));
  }
  if (ifaLocal && ifaAddress && memcmp(ifaLocal->data, ifaAddress->data, alen) != 0)
    a.set("peer", ipToString(fam, ifaAddress->data));
  if (fam == AF_INET && tb[IFA_BROADCAST] && tb[IFA_BROADCAST]->len >= 4) a.set("broadcast", ipToString(AF_INET, tb[IFA_BROADCAST]->data));
  if (tb[IFA_LABEL]) a.set("label", tb[IFA_LABEL]->str());
  a.set("scope", scopeName(ifa->ifa_scope));
  uint32_t flags = tb[IFA_FLAGS] ? tb[IFA_FLAGS]->u32() : ifa->ifa_flags;
  Value f = Value::array();
  static const std::pair<uint32_t, const char*> fl[] = {
      {IFA_F_SECONDARY, "secondary"}, {IFA_F_NODAD, "nodad"}, {IFA_F_OPTIMISTIC, "optimistic"},
      {IFA_F_DADFAILED, "dadfailed"}, {IFA_F_HOMEADDRESS, "home"}, {IFA_F_DEPRECATED, "deprecated"},
      {IFA_F_TENTATIVE, "tentative"}, {IFA_F_PERMANENT, "permanent"}, {IFA_F_MANAGETEMPADDR, "mngtmpaddr"},
      {IFA_F_NOPREFIXROUTE, "noprefixroute"}};
  for (auto& x : fl)
    if (flags & x.first) f.push(x.second);
  a.set("flags", std::move(f));
  return a;
}

namespace {

MsgBuilder buildAddr(Ctx& ctx, uint16_t type, uint16_t flags, const Value& args, const char* op) {
  MsgBuilder m(type, flags);
  IpAddr ip = parseIp(args.str("address"), "address");
  ifaddrmsg ifa{};
  ifa.ifa_family = static_cast<uint8_t>(ip.family);
  ifa.ifa_prefixlen = static_cast<uint8_t>(args.u32("prefixLen"));
  ifa.ifa_index = ctx.ifindex(args.str("link"), op);
  if (const Value* s = args.get("scope")) ifa.ifa_scope = static_cast<uint8_t>(s->number());
  uint32_t aflags = 0;
  if (args.flag("nodad")) aflags |= IFA_F_NODAD;
  if (args.flag("noprefixroute")) aflags |= IFA_F_NOPREFIXROUTE;
  ifa.ifa_flags = static_cast<uint8_t>(aflags & 0xff);
  m.putHeader(ifa);
  m.put(IFA_LOCAL, ip.bytes, ip.len());
  if (const Value* peer = args.get("peer")) {
    IpAddr pa = parseIp(peer->string(), "peer");
    m.put(IFA_ADDRESS, pa.bytes, pa.len());
  } else {
    m.put(IFA_ADDRESS, ip.bytes, ip.len());
  }
  if (const Value* b = args.get("broadcast")) {
    IpAddr ba = parseIp(b->string(), "broadcast");
    m.put(IFA_BROADCAST, ba.bytes, ba.len());
  }
  if (const Value* l = args.get("label")) m.putStr(IFA_LABEL, l->string());
  if (aflags > 0xff) m.putU32(IFA_FLAGS, aflags);
  return m;
}

Value addrAdd(Ctx& ctx, const Value& args) {
  uint16_t flags = NLM_F_CREATE | (args.flag("replace") ? NLM_F_REPLACE : NLM_F_EXCL);
  MsgBuilder m = buildAddr(ctx, RTM_NEWADDR, flags, args, "addr.add");
  ctx.rtnl().request(m, "addr.add");
  return Value();
}

Value addrDel(Ctx& ctx, const Value& args) {
  MsgBuilder m = buildAddr(ctx, RTM_DELADDR, 0, args, "addr.del");
  ctx.rtnl().request(m, "addr.del");
  return Value();
}

Value addrList(Ctx& ctx, const Value& args) {
  uint32_t only = 0;
  if (const Value* l = args.get("link")) only = ctx.ifindex(l->string(), "addr.list");
  std::string fam = args.str("family", "");
  MsgBuilder m(RTM_GETADDR, 0);
  ifaddrmsg ifa{};
  ifa.ifa_family = fam == "inet" ? AF_INET : fam == "inet6" ? AF_INET6 : AF_UNSPEC;
  m.putHeader(ifa);
  Value out = Value::array();
  ctx.rtnl().dump(m, "addr.list", [&](const nlmsghdr* h) {
    if (h->nlmsg_type != RTM_NEWADDR) return;
    const ifaddrmsg* a = familyHeader<ifaddrmsg>(h);
    if (!a || (only && a->ifa_index != only)) return;
    out.push(decodeAddr(ctx, h, nullptr));
  });
  return out;
}

}  // namespace

VNL_OP("addr.add", addrAdd);
VNL_OP("addr.del", addrDel);
VNL_OP("addr.list", addrList);

}  // namespace vnl
