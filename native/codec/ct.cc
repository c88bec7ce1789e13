// ctnetlink messages (see ct.h). The layout follows the kernel's ctnetlink: a nfgenmsg,
// then CTA_TUPLE_ORIG / CTA_TUPLE_REPLY nests of CTA_TUPLE_IP {addresses} and
// CTA_TUPLE_PROTO {protocol number, ports in network order}.
#include <linux/netfilter/nfnetlink.h>
#include <sys/socket.h>

#include <stdexcept>
#include <tuple>
#include <string>

#include "codec/ct.h"

namespace vnl {
namespace ct {
namespace {

MsgBuilder message(uint8_t ctMsg, uint16_t flags, uint8_t family) {
  MsgBuilder m(msgType(ctMsg), flags);
  nfgenmsg g{};
  g.nfgen_family = family;
  g.version = NFNETLINK_V0;
  g.res_id = 0;
  m.putHeader(g);
  return m;
}

size_t addrLen(uint8_t family) { return family == AF_INET6 ? 16 : 4; }

void putTuple(MsgBuilder& m, uint16_t type, uint8_t family, const Value& t) {
  auto tuple = m.nest(type);
  {
    auto ip = m.nest(CTA_TUPLE_IP);
    std::string src = t.bytesOf("src"), dst = t.bytesOf("dst");
    if (src.size() != addrLen(family) || dst.size() != addrLen(family))
      throw std::invalid_argument("tuple addresses must be " + std::to_string(addrLen(family)) + " bytes for this family");
    m.putBytes(family == AF_INET6 ? CTA_IP_V6_SRC : CTA_IP_V4_SRC, src);
    m.putBytes(family == AF_INET6 ? CTA_IP_V6_DST : CTA_IP_V4_DST, dst);
  }
  {
    auto proto = m.nest(CTA_TUPLE_PROTO);
    m.putU8(CTA_PROTO_NUM, static_cast<uint8_t>(t.u32("proto")));
    if (t.has("sport")) m.putBe16(CTA_PROTO_SRC_PORT, static_cast<uint16_t>(t.u32("sport")));
    if (t.has("dport")) m.putBe16(CTA_PROTO_DST_PORT, static_cast<uint16_t>(t.u32("dport")));
  }
}

Value decodeTuple(const Attr& nest) {
  Value t = Value::object();
  AttrTable tb(nest, CTA_TUPLE_MAX);
  if (const Attr* ip = tb[CTA_TUPLE_IP]) {
    AttrTable a(*ip, CTA_IP_MAX);
    // Each address must be exactly its family's size: anything else is not an address.
    for (auto [type, key, len] : {std::tuple{CTA_IP_V4_SRC, "src", 4}, {CTA_IP_V4_DST, "dst", 4},
                                  {CTA_IP_V6_SRC, "src", 16}, {CTA_IP_V6_DST, "dst", 16}}) {
      const Attr* x = a[static_cast<uint16_t>(type)];
      if (x && x->len == static_cast<size_t>(len)) t.set(key, Value::bytes(x->data, x->len));
    }
  }
  if (const Attr* p = tb[CTA_TUPLE_PROTO]) {
    AttrTable a(*p, CTA_PROTO_MAX);
    if (const Attr* n = a[CTA_PROTO_NUM]) t.set("proto", static_cast<unsigned>(n->u8()));
    if (const Attr* s = a[CTA_PROTO_SRC_PORT]) t.set("sport", static_cast<unsigned>(s->be16()));
    if (const Attr* d = a[CTA_PROTO_DST_PORT]) t.set("dport", static_cast<unsigned>(d->be16()));
  }
  return t;
}

}  // namespace

MsgBuilder dumpRequest(uint8_t family) { return message(IPCTNL_MSG_CT_GET, 0, family); }

MsgBuilder deleteRequest(uint8_t family, const Value& tuple, const Value* id, uint16_t zone) {
  MsgBuilder m = message(IPCTNL_MSG_CT_DELETE, 0, family);
  putTuple(m, CTA_TUPLE_ORIG, family, tuple);
  if (id) m.putBe32(CTA_ID, static_cast<uint32_t>(id->number()));
  if (zone) m.putBe16(CTA_ZONE, zone);
  return m;
}

Value decodeEntry(const nlmsghdr* h) {
  size_t hdr = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(nfgenmsg));
  if (h->nlmsg_len < hdr) throw DecodeError("conntrack message shorter than its nfgenmsg");
  const auto* g = reinterpret_cast<const nfgenmsg*>(reinterpret_cast<const uint8_t*>(h) + NLMSG_HDRLEN);
  AttrTable tb(reinterpret_cast<const uint8_t*>(h) + hdr, h->nlmsg_len - hdr, CTA_MAX);
  Value e = Value::object();
  e.set("family", static_cast<unsigned>(g->nfgen_family));
  if (const Attr* o = tb[CTA_TUPLE_ORIG]) e.set("orig", decodeTuple(*o));
  if (const Attr* r = tb[CTA_TUPLE_REPLY]) e.set("reply", decodeTuple(*r));
  if (const Attr* s = tb[CTA_STATUS]) e.set("status", static_cast<double>(s->be32()));
  if (const Attr* i = tb[CTA_ID]) e.set("id", static_cast<double>(i->be32()));
  if (const Attr* z = tb[CTA_ZONE]) e.set("zone", static_cast<unsigned>(z->be16()));
  if (const Attr* k = tb[CTA_MARK]) e.set("mark", static_cast<double>(k->be32()));
  return e;
}

}  // namespace ct
}  // namespace vnl
