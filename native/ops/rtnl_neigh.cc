// Neighbours and the bridge forwarding database: `ip neigh` and `bridge fdb`. Both are
// RTM_NEWNEIGH messages; an FDB entry is a neighbour of family AF_BRIDGE whose key is a MAC.
// The decoder (decodeNeigh) is shared with monitors.
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>

#include "codec/format.h"
#include "codec/rtnl.h"
#include "ops/ops.h"

namespace vnl {

namespace {

// neigh.modify sends it (named by args.op: neigh.add, fdb.del, ...); neigh.encode returns it.
MsgBuilder neighMsg(Ctx& ctx, const Value& args, const char* op) { return buildNeigh(args, ctx.names(op)); }

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
    out.push(decodeNeigh(h, ctx.names()));
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
    if (h->nlmsg_type == RTM_NEWNEIGH) out.push(decodeNeigh(h, ctx.names()));
  });
  return out;
}

}  // namespace

VNL_CHANGE_OPS("neigh.modify", "neigh.encode", neighMsg);
VNL_OP("neigh.list", neighList);
VNL_OP("neigh.listProxy", neighListProxy);

}  // namespace vnl
