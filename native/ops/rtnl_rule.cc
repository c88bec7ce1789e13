// Policy routing rules: `ip rule add|del|show`, RTM_{NEW,DEL,GET}RULE with a fib_rule_hdr.
#include <linux/fib_rules.h>
#include <linux/rtnetlink.h>

#include "codec/format.h"
#include "codec/rtnl.h"
#include "ops/ops.h"

namespace vnl {

namespace {

MsgBuilder ruleMsg(Ctx&, const Value& args, const char*) { return buildRule(args); }

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

VNL_CHANGE_OPS("rule.modify", "rule.encode", ruleMsg);
VNL_OP("rule.list", ruleList);

}  // namespace vnl
