// link.addMany: many RTM_NEWLINK creates in flight on the handle's socket at once, packed
// into few sendmsg calls, one result (the echoed link) or one error per spec, by index.
#include "ops/link.h"

namespace vnl {
namespace {

Value linkAddMany(Ctx& ctx, const Value& args) {
  const char* op = "link.addMany";
  const auto& specs = args.req("specs").items();
  bool echoAll = args.flag("echo", true);
  size_t window = static_cast<size_t>(args.num("concurrency", 64));
  std::vector<Fd> keep;
  std::vector<MsgBuilder> msgs;
  std::vector<size_t> slot;      // msgs[k] belongs to specs[slot[k]]
  std::vector<bool> echoed(specs.size(), false);
  Value out = Value::array();
  std::vector<Value> results(specs.size());
  for (size_t i = 0; i < specs.size(); i++) {
    const Value& spec = specs[i];
    try {
      MsgBuilder m = buildLinkAdd(ctx, spec, op, keep);
      // A link created straight into another namespace cannot be echoed back here.
      if (spec.flag("echo", echoAll) && !spec.has("netns")) { m.addFlags(NLM_F_ECHO); echoed[i] = true; }
      msgs.push_back(std::move(m));
      slot.push_back(i);
    } catch (const SysError& e) {
      Value r = Value::object();
      r.set("errno", e.err()); r.set("where", e.where());
      results[i] = std::move(r);
    } catch (const std::invalid_argument& e) {
      Value r = Value::object();
      r.set("errno", EINVAL); r.set("where", std::string(op) + ": bad argument: " + e.what());
      results[i] = std::move(r);
    }
  }
  std::vector<Value> links(msgs.size());
  std::vector<AckResult> acks = ctx.rtnl().requestMany(msgs, [&](size_t k, const nlmsghdr* h) {
    if (h->nlmsg_type == RTM_NEWLINK && links[k].isUndefined()) links[k] = decodeLink(h, ctx.names());
  }, window);
  for (size_t k = 0; k < msgs.size(); k++) {
    size_t i = slot[k];
    Value r = Value::object();
    if (acks[k].err) {
      r.set("errno", acks[k].err);
      r.set("where", op);
      if (!acks[k].extack.empty()) r.set("extack", acks[k].extack);
    } else if (!links[k].isUndefined()) {
      r.set("link", std::move(links[k]));
    } else {
      Value l = Value::object();
      l.set("name", specs[i].str("name", ""));
      l.set("kind", specs[i].str("kind", ""));
      r.set("link", std::move(l));
    }
    results[i] = std::move(r);
  }
  for (auto& r : results) out.push(std::move(r));
  return out;
}

}  // namespace

VNL_OP("link.addMany", linkAddMany);

}  // namespace vnl
