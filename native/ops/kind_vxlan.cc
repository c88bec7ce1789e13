// vxlan: IFLA_INFO_DATA holds IFLA_VXLAN_*. A unicast `remote` and a multicast group share
// IFLA_VXLAN_GROUP(6), as in iproute2; ports are big-endian.
#include <arpa/inet.h>

#include "ops/format.h"
#include "ops/link.h"

namespace vnl {
namespace {

void putAddr(MsgBuilder& m, uint16_t t4, uint16_t t6, const std::string& s, const char* field) {
  IpAddr a = parseIp(s, field);
  m.put(a.family == AF_INET ? t4 : t6, a.bytes, a.len());
}

void fillVxlan(Ctx& ctx, MsgBuilder& m, const Value& s, const char* op, std::vector<Fd>&) {
  if (const Value* v = s.get("vni")) m.putU32(IFLA_VXLAN_ID, static_cast<uint32_t>(v->number()));
  if (const Value* v = s.get("remote")) putAddr(m, IFLA_VXLAN_GROUP, IFLA_VXLAN_GROUP6, v->string(), "remote");
  if (const Value* v = s.get("mcastGroup")) putAddr(m, IFLA_VXLAN_GROUP, IFLA_VXLAN_GROUP6, v->string(), "mcastGroup");
  if (const Value* v = s.get("local")) putAddr(m, IFLA_VXLAN_LOCAL, IFLA_VXLAN_LOCAL6, v->string(), "local");
  if (const Value* v = s.get("vxlanLink")) m.putU32(IFLA_VXLAN_LINK, ctx.ifindex(v->string(), op));
  if (const Value* v = s.get("dstPort")) m.putBe16(IFLA_VXLAN_PORT, static_cast<uint16_t>(v->number()));
  if (const Value* v = s.get("srcPortMin")) {
    ifla_vxlan_port_range r{htons(static_cast<uint16_t>(v->number())), htons(static_cast<uint16_t>(s.num("srcPortMax")))};
    m.put(IFLA_VXLAN_PORT_RANGE, &r, sizeof r);
  }
  if (const Value* v = s.get("ttl")) m.putU8(IFLA_VXLAN_TTL, static_cast<uint8_t>(v->number()));
  if (const Value* v = s.get("tos")) m.putU8(IFLA_VXLAN_TOS, static_cast<uint8_t>(v->number()));
  if (const Value* v = s.get("learning")) m.putU8(IFLA_VXLAN_LEARNING, v->boolean() ? 1 : 0);
  if (const Value* v = s.get("ageing")) m.putU32(IFLA_VXLAN_AGEING, static_cast<uint32_t>(v->number()));
  if (const Value* v = s.get("maxAddresses")) m.putU32(IFLA_VXLAN_LIMIT, static_cast<uint32_t>(v->number()));
  if (const Value* v = s.get("proxy")) m.putU8(IFLA_VXLAN_PROXY, v->boolean() ? 1 : 0);
  if (const Value* v = s.get("l2miss")) m.putU8(IFLA_VXLAN_L2MISS, v->boolean() ? 1 : 0);
  if (const Value* v = s.get("l3miss")) m.putU8(IFLA_VXLAN_L3MISS, v->boolean() ? 1 : 0);
  if (const Value* v = s.get("udpCsum")) m.putU8(IFLA_VXLAN_UDP_CSUM, v->boolean() ? 1 : 0);
}

std::string addrOf(const Attr& a) {
  if (a.len == 4) return ipToString(AF_INET, a.data);
  if (a.len == 16) return ipToString(AF_INET6, a.data);
  return "";
}

bool isMulticast(const Attr& a) {
  if (a.len == 4) return (a.data[0] & 0xf0) == 0xe0;
  if (a.len == 16) return a.data[0] == 0xff;
  return false;
}

void decodeVxlan(const Attr& data, Value& info) {
  AttrTable tb(data, IFLA_VXLAN_MAX);
  if (tb[IFLA_VXLAN_ID]) info.set("vni", tb[IFLA_VXLAN_ID]->u32());
  for (uint16_t t : {IFLA_VXLAN_GROUP, IFLA_VXLAN_GROUP6}) {
    const Attr* a = tb[t];
    if (!a) continue;
    std::string s = addrOf(*a);
    if (s.empty() || s == "0.0.0.0" || s == "::") continue;
    info.set(isMulticast(*a) ? "mcastGroup" : "remote", s);
  }
  for (uint16_t t : {IFLA_VXLAN_LOCAL, IFLA_VXLAN_LOCAL6}) {
    const Attr* a = tb[t];
    if (!a) continue;
    std::string s = addrOf(*a);
    if (!s.empty() && s != "0.0.0.0" && s != "::") info.set("local", s);
  }
  if (tb[IFLA_VXLAN_LINK] && tb[IFLA_VXLAN_LINK]->u32()) info.set("linkIndex", tb[IFLA_VXLAN_LINK]->u32());
  if (tb[IFLA_VXLAN_PORT]) info.set("dstPort", tb[IFLA_VXLAN_PORT]->be16());
  if (tb[IFLA_VXLAN_PORT_RANGE]) {
    ifla_vxlan_port_range r{};
    if (tb[IFLA_VXLAN_PORT_RANGE]->as(r)) {
      info.set("srcPortMin", ntohs(r.low));
      info.set("srcPortMax", ntohs(r.high));
    }
  }
  if (tb[IFLA_VXLAN_TTL]) info.set("ttl", tb[IFLA_VXLAN_TTL]->u8());
  if (tb[IFLA_VXLAN_TOS]) info.set("tos", tb[IFLA_VXLAN_TOS]->u8());
  if (tb[IFLA_VXLAN_LEARNING]) info.set("learning", tb[IFLA_VXLAN_LEARNING]->u8() != 0);
  if (tb[IFLA_VXLAN_AGEING]) info.set("ageing", tb[IFLA_VXLAN_AGEING]->u32());
  if (tb[IFLA_VXLAN_LIMIT]) info.set("maxAddresses", tb[IFLA_VXLAN_LIMIT]->u32());
  if (tb[IFLA_VXLAN_PROXY]) info.set("proxy", tb[IFLA_VXLAN_PROXY]->u8() != 0);
  if (tb[IFLA_VXLAN_L2MISS]) info.set("l2miss", tb[IFLA_VXLAN_L2MISS]->u8() != 0);
  if (tb[IFLA_VXLAN_L3MISS]) info.set("l3miss", tb[IFLA_VXLAN_L3MISS]->u8() != 0);
  if (tb[IFLA_VXLAN_UDP_CSUM]) info.set("udpCsum", tb[IFLA_VXLAN_UDP_CSUM]->u8() != 0);
}

const LinkKind vxlan{"vxlan", fillVxlan, nullptr, decodeVxlan};
VNL_LINK_KIND(vxlan);

}  // namespace
}  // namespace vnl
