// Neighbours as `ip neigh` shows them and FDB entries as `bridge fdb` does, for neigh.list,
// fdb.list and monitors.
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
  // An FDB entry's NDA_DST is the remote of a VXLAN (either family, told by its length).
  if (fam == AF_BRIDGE && tb[NDA_DST] && (tb[NDA_DST]->len == 4 || tb[NDA_DST]->len == 16))
    n.set("dst", ipToString(tb[NDA_DST]->len == 4 ? AF_INET : AF_INET6, tb[NDA_DST]->data));
  if (tb[NDA_LLADDR]) n.set(fam == AF_BRIDGE ? "mac" : "lladdr", macToString(tb[NDA_LLADDR]->data, tb[NDA_LLADDR]->len));
  if (tb[NDA_VLAN] && tb[NDA_VLAN]->len >= 2) n.set("vlan", tb[NDA_VLAN]->u16());
  if (tb[NDA_PORT] && tb[NDA_PORT]->len >= 2) n.set("port", tb[NDA_PORT]->be16());
  if (tb[NDA_VNI] && tb[NDA_VNI]->len >= 4) n.set("vni", tb[NDA_VNI]->u32());
  if (tb[NDA_MASTER] && tb[NDA_MASTER]->len >= 4) {
    uint32_t mi = tb[NDA_MASTER]->u32();
    std::string mn;
    if (names) { auto it = names->find(mi); if (it != names->end()) mn = it->second; }
    else mn = ctx.ifname(mi);
    if (!mn.empty()) n.set("master", mn);
  }
  if (fam == AF_BRIDGE) {
    // As `bridge -j fdb show` lists them.
    static const std::pair<uint8_t, const char*> fl[] = {
        {NTF_SELF, "self"}, {NTF_MASTER, "master"}, {NTF_EXT_LEARNED, "extern_learn"},
        {NTF_OFFLOADED, "offload"}, {NTF_STICKY, "sticky"}, {NTF_ROUTER, "router"}};
    Value f = Value::array();
    for (auto& x : fl)
      if (nd->ndm_flags & x.first) f.push(x.second);
    n.set("flags", std::move(f));
  }
  static const std::pair<uint16_t, const char*> states[] = {
      {NUD_INCOMPLETE, "INCOMPLETE"}, {NUD_REACHABLE, "REACHABLE"}, {NUD_STALE, "STALE"},
      {NUD_DELAY, "DELAY"}, {NUD_PROBE, "PROBE"}, {NUD_FAILED, "FAILED"}, {NUD_NOARP, "NOARP"},
      {NUD_PERMANENT, "PERMANENT"}};
  if (fam == AF_BRIDGE) {
    // As `bridge fdb` names an entry's state: NOARP marks a static entry.
    n.set("state", nd->ndm_state & NUD_PERMANENT ? "permanent" : nd->ndm_state & NUD_NOARP ? "static"
                   : nd->ndm_state & NUD_STALE ? "stale" : "dynamic");
  } else {
    Value st = Value::array();
    for (auto& s : states)
      if (nd->ndm_state & s.first) st.push(s.second);
    n.set("state", std::move(st));
  }
  if (nd->ndm_flags & NTF_ROUTER) n.set("router", true);
  if (nd->ndm_flags & NTF_PROXY) n.set("proxy", true);
  if (tb[NDA_PROBES]) n.set("probes", tb[NDA_PROBES]->u32());
  return n;
}

}  // namespace vnl
