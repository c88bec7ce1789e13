// Neighbours as `ip neigh` shows them, decoded for monitors (there is no neigh family op yet).
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>

#include "ops/format.h"
#include "ops/rtnl_decode.h"

namespace vnl {

Value decodeNeigh(Ctx& ctx, const nlmsghdr* h, const IndexNames* names) {
  const ndmsg* nd = familyHeader<ndmsg>(h);
  if (!nd) throw CodecError("short RTM_NEWNEIGH message");
  const uint8_t* p;
  size_t len;
  if (!payloadAfter(h, sizeof(ndmsg), p, len)) throw CodecError("short RTM_NEWNEIGH message");
  AttrTable tb(p, len, NDA_MAX);
  Value n = Value::object();
  int fam = nd->ndm_family;
  n.set("family", fam == AF_INET ? "inet" : fam == AF_INET6 ? "inet6" : fam == AF_BRIDGE ? "bridge" : "other");
  n.set("index", nd->ndm_ifindex);
  std::string ln;
  uint32_t idx = static_cast<uint32_t>(nd->ndm_ifindex);
  if (names) { auto it = names->find(idx); if (it != names->end()) ln = it->second; }
  else ln = ctx.ifname(idx);
  if (!ln.empty()) n.set("dev", ln);
  size_t alen = fam == AF_INET ? 4 : 16;
  if (tb[NDA_DST] && tb[NDA_DST]->len >= alen && (fam == AF_INET || fam == AF_INET6))
    n.set("dst", ipToString(fam, tb[NDA_DST]->data));
  if (tb[NDA_LLADDR]) n.set("lladdr", macToString(tb[NDA_LLADDR]->data, tb[NDA_LLADDR]->len));
  static const std::pair<uint16_t, const char*> states[] = {
      {NUD_INCOMPLETE, "INCOMPLETE"}, {NUD_REACHABLE, "REACHABLE"}, {NUD_STALE, "STALE"},
      {NUD_DELAY, "DELAY"}, {NUD_PROBE, "PROBE"}, {NUD_FAILED, "FAILED"}, {NUD_NOARP, "NOARP"},
      {NUD_PERMANENT, "PERMANENT"}};
  Value st = Value::array();
  for (auto& s : states)
    if (nd->ndm_state & s.first) st.push(s.second);
  n.set("state", std::move(st));
  if (nd->ndm_flags & NTF_ROUTER) n.set("router", true);
  if (nd->ndm_flags & NTF_PROXY) n.set("proxy", true);
  if (tb[NDA_PROBES]) n.set("probes", tb[NDA_PROBES]->u32());
  return n;
}

}  // namespace vnl
