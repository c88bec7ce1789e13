// Policy routing rules (`ip rule`): RTM_NEWRULE/RTM_DELRULE with a fib_rule_hdr, built from
// normalized arguments, and decoded as `ip -j rule show` describes them.
#include <linux/fib_rules.h>
#include <linux/rtnetlink.h>

#include "codec/format.h"
#include "codec/rtnl.h"

namespace vnl {

MsgBuilder buildRule(const Value& args) {
  bool del = args.str("cmd") == "del";
  MsgBuilder m(del ? RTM_DELRULE : RTM_NEWRULE, del ? 0 : NLM_F_CREATE | NLM_F_EXCL);
  fib_rule_hdr r{};
  r.family = static_cast<uint8_t>(args.u32("family"));
  r.action = static_cast<uint8_t>(args.u32("action", del ? FR_ACT_UNSPEC : FR_ACT_TO_TBL));
  r.tos = static_cast<uint8_t>(args.u32("tos", 0));
  if (args.flag("invert")) r.flags |= FIB_RULE_INVERT;
  uint32_t table = args.u32("table", 0);
  // As ip: a table below 256 rides in the header, a larger one in FRA_TABLE.
  r.table = table < 256 ? static_cast<uint8_t>(table) : static_cast<uint8_t>(RT_TABLE_UNSPEC);
  IpAddr src, dst;
  if (args.has("src")) { src = parseIp(args.str("src"), "from"); r.src_len = static_cast<uint8_t>(args.u32("srcLen")); }
  if (args.has("dst")) { dst = parseIp(args.str("dst"), "to"); r.dst_len = static_cast<uint8_t>(args.u32("dstLen")); }
  m.putHeader(r);
  if (args.has("priority")) m.putU32(FRA_PRIORITY, args.u32("priority"));
  if (args.has("src")) m.put(FRA_SRC, src.bytes, src.len());
  if (args.has("dst")) m.put(FRA_DST, dst.bytes, dst.len());
  if (args.has("iif")) m.putStr(FRA_IIFNAME, args.str("iif"));
  if (args.has("oif")) m.putStr(FRA_OIFNAME, args.str("oif"));
  if (args.has("fwmark")) m.putU32(FRA_FWMARK, args.u32("fwmark"));
  if (args.has("fwmask")) m.putU32(FRA_FWMASK, args.u32("fwmask"));
  if (table >= 256) m.putU32(FRA_TABLE, table);
  if (args.has("goto")) m.putU32(FRA_GOTO, args.u32("goto"));
  if (args.has("suppressPrefixlen")) m.putU32(FRA_SUPPRESS_PREFIXLEN, args.u32("suppressPrefixlen"));
  if (args.flag("l3mdev")) m.putU8(FRA_L3MDEV, 1);
  if (args.has("protocol")) m.putU8(FRA_PROTOCOL, static_cast<uint8_t>(args.u32("protocol")));
  return m;
}

static const char* actionName(uint8_t a) {
  switch (a) {
    case FR_ACT_TO_TBL: return "table";
    case FR_ACT_GOTO: return "goto";
    case FR_ACT_NOP: return "nop";
    case FR_ACT_BLACKHOLE: return "blackhole";
    case FR_ACT_UNREACHABLE: return "unreachable";
    case FR_ACT_PROHIBIT: return "prohibit";
    default: return "other";
  }
}

Value decodeRule(const nlmsghdr* h) {
  const fib_rule_hdr* r = familyHeader<fib_rule_hdr>(h);
  if (!r) throw DecodeError("short RTM_NEWRULE message");
  const uint8_t* p;
  size_t len;
  payloadAfter(h, sizeof(fib_rule_hdr), p, len);
  AttrTable tb(p, len, FRA_MAX);
  Value v = Value::object();
  int fam = r->family;
  size_t alen = fam == AF_INET ? 4 : 16;
  v.set("family", fam == AF_INET ? "inet" : fam == AF_INET6 ? "inet6" : "other");
  v.set("priority", tb[FRA_PRIORITY] && tb[FRA_PRIORITY]->len >= 4 ? tb[FRA_PRIORITY]->u32() : 0u);
  if ((fam == AF_INET || fam == AF_INET6) && tb[FRA_SRC] && tb[FRA_SRC]->len >= alen)
    v.set("from", ipToString(fam, tb[FRA_SRC]->data) + "/" + std::to_string(r->src_len));
  else
    v.set("from", "all");
  if ((fam == AF_INET || fam == AF_INET6) && tb[FRA_DST] && tb[FRA_DST]->len >= alen)
    v.set("to", ipToString(fam, tb[FRA_DST]->data) + "/" + std::to_string(r->dst_len));
  if (tb[FRA_IIFNAME]) v.set("iif", tb[FRA_IIFNAME]->str());
  if (tb[FRA_OIFNAME]) v.set("oif", tb[FRA_OIFNAME]->str());
  if (tb[FRA_FWMARK] && tb[FRA_FWMARK]->len >= 4) v.set("fwmark", tb[FRA_FWMARK]->u32());
  if (tb[FRA_FWMASK] && tb[FRA_FWMASK]->len >= 4) v.set("fwmask", tb[FRA_FWMASK]->u32());
  if (r->tos) v.set("tos", r->tos);
  uint32_t table = tb[FRA_TABLE] && tb[FRA_TABLE]->len >= 4 ? tb[FRA_TABLE]->u32() : r->table;
  if (table) v.set("table", table);
  v.set("action", actionName(r->action));
  if (tb[FRA_GOTO] && tb[FRA_GOTO]->len >= 4) v.set("goto", tb[FRA_GOTO]->u32());
  if (tb[FRA_SUPPRESS_PREFIXLEN] && tb[FRA_SUPPRESS_PREFIXLEN]->len >= 4) {
    int32_t s = tb[FRA_SUPPRESS_PREFIXLEN]->s32();
    if (s >= 0) v.set("suppressPrefixlen", s);  // -1: not set
  }
  if (tb[FRA_L3MDEV] && tb[FRA_L3MDEV]->len >= 1 && tb[FRA_L3MDEV]->u8()) v.set("l3mdev", true);
  if (tb[FRA_PROTOCOL] && tb[FRA_PROTOCOL]->len >= 1 && tb[FRA_PROTOCOL]->u8()) v.set("protocol", tb[FRA_PROTOCOL]->u8());
  if (r->flags & FIB_RULE_INVERT) v.set("not", true);
  return v;
}

}  // namespace vnl
