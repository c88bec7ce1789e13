#include "codec/genl.h"

namespace vnl::genl {

MsgBuilder message(uint16_t id, uint8_t cmd, uint8_t version, uint16_t flags) {
  MsgBuilder m(id, flags);
  genlmsghdr g{};
  g.cmd = cmd;
  g.version = version;
  m.putHeader(g);
  return m;
}

MsgBuilder getFamily(const std::string& name) {
  MsgBuilder m = message(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 1, 0);
  m.putStr(CTRL_ATTR_FAMILY_NAME, name);
  return m;
}

bool payload(const nlmsghdr* h, genlmsghdr& g, const uint8_t*& attrs, size_t& len, size_t hdrSize) {
  const size_t fixed = NLMSG_HDRLEN + GENL_HDRLEN + nlAlign(hdrSize);
  if (h->nlmsg_len < fixed) return false;
  memcpy(&g, reinterpret_cast<const uint8_t*>(h) + NLMSG_HDRLEN, sizeof g);
  attrs = reinterpret_cast<const uint8_t*>(h) + fixed;
  len = h->nlmsg_len - fixed;
  return true;
}

bool decodeFamily(const nlmsghdr* h, Family& out) {
  if (h->nlmsg_type != GENL_ID_CTRL) return false;
  genlmsghdr g;
  const uint8_t* p;
  size_t len;
  if (!payload(h, g, p, len) || g.cmd != CTRL_CMD_NEWFAMILY) return false;
  AttrTable tb(p, len, CTRL_ATTR_MCAST_GROUPS);
  const Attr* id = tb[CTRL_ATTR_FAMILY_ID];
  const Attr* name = tb[CTRL_ATTR_FAMILY_NAME];
  if (!id || !name || id->len < 2) return false;
  Family f;
  f.id = id->u16();
  f.name = name->str();
  if (const Attr* a = tb[CTRL_ATTR_VERSION]; a && a->len >= 4) f.version = a->u32();
  if (const Attr* a = tb[CTRL_ATTR_HDRSIZE]; a && a->len >= 4) f.hdrSize = a->u32();
  if (const Attr* a = tb[CTRL_ATTR_MAXATTR]; a && a->len >= 4) f.maxAttr = a->u32();
  if (const Attr* groups = tb[CTRL_ATTR_MCAST_GROUPS]) {
    // A group without a name or id is skipped.
    forEachNested(*groups, CTRL_ATTR_MCAST_GRP_ID, [&](const AttrTable& g2) {
      const Attr* gn = g2[CTRL_ATTR_MCAST_GRP_NAME];
      const Attr* gi = g2[CTRL_ATTR_MCAST_GRP_ID];
      if (gn && gi && gi->len >= 4) f.mcastGroups.emplace_back(gn->str(), gi->u32());
    });
  }
  out = std::move(f);
  return true;
}

}  // namespace vnl::genl
