// Addresses: ip addr add/del/show.
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>

#include <map>

#include "codec/format.h"
#include "codec/rtnl.h"
#include "ops/ops.h"

namespace vnl {

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
  if (args.has("validLft")) {
    ifa_cacheinfo ci{};
    ci.ifa_valid = args.u32("validLft");
    ci.ifa_prefered = args.u32("preferredLft");
    m.put(IFA_CACHEINFO, &ci, sizeof ci);
  }
  if (aflags > 0xff) m.putU32(IFA_FLAGS, aflags);
  return m;
}

MsgBuilder addrAdd(Ctx& ctx, const Value& args, const char* op) {
  return buildAddr(ctx, RTM_NEWADDR, NLM_F_CREATE | (args.flag("replace") ? NLM_F_REPLACE : NLM_F_EXCL), args, op);
}

MsgBuilder addrDel(Ctx& ctx, const Value& args, const char* op) { return buildAddr(ctx, RTM_DELADDR, 0, args, op); }

// The request add/del would send (seq and port 0), for golden bytes and users.
MsgBuilder addrByCmd(Ctx& ctx, const Value& args, const char* op) {
  std::string cmd = args.str("cmd");
  uint16_t flags = cmd == "del" ? 0 : NLM_F_CREATE | (cmd == "replace" ? NLM_F_REPLACE : NLM_F_EXCL);
  return buildAddr(ctx, cmd == "del" ? RTM_DELADDR : RTM_NEWADDR, flags, args, op);
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
    out.push(decodeAddr(h, ctx.names()));
  });
  return out;
}

}  // namespace

VNL_CHANGE_OP("addr.add", addrAdd);
VNL_CHANGE_OP("addr.del", addrDel);
VNL_OP("addr.list", addrList);
VNL_ENCODE_OP("addr.encode", addrByCmd);

}  // namespace vnl
