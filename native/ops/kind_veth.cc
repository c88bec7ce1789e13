// veth: IFLA_INFO_DATA holds VETH_INFO_PEER, an ifinfomsg followed by the peer's attributes.
#include <net/if.h>
#include <linux/veth.h>
#include <unistd.h>

#include "ops/format.h"
#include "ops/link.h"

namespace vnl {
namespace {

void fillVeth(Ctx& ctx, MsgBuilder& m, const Value& spec, const char* op, std::vector<Fd>& keep) {
  const Value* peer = spec.get("peer");
  if (!peer) return;
  auto n = m.nest(VETH_INFO_PEER);
  ifinfomsg ifi{};
  m.putHeader(ifi);
  if (const Value* v = peer->get("name")) m.putStr(IFLA_IFNAME, v->string());
  if (const Value* v = peer->get("mac")) m.putBytes(IFLA_ADDRESS, parseMac(v->string(), "peer.mac"));
  if (const Value* v = peer->get("mtu")) m.putU32(IFLA_MTU, static_cast<uint32_t>(v->number()));
  if (const Value* v = peer->get("txqueuelen")) m.putU32(IFLA_TXQLEN, static_cast<uint32_t>(v->number()));
  if (const Value* v = peer->get("group")) m.putU32(IFLA_GROUP, static_cast<uint32_t>(v->number()));
  if (const Value* ns = peer->get("netns")) {
    int fd = openNetnsArg(*ns, op);
    if (fd >= 0) {
      keep.emplace_back(fd);
      m.putU32(IFLA_NET_NS_FD, static_cast<uint32_t>(fd));
    }
  }
}

const LinkKind veth{"veth", fillVeth, nullptr, nullptr};
VNL_LINK_KIND(veth);

}  // namespace
}  // namespace vnl
