// "netlink.raw": sends caller-built netlink bytes from a fresh socket in the handle's namespace
// and runs the transport's receive loop for their replies, exactly as every operation does.
// Tests use it to reach the loop's edges (a message the kernel never answers, an ack lost to a
// full receive buffer, a dump the kernel refuses in NLMSG_DONE) that no operation provokes.
#include <linux/netlink.h>

#include <set>
#include <vector>

#include "ops/ops.h"

namespace vnl {
namespace {

// args: { protocol: 'route'|'netfilter', bytes, rcvbuf?, timeoutMs? } -> { replies: bytes[] }
// Completes at the first NLMSG_ERROR or NLMSG_DONE for a seq of `bytes` (an error rejects).
Value netlinkRaw(Ctx&, const Value& args) {
  const char* op = "netlink.raw";
  const std::string proto = args.str("protocol");
  if (proto != "route" && proto != "netfilter") throw std::invalid_argument("protocol must be 'route' or 'netfilter'");
  const std::string& raw = args.bytesOf("bytes");
  std::vector<uint8_t> bytes(raw.begin(), raw.end());
  std::set<uint32_t> seqs;
  {
    MsgIter it(bytes.data(), bytes.size());
    while (const nlmsghdr* h = it.next()) seqs.insert(h->nlmsg_seq);
  }
  if (seqs.empty()) throw std::invalid_argument("bytes must hold at least one netlink message");
  NlSocket s(proto == "route" ? NETLINK_ROUTE : NETLINK_NETFILTER, static_cast<int>(args.num("rcvbuf", 1 << 20)));
  s.send(bytes.data(), bytes.size(), op);
  Value replies = Value::array();
  Exchange x;
  x.op = op;
  x.timeoutMs = static_cast<int>(args.num("timeoutMs", kExchangeTimeoutMs));
  x.owns = [&](uint32_t q) { return seqs.count(q) != 0; };
  x.onMsg = [&](const nlmsghdr* h, const AckResult* st) {
    if (st && st->err) throw SysError(st->err, op, st->extack);
    replies.push(Value::bytes(h, h->nlmsg_len));
    return st != nullptr;
  };
  s.exchange(x);
  Value out = Value::object();
  out.set("replies", std::move(replies));
  return out;
}

}  // namespace

VNL_OP("netlink.raw", netlinkRaw);

}  // namespace vnl
