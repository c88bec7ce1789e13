// Policy routing rules: `ip rule add|del|show`, RTM_{NEW,DEL,GET}RULE with a fib_rule_hdr.
#include <linux/fib_rules.h>
#include <linux/rtnetlink.h>

#include "codec/format.h"
#include "codec/rtnl.h"
#include "ops/ops.h"

namespace vnl {

namespace {

Value ruleModify(Ctx& ctx, const Value& args) {
  std::string op = args.str("op", "rule");
  MsgBuilder m = buildRule(args);
  ctx.rtnl().request(m, op.c_str());
  return Value();
}

Value ruleEncode(Ctx&, const Value& args) {
  MsgBuilder m = buildRule(args);
  m.addFlags(NLM_F_REQUEST | NLM_F_ACK);
  m.setSeq(0);
  return Value::bytes(m.data(), m.size());
}

Value ruleList(Ctx& ctx, const Value& args) {
  MsgBuilder m(RTM_GETRULE, 0);
  fib_rule_hdr r{};
  r.family = static_cast<uint8_t>(args.u32("family", AF_UNSPEC));
  m.putHeader(r);
  Value out = Value::array();
  ctx.rtnl().dump(m, "rule.list", [&](const nlmsghdr* h) {
    if (h->nlmsg_type == RTM_NEWRULE) out.push(decodeRule(h));
  });
  return out;
}

}  // namespace

VNL_OP("rule.modify", ruleModify);
VNL_OP("rule.encode", ruleEncode);
VNL_OP("rule.list", ruleList);

}  // namespace vnl
