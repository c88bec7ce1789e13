// Neighbours and the bridge forwarding database: `ip neigh` and `bridge fdb`. Both are
// RTM_NEWNEIGH messages; an FDB entry is a neighbour of family AF_BRIDGE whose key is a MAC.
// The decoder (decodeNeigh) is shared with monitors.
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>

#include "ops/format.h"
#include "ops/ops.h"
#include "ops/rtnl_decode.h"

namespace vnl {

namespace {

// args: cmd (add|replace|append|change|del), family (AF_*), dev, and the normalized entry:
// dst, lladdr, state (NUD_* bits), flags (NTF_* bits), vlan, port, vni, via (dev).
MsgBuilder buildNeigh(Ctx& ctx, const Value& args, const char* op) {
  std::string cmd = args.str("cmd");
  uint16_t flags = cmd == "add" ? NLM_F_CREATE | NLM_F_EXCL
                 : cmd == "replace" ? NLM_F_CREATE | NLM_F_REPLACE
                 : cmd == "append" ? NLM_F_CREATE | NLM_F_APPEND
                 : 0;
  MsgBuilder m(cmd == "del" ? RTM_DELNEIGH : RTM_NEWNEIGH, flags);
  ndmsg nd{};
  nd.ndm_family = static_cast<uint8_t>(args.u32("family"));
  nd.ndm_ifindex = static_cast<int>(args.has("ifindex") ? args.u32("ifindex") : ctx.ifindex(args.str("dev"), op));
  nd.ndm_state = static_cast<uint16_t>(args.u32("state", 0));
  nd.ndm_flags = static_cast<uint8_t>(args.u32("flags", 0));
  m.putHeader(nd);
  // The key first (an FDB entry's is its MAC), then what it maps to, as ip and bridge send them.
  if (nd.ndm_family == AF_BRIDGE) {
    m.putBytes(NDA_LLADDR, parseMac(args.str("lladdr"), "mac"));
    if (const Value* d = args.get("dst")) {
      IpAddr a = parseIp(d->string(), "dst");
      m.put(NDA_DST, a.bytes, a.len());
    }
  } else {
    IpAddr a = parseIp(args.str("dst"), "dst");
    m.put(NDA_DST, a.bytes, a.len());
    if (const Value* l = args.get("lladdr")) m.putBytes(NDA_LLADDR, parseMac(l->string(), "lladdr"));
  }
  if (const Value* v = args.get("vlan")) m.putU16(NDA_VLAN, static_cast<uint16_t>(v->number()));
  if (const Value* v = args.get("port")) m.putBe16(NDA_PORT, static_cast<uint16_t>(v->number()));
  if (const Value* v = args.get("vni")) m.putU32(NDA_VNI, static_cast<uint32_t>(v->number()));
  if (const Value* v = args.get("via")) m.putU32(NDA_IFINDEX, ctx.ifindex(v->string(), op));
  return m;
}

Value neighModify(Ctx& ctx, const Value& args) {
  std::string op = args.str("op", "neigh");
  MsgBuilder m = buildNeigh(ctx, args, op.c_str());
  ctx.rtnl().request(m, op.c_str());
  return Value();
}

// The request as it would be sent (seq and port 0), for golden-bytes tests.
Value neighEncode(Ctx& ctx, const Value& args) {
  MsgBuilder m = buildNeigh(ctx, args, "neigh.encode");
  m.addFlags(NLM_F_REQUEST | NLM_F_ACK);
  m.setSeq(0);
  return Value::bytes(m.data(), m.size());
}

// args: family, and optionally dev (entries of one device).
Value neighList(Ctx& ctx, const Value& args) {
  std::string op = args.str("op", "neigh.list");
  uint8_t fam = static_cast<uint8_t>(args.u32("family", AF_UNSPEC));
  MsgBuilder m(RTM_GETNEIGH, 0);
  ndmsg nd{};
  nd.ndm_family = fam;
  uint32_t dev = args.has("dev") ? ctx.ifindex(args.str("dev"), op.c_str()) : 0;
  nd.ndm_ifindex = static_cast<int>(dev);
  m.putHeader(nd);
  Value out = Value::array();
  ctx.rtnl().dump(m, op.c_str(), [&](const nlmsghdr* h) {
    if (h->nlmsg_type != RTM_NEWNEIGH) return;
    const ndmsg* r = familyHeader<ndmsg>(h);
    if (!r || (dev && static_cast<uint32_t>(r->ndm_ifindex) != dev)) return;
    if (fam != AF_UNSPEC && r->ndm_family != fam) return;
    out.push(decodeNeigh(ctx, h, nullptr));
  });
  return out;
}

// Proxy entries are dumped only when the request carries NTF_PROXY (ip neigh show proxy).
Value neighListProxy(Ctx& ctx, const Value& args) {
  std::string op = args.str("op", "neigh.list");
  uint8_t fam = static_cast<uint8_t>(args.u32("family", AF_UNSPEC));
  MsgBuilder m(RTM_GETNEIGH, 0);
  ndmsg nd{};
  nd.ndm_family = fam;
  nd.ndm_flags = NTF_PROXY;
  m.putHeader(nd);
  Value out = Value::array();
  ctx.rtnl().dump(m, op.c_str(), [&](const nlmsghdr* h) {
    if (h->nlmsg_type == RTM_NEWNEIGH) out.push(decodeNeigh(ctx, h, nullptr));
  });
  return out;
}

}  // namespace

VNL_OP("neigh.modify", neighModify);
VNL_OP("neigh.encode", neighEncode);
VNL_OP("neigh.list", neighList);
VNL_OP("neigh.listProxy", neighListProxy);

}  // namespace vnl
