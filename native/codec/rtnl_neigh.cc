// Neighbours as `ip neigh` shows them and FDB entries as `bridge fdb` does (both RTM_NEWNEIGH;
// an FDB entry is a neighbour of family AF_BRIDGE keyed by a MAC): the request that adds or
// deletes one, and the decoder for neigh.list, fdb.list and monitors.
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>

#include "codec/format.h"
#include "codec/rtnl.h"

namespace vnl {

MsgBuilder buildNeigh(const Value& args, const Names& names) {
  std::string cmd = args.str("cmd");
  uint16_t flags = cmd == "add" ? NLM_F_CREATE | NLM_F_EXCL
                 : cmd == "replace" ? NLM_F_CREATE | NLM_F_REPLACE
                 : cmd == "append" ? NLM_F_CREATE | NLM_F_APPEND
                 : 0;
  MsgBuilder m(cmd == "del" ? RTM_DELNEIGH : RTM_NEWNEIGH, flags);
  ndmsg nd{};
  nd.ndm_family = static_cast<uint8_t>(args.u32("family"));
  nd.ndm_ifindex = static_cast<int>(args.has("ifindex") ? args.u32("ifindex") : names.index(args.str("dev")));
  nd.ndm_state = static_cast<uint16_t>(args.u32("state", 0));
  nd.ndm_flags = static_cast<uint8_t>(args.u32("flags", 0));
  m.putHeader(nd);
  // The key first (an FDB entry's is its MAC), then what it maps to, as ip and bridge send them.
  if (nd.ndm_family == AF_BRIDGE) {
    m.putBytes(NDA_LLADDR, parseMac(args.str("lladdr"), "mac"));
    if (const Value* d = args.get("dst")) {
      IpAddr a = parseIp(d->string(), "dst");
      m.put(NDA_DST, a.bytes, a.len());
    }
  } else {
    IpAddr a = parseIp(args.str("dst"), "dst");
    m.put(NDA_DST, a.bytes, a.len());
    if (const Value* l = args.get("lladdr")) m.putBytes(NDA_LLADDR, parseMac(l->string(), "lladdr"));
  }
  if (const Value* v = args.get("vlan")) m.putU16(NDA_VLAN, static_cast<uint16_t>(v->number()));
  if (const Value* v = args.get("port")) m.putBe16(NDA_PORT, static_cast<uint16_t>(v->number()));
  if (const Value* v = args.get("vni")) m.putU32(NDA_VNI, static_cast<uint32_t>(v->number()));
  if (const Value* v = args.get("via")) m.putU32(NDA_IFINDEX, names.index(v->string()));
  return m;
}

Value decodeNeigh(const nlmsghdr* h, const Names& names) {
  const ndmsg* nd = familyHeader<ndmsg>(h);
  if (!nd) throw DecodeError("short RTM_NEWNEIGH message");
  const uint8_t* p;
  size_t len;
  if (!payloadAfter(h, sizeof(ndmsg), p, len)) throw DecodeError("short RTM_NEWNEIGH message");
  AttrTable tb(p, len, NDA_MAX);
  Value n = Value::object();
  int fam = nd->ndm_family;
  n.set("family", fam == AF_INET ? "inet" : fam == AF_INET6 ? "inet6" : fam == AF_BRIDGE ? "bridge" : "other");
  n.set("index", nd->ndm_ifindex);
  std::string ln = names.name(static_cast<uint32_t>(nd->ndm_ifindex));
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
    std::string mn = names.name(mi);
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
