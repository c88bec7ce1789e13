// "codec.decode": runs one of the reply decoders over caller-given bytes, with no socket and
// no name lookups. Tests use it to replay what the kernel (or a fuzzer) could send; the fuzz
// harnesses in fuzz/ drive the same decoders directly.
#include <linux/rtnetlink.h>

#include <vector>

#include "codec/nft.h"
#include "codec/rtnl.h"
#include "codec/tc.h"
#include "ops/ops.h"

namespace vnl {
namespace {

Value ackValue(const AckResult& r) {
  Value v = Value::object();
  v.set("err", r.err);
  v.set("seq", r.seq);
  if (!r.extack.empty()) v.set("extack", r.extack);
  return v;
}

// args: { kind: 'ack'|'link'|'addr'|'route'|'neigh'|'table'|'chain'|'rule'|'qdisc'|'class'|'filter', bytes }
// (tc kinds use the default scheduler clock, as the tc fuzz harness does)
// Returns one decoded object per netlink message in `bytes`.
Value codecDecode(Ctx&, const Value& args) {
  const std::string kind = args.str("kind");
  const std::string& raw = args.bytesOf("bytes");
  // A copy keeps the headers aligned as they are in a receive buffer.
  std::vector<uint8_t> buf(raw.begin(), raw.end());
  const Names names = Names::none();  // no lookups: decoded indexes stay unnamed
  const tc::Clock clk;
  Value out = Value::array();
  MsgIter it(buf.data(), buf.size());
  while (const nlmsghdr* h = it.next()) {
    if (kind == "ack") out.push(ackValue(NlSocket::parseAck(h)));
    else if (kind == "link") out.push(decodeLink(h, names));
    else if (kind == "addr") out.push(decodeAddr(h, names));
    else if (kind == "route") out.push(decodeRoute(h, names));
    else if (kind == "neigh") out.push(decodeNeigh(h, names));
    else if (kind == "table") out.push(nft::decodeTable(h));
    else if (kind == "chain") out.push(nft::decodeChain(h));
    else if (kind == "rule") out.push(nft::decodeRule(h));
    else if (kind == "qdisc") out.push(tc::decodeQdisc(h, clk, names));
    else if (kind == "class") out.push(tc::decodeClass(h, clk, names));
    else if (kind == "filter") out.push(tc::decodeFilter(h, clk, names));
    else throw std::invalid_argument("codec.decode: unknown kind '" + kind + "'");
  }
  return out;
}

}  // namespace

VNL_OP("codec.decode", codecDecode);

}  // namespace vnl
