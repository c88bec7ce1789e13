// veth's fill hook: IFLA_INFO_DATA holds VETH_INFO_PEER, an ifinfomsg followed by the peer's
// own link attributes, a shape the kind tables do not describe (lib/kinds/veth.ts names it).
#include <net/if.h>
#include <linux/veth.h>
#include <unistd.h>

#include "codec/format.h"
#include "ops/link.h"

namespace vnl {
namespace {

void fillVeth(Ctx& ctx, MsgBuilder& m, const Value& data, const char* op, std::vector<Fd>& keep) {
  const Value* peer = data.get("peer");
  if (!peer) return;
  // iproute2's shape and order (the golden bytes): a plain nest, the peer's attributes, its name.
  auto n = m.nestAs(VETH_INFO_PEER);
  ifinfomsg ifi{};
  m.putHeader(ifi);
  if (const Value* v = peer->get("mtu")) m.putU32(IFLA_MTU, static_cast<uint32_t>(v->number()));
  if (const Value* v = peer->get("mac")) m.putBytes(IFLA_ADDRESS, parseMac(v->string(), "peer.mac"));
  if (const Value* v = peer->get("txqueuelen")) m.putU32(IFLA_TXQLEN, static_cast<uint32_t>(v->number()));
  if (const Value* v = peer->get("group")) m.putU32(IFLA_GROUP, static_cast<uint32_t>(v->number()));
  if (const Value* v = peer->get("name")) m.putStr(IFLA_IFNAME, v->string());
  if (const Value* ns = peer->get("netns")) {
    int fd = openNetnsArg(*ns, op);
    if (fd >= 0) {
      keep.emplace_back(fd);
      m.putU32(IFLA_NET_NS_FD, static_cast<uint32_t>(fd));
    }
  }
}

bool vethHasData(const Value& data) { return data.has("peer"); }

const LinkKind veth{"veth", fillVeth, vethHasData};
VNL_LINK_KIND(veth);

}  // namespace
}  // namespace vnl
