// Links: ip link add/show/set/del, and delete by group.
#include <linux/if.h>
#include <linux/if_arp.h>
#include <unistd.h>

#include "codec/format.h"
#include "codec/kind_schema.h"
#include "ops/link.h"

namespace vnl {

std::map<std::string, const LinkKind*>& LinkKinds::all() {
  static std::map<std::string, const LinkKind*> m;
  return m;
}
const LinkKind* LinkKinds::find(const std::string& kind) {
  auto& m = all();
  auto it = m.find(kind);
  return it == m.end() ? nullptr : it->second;
}

void fillLinkCommon(Ctx& ctx, MsgBuilder& m, const Value& spec, const char* op, bool create) {
  if (const Value* v = spec.get("mtu")) m.putU32(IFLA_MTU, static_cast<uint32_t>(v->number()));
  if (const Value* v = spec.get("mac")) m.putBytes(IFLA_ADDRESS, parseMac(v->string(), "mac"));
  if (const Value* v = spec.get("txqueuelen")) m.putU32(IFLA_TXQLEN, static_cast<uint32_t>(v->number()));
  if (const Value* v = spec.get("group")) m.putU32(IFLA_GROUP, static_cast<uint32_t>(v->number()));
  if (const Value* v = spec.get("alias")) m.putStr(IFLA_IFALIAS, v->string());
  if (const Value* v = spec.get("master")) {
    // An empty string means "no master" (ip link set X nomaster).
    uint32_t idx = v->string().empty() ? 0 : ctx.ifindex(v->string(), op);
    m.putU32(IFLA_MASTER, idx);
  }
  putLinkU32Attrs(m, spec);
  // The kernel reads IFLA_CARRIER only on an existing link (a driver with ndo_change_carrier).
  if (const Value* v = spec.get("carrier"); v && !create) m.putU8(IFLA_CARRIER, v->boolean() ? 1 : 0);
}

MsgBuilder buildLinkAdd(Ctx& ctx, const Value& spec, const char* op, std::vector<Fd>& keep) {
  MsgBuilder m(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  putLinkFlags(ifi, spec);
  m.putHeader(ifi);
  std::string kind = spec.str("kind");
  auto schemas = kindSchemas();
  const KindSchema* k = findKindSchema(*schemas, kind);
  if (!k) throw std::invalid_argument("kind: no table for link kind '" + kind + "'");
  NameResolver resolve = [&](const std::string& n) { return ctx.ifindex(n, op); };
  static const Value kNone = Value::object();
  const Value* top = spec.get("top");
  const Value* data = spec.get("data");
  if (!top) top = &kNone;
  if (!data) data = &kNone;
  // iproute2's order (the golden bytes): link attributes, the name, the namespace, the kind.
  fillLinkCommon(ctx, m, spec, op, true);
  encodeKindFields(m, k->fields, *top, resolve, true);
  if (const Value* n = spec.get("name")) m.putStr(IFLA_IFNAME, n->string());
  if (const Value* ns = spec.get("netns")) {
    int fd = openNetnsArg(*ns, op);
    if (fd >= 0) { keep.emplace_back(fd); m.putU32(IFLA_NET_NS_FD, static_cast<uint32_t>(fd)); }
  }
  const LinkKind* hook = k->hook.empty() ? nullptr : LinkKinds::find(k->hook);
  if (!k->hook.empty() && !hook) throw std::invalid_argument("kind: no native hook '" + k->hook + "' for link kind '" + kind + "'");
  {
    auto li = m.nestAs(IFLA_LINKINFO);
    m.putBytes(IFLA_INFO_KIND, kind);  // no NUL, as iproute2 sends it
    if (hasKindData(k->fields, *data) || (hook && hook->wants(*data))) {
      auto d = m.nestAs(IFLA_INFO_DATA);
      encodeKindFields(m, k->fields, *data, resolve, false);
      if (hook) hook->fillAdd(ctx, m, *data, op, keep);
    }
  }
  return m;
}

namespace {

Value linkGetByName(Ctx& ctx, const Value& args, const char* op) {
  MsgBuilder m(RTM_GETLINK, 0);
  ifinfomsg ifi{};
  if (const Value* idx = args.get("index")) ifi.ifi_index = static_cast<int>(idx->number());
  m.putHeader(ifi);
  if (!ifi.ifi_index) m.putStr(IFLA_IFNAME, args.str("name"));
  Value out;
  ctx.rtnl().request(m, op, [&](const nlmsghdr* h) {
    if (h->nlmsg_type == RTM_NEWLINK) out = decodeLink(h, ctx.names());
  });
  if (out.isUndefined()) throw SysError(ENODEV, op);
  return out;
}

Value linkAdd(Ctx& ctx, const Value& args) {
  const char* op = "link.add";
  std::vector<Fd> keep;
  MsgBuilder m = buildLinkAdd(ctx, args, op, keep);
  // A link created straight into another namespace cannot be echoed back to this one.
  bool echo = args.flag("echo", true) && !args.has("netns");
  if (echo) m.addFlags(NLM_F_ECHO);
  Value out;
  ctx.rtnl().request(m, op, [&](const nlmsghdr* h) {
    if (h->nlmsg_type == RTM_NEWLINK && out.isUndefined()) out = decodeLink(h, ctx.names());
  });
  if (out.isUndefined() && echo) {
    Value q = Value::object();
    q.set("name", args.str("name"));
    return linkGetByName(ctx, q, op);
  }
  if (out.isUndefined()) out = Value::object();
  return out;
}

Value linkGet(Ctx& ctx, const Value& args) { return linkGetByName(ctx, args, "link.get"); }


// One RTM_NEWLINK/RTM_DELLINK message in, a Link out; every length is checked first.
Value linkDecode(Ctx& ctx, const Value& args) {
  const std::string& b = args.req("bytes").string();
  if (b.size() < NLMSG_HDRLEN) throw DecodeError("message shorter than a netlink header");
  nlmsghdr h{};
  memcpy(&h, b.data(), sizeof h);
  if (h.nlmsg_len < NLMSG_HDRLEN || h.nlmsg_len > b.size())
    throw DecodeError("nlmsg_len " + std::to_string(h.nlmsg_len) + " does not fit the " + std::to_string(b.size()) + " bytes given");
  if (h.nlmsg_type != RTM_NEWLINK && h.nlmsg_type != RTM_DELLINK)
    throw DecodeError("not an RTM_NEWLINK/RTM_DELLINK message (type " + std::to_string(h.nlmsg_type) + ")");
  // An aligned private copy: the decoder reads the message in place.
  std::vector<uint32_t> copy((h.nlmsg_len + 3) / 4);
  memcpy(copy.data(), b.data(), h.nlmsg_len);
  return decodeLink(reinterpret_cast<const nlmsghdr*>(copy.data()), ctx.names());
}

Value linkList(Ctx& ctx, const Value& args) {
  MsgBuilder m(RTM_GETLINK, 0);
  ifinfomsg ifi{};
  m.putHeader(ifi);
  std::vector<std::vector<uint8_t>> msgs;
  std::map<uint32_t, std::string> names;
  ctx.rtnl().dump(m, "link.list", [&](const nlmsghdr* h) {
    if (h->nlmsg_type != RTM_NEWLINK) return;
    const ifinfomsg* i = familyHeader<ifinfomsg>(h);
    const uint8_t* p;
    size_t len;
    if (!i || !payloadAfter(h, sizeof(ifinfomsg), p, len)) return;
    AttrTable tb(p, len, IFLA_IFNAME);
    if (tb[IFLA_IFNAME]) names[static_cast<uint32_t>(i->ifi_index)] = tb[IFLA_IFNAME]->str();
    const uint8_t* b = reinterpret_cast<const uint8_t*>(h);
    msgs.emplace_back(b, b + h->nlmsg_len);
  });
  std::string kind = args.str("kind", "");
  std::string master = args.str("master", "");
  // Groups are u32: one at or above 2^31 must not turn into "no filter".
  const bool byGroup = args.has("group");
  const uint32_t group = byGroup ? args.u32("group") : 0;
  Value out = Value::array();
  for (auto& raw : msgs) {
    Value l = decodeLink(reinterpret_cast<const nlmsghdr*>(raw.data()), Names::of(names));
    if (!kind.empty() && l.str("kind", "") != kind) continue;
    if (!master.empty() && l.str("master", "") != master) continue;
    if (byGroup && static_cast<uint32_t>(l.num("group", 0)) != group) continue;
    out.push(std::move(l));
  }
  return out;
}

// One RTM_NEWLINK change request (link.set and link.encodeSet); an fd the request names
// (the target namespace) goes in `keep`, which outlives the send.
MsgBuilder buildLinkSet(Ctx& ctx, const Value& args, const char* op, std::vector<Fd>& keep) {
  MsgBuilder m(RTM_NEWLINK, 0);
  ifinfomsg ifi{};
  ifi.ifi_index = args.has("index") ? static_cast<int>(args.num("index")) : static_cast<int>(ctx.ifindex(args.str("name"), op));
  putLinkFlags(ifi, args);
  m.putHeader(ifi);
  if (const Value* n = args.get("newName")) m.putStr(IFLA_IFNAME, n->string());
  fillLinkCommon(ctx, m, args, op, false);
  if (const Value* ns = args.get("netns")) {
    int fd = openNetnsArg(*ns, op);
    if (fd >= 0) { keep.emplace_back(fd); m.putU32(IFLA_NET_NS_FD, static_cast<uint32_t>(fd)); }
  }
  if (const Value* kd = args.get("kindData")) {
    // Kind-specific changes (e.g. a macvlan mode): TypeScript read the link's kind and checked
    // every key against that kind's table.
    std::string kind = args.str("kind");
    auto schemas = kindSchemas();
    const KindSchema* k = findKindSchema(*schemas, kind);
    if (!k) throw SysError(EOPNOTSUPP, std::string(op) + ": links of kind '" + kind + "' have no such settings");
    NameResolver resolve = [&](const std::string& n) { return ctx.ifindex(n, op); };
    auto li = m.nestAs(IFLA_LINKINFO);
    m.putBytes(IFLA_INFO_KIND, kind);  // no NUL, as iproute2 sends it
    auto data = m.nestAs(IFLA_INFO_DATA);
    encodeKindFields(m, k->fields, *kd, resolve, false);
  }
  return m;
}


MsgBuilder linkDel(Ctx&, const Value& args, const char*) {
  MsgBuilder m(RTM_DELLINK, 0);
  ifinfomsg ifi{};
  if (const Value* idx = args.get("index")) ifi.ifi_index = static_cast<int>(idx->number());
  m.putHeader(ifi);
  if (!ifi.ifi_index) m.putStr(IFLA_IFNAME, args.str("name"));
  return m;
}

// Every link in the group goes in one kernel call (one RCU wait for most kinds).
MsgBuilder linkDelGroup(Ctx&, const Value& args, const char*) {
  uint32_t g = args.u32("group");
  if (g == 0) throw std::invalid_argument("group 0 is every ungrouped link; refusing to delete it");
  MsgBuilder m(RTM_DELLINK, 0);
  ifinfomsg ifi{};
  m.putHeader(ifi);
  m.putU32(IFLA_GROUP, g);
  return m;
}

}  // namespace

VNL_OP("link.add", linkAdd);
VNL_OP("link.get", linkGet);
// link.encode: the request link.add would send (no echo), for golden bytes and users.
VNL_ENCODE_OP("link.encode", buildLinkAdd);
VNL_OP("link.decode", linkDecode);
VNL_OP("link.list", linkList);
// link.set sends and acks the change; link.encodeSet returns it (REQUEST|ACK, seq 0).
VNL_CHANGE_OPS("link.set", "link.encodeSet", buildLinkSet);
VNL_CHANGE_OP("link.del", linkDel);
VNL_CHANGE_OP("link.delGroup", linkDelGroup);

}  // namespace vnl
