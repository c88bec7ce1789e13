// Traffic control over rtnetlink: tc qdisc/class/filter add|replace|change|del|show.
// The messages come from codec/tc; this file only resolves names in the handle's namespace,
// reads the scheduler clock and talks to the kernel.
#include <fcntl.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <unistd.h>

#include "codec/tc.h"
#include "ops/ops.h"

namespace vnl {

namespace {

// /proc/net/psched is the same in every namespace; read it once.
const tc::Clock& schedClock() {
  static const tc::Clock clk = [] {
    tc::Clock c;
    int fd = open("/proc/net/psched", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      char buf[128] = {0};
      ssize_t n = read(fd, buf, sizeof buf - 1);
      close(fd);
      if (n > 0) tc::Clock::parse(std::string(buf, static_cast<size_t>(n)), c);
    }
    return c;
  }();
  return clk;
}

tc::Cmd cmdOf(const std::string& s) {
  if (s == "add") return tc::Cmd::Add;
  if (s == "replace") return tc::Cmd::Replace;
  if (s == "change") return tc::Cmd::Change;
  if (s == "del") return tc::Cmd::Del;
  throw std::invalid_argument("unknown tc command '" + s + "'");
}

MsgBuilder build(Ctx& ctx, const Value& args, const char* op) {
  tc::Names names = ctx.names(op);
  std::string object = args.str("object");
  tc::Cmd cmd = cmdOf(args.str("cmd"));
  if (object == "qdisc") return tc::buildQdisc(cmd, args, schedClock(), names);
  if (object == "class") return tc::buildClass(cmd, args, schedClock(), names);
  if (object == "filter") return tc::buildFilter(cmd, args, schedClock(), names);
  throw std::invalid_argument("unknown tc object '" + object + "'");
}

// args: { op, requests: [modify's args...] }: all of them in one sendmsg, so the kernel runs
// them one after the other inside that call: a process that dies meanwhile cannot stop between
// them (shape() adds the ingress hook and its marked filter this way, never one without the
// other). Every request gets its own ack: [{ err, extack? }], in order.
Value tcModifyMany(Ctx& ctx, const Value& args) {
  std::string op = args.str("op", "tc");
  std::vector<MsgBuilder> msgs;
  for (const Value& r : args.req("requests").items()) msgs.push_back(build(ctx, r, op.c_str()));
  std::vector<AckResult> acks = ctx.rtnl().requestMany(msgs, {}, msgs.size());
  Value out = Value::array();
  for (const AckResult& a : acks) {
    Value v = Value::object();
    v.set("err", a.err);
    if (!a.extack.empty()) v.set("extack", a.extack);
    out.push(std::move(v));
  }
  return out;
}

Value tcList(Ctx& ctx, const Value& args) {
  std::string op = args.str("op", "tc.list");
  std::string object = args.str("object");
  tc::Names names = ctx.names(op.c_str());
  uint32_t ifindex = args.has("dev") ? ctx.ifindex(args.str("dev"), op.c_str()) : 0;
  uint16_t type = object == "qdisc" ? RTM_GETQDISC : object == "class" ? RTM_GETTCLASS : RTM_GETTFILTER;
  if (type != RTM_GETQDISC && !ifindex) throw std::invalid_argument("dev is required");
  MsgBuilder m = tc::buildDump(type, ifindex, args.u32("parent", 0));
  Value out = Value::array();
  const tc::Clock& clk = schedClock();
  ctx.rtnl().dump(m, op.c_str(), [&](const nlmsghdr* h) {
    const tcmsg* t = familyHeader<tcmsg>(h);
    if (!t || (ifindex && static_cast<uint32_t>(t->tcm_ifindex) != ifindex)) return;
    if (h->nlmsg_type == RTM_NEWQDISC) out.push(tc::decodeQdisc(h, clk, names));
    else if (h->nlmsg_type == RTM_NEWTCLASS) out.push(tc::decodeClass(h, clk, names));
    else if (h->nlmsg_type == RTM_NEWTFILTER) out.push(tc::decodeFilter(h, clk, names));
  });
  return out;
}

}  // namespace

// tc.modify sends what `build` encodes (named by args.op); tc.encode returns those bytes.
VNL_CHANGE_OPS("tc.modify", "tc.encode", build);
VNL_OP("tc.modifyMany", tcModifyMany);
VNL_OP("tc.list", tcList);

}  // namespace vnl
