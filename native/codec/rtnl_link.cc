// Links as `ip -d -j link show` describes them: the one decoder of RTM_NEWLINK/RTM_DELLINK for
// get, list, monitors and link.decode. A kind's IFLA_INFO_DATA is read by its table.
#include <linux/if.h>
#include <linux/if_arp.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>

#include <algorithm>
#include <cstring>

#include "codec/format.h"
#include "codec/kind_schema.h"
#include "codec/rtnl.h"

namespace vnl {

namespace {

const char* operStateName(uint8_t s) {
  switch (s) {
    case IF_OPER_NOTPRESENT: return "notpresent";
    case IF_OPER_DOWN: return "down";
    case IF_OPER_LOWERLAYERDOWN: return "lowerlayerdown";
    case IF_OPER_TESTING: return "testing";
    case IF_OPER_DORMANT: return "dormant";
    case IF_OPER_UP: return "up";
    default: return "unknown";
  }
}

Value flagNames(uint32_t f) {
  static const std::pair<uint32_t, const char*> names[] = {
      {IFF_LOOPBACK, "LOOPBACK"}, {IFF_BROADCAST, "BROADCAST"}, {IFF_POINTOPOINT, "POINTOPOINT"},
      {IFF_MULTICAST, "MULTICAST"}, {IFF_NOARP, "NOARP"}, {IFF_ALLMULTI, "ALLMULTI"},
      {IFF_PROMISC, "PROMISC"}, {IFF_MASTER, "MASTER"}, {IFF_SLAVE, "SLAVE"}, {IFF_DEBUG, "DEBUG"},
      {IFF_DYNAMIC, "DYNAMIC"}, {IFF_AUTOMEDIA, "AUTOMEDIA"}, {IFF_PORTSEL, "PORTSEL"},
      {IFF_NOTRAILERS, "NOTRAILERS"}, {IFF_UP, "UP"}, {IFF_LOWER_UP, "LOWER_UP"}, {IFF_DORMANT, "DORMANT"},
      {IFF_ECHO, "ECHO"}};
  Value a = Value::array();
  for (auto& n : names)
    if (f & n.first) a.push(n.second);
  return a;
}

Value decodeStats64(const Attr& a) {
  rtnl_link_stats64 s{};
  memcpy(&s, a.data, std::min(a.len, sizeof s));
  Value v = Value::object();
  v.set("rxPackets", s.rx_packets);
  v.set("txPackets", s.tx_packets);
  v.set("rxBytes", s.rx_bytes);
  v.set("txBytes", s.tx_bytes);
  v.set("rxErrors", s.rx_errors);
  v.set("txErrors", s.tx_errors);
  v.set("rxDropped", s.rx_dropped);
  v.set("txDropped", s.tx_dropped);
  v.set("multicast", s.multicast);
  v.set("collisions", s.collisions);
  return v;
}

}  // namespace

const LinkFlagName kLinkFlagNames[5] = {
    {"up", IFF_UP, false}, {"promisc", IFF_PROMISC, false}, {"allmulti", IFF_ALLMULTI, false},
    {"multicast", IFF_MULTICAST, false}, {"arp", IFF_NOARP, true}};

void putLinkFlags(ifinfomsg& ifi, const Value& spec) {
  for (const LinkFlagName& f : kLinkFlagNames) {
    const Value* v = spec.get(f.key);
    if (!v) continue;
    ifi.ifi_change |= f.bit;
    if (v->boolean() != f.inverted) ifi.ifi_flags |= f.bit;
    else ifi.ifi_flags &= ~f.bit;
  }
}

// IFLA_ALLMULTI (the allmulti counter, Linux 6.5+) is reported only; the user's own
// setting is the `allmulti` flag.
const LinkU32Attr kLinkU32Attrs[6] = {
    {"gsoMaxSize", IFLA_GSO_MAX_SIZE, false}, {"gsoMaxSegs", IFLA_GSO_MAX_SEGS, false},
    {"groMaxSize", IFLA_GRO_MAX_SIZE, false}, {"tsoMaxSize", IFLA_TSO_MAX_SIZE, true},
    {"tsoMaxSegs", IFLA_TSO_MAX_SEGS, true}, {"allmultiCount", IFLA_ALLMULTI, true}};

void putLinkU32Attrs(MsgBuilder& m, const Value& spec) {
  for (const LinkU32Attr& a : kLinkU32Attrs)
    if (const Value* v = spec.get(a.key); v && !a.readOnly) m.putU32(a.attr, static_cast<uint32_t>(v->number()));
}

Value decodeLink(const nlmsghdr* h, const Names& names) {
  const ifinfomsg* ifi = familyHeader<ifinfomsg>(h);
  if (!ifi) throw DecodeError("short RTM_NEWLINK message");
  const uint8_t* p;
  size_t len;
  if (!payloadAfter(h, sizeof(ifinfomsg), p, len)) throw DecodeError("short RTM_NEWLINK message");
  AttrTable tb(p, len, IFLA_MAX);
  Value l = Value::object();
  l.set("index", ifi->ifi_index);
  l.set("name", tb[IFLA_IFNAME] ? tb[IFLA_IFNAME]->str() : std::string());
  std::string kind;
  const Attr* linkinfo = tb[IFLA_LINKINFO];
  AttrTable info(linkinfo, IFLA_INFO_MAX);
  if (info[IFLA_INFO_KIND]) kind = info[IFLA_INFO_KIND]->str();
  else if (ifi->ifi_type == ARPHRD_LOOPBACK) kind = "loopback";
  else if (ifi->ifi_type == ARPHRD_ETHER) kind = "ether";
  else if (ifi->ifi_type == ARPHRD_NONE) kind = "none";
  l.set("kind", kind);
  if (tb[IFLA_ADDRESS]) l.set("mac", macToString(tb[IFLA_ADDRESS]->data, tb[IFLA_ADDRESS]->len));
  if (tb[IFLA_BROADCAST]) l.set("broadcast", macToString(tb[IFLA_BROADCAST]->data, tb[IFLA_BROADCAST]->len));
  if (tb[IFLA_PERM_ADDRESS]) l.set("permMac", macToString(tb[IFLA_PERM_ADDRESS]->data, tb[IFLA_PERM_ADDRESS]->len));
  if (tb[IFLA_MTU]) l.set("mtu", tb[IFLA_MTU]->u32());
  if (tb[IFLA_MIN_MTU]) l.set("minMtu", tb[IFLA_MIN_MTU]->u32());
  if (tb[IFLA_MAX_MTU]) l.set("maxMtu", tb[IFLA_MAX_MTU]->u32());
  for (const LinkFlagName& f : kLinkFlagNames) l.set(f.key, ((ifi->ifi_flags & f.bit) != 0) != f.inverted);
  l.set("lowerUp", (ifi->ifi_flags & IFF_LOWER_UP) != 0);
  l.set("flags", flagNames(ifi->ifi_flags));
  l.set("operState", operStateName(tb[IFLA_OPERSTATE] ? tb[IFLA_OPERSTATE]->u8() : static_cast<uint8_t>(IF_OPER_UNKNOWN)));
  if (tb[IFLA_CARRIER]) l.set("carrier", tb[IFLA_CARRIER]->u8() != 0);
  if (tb[IFLA_MASTER]) {
    uint32_t m = tb[IFLA_MASTER]->u32();
    l.set("masterIndex", m);
    std::string mn = names.name(m);
    if (!mn.empty()) l.set("master", mn);
  }
  bool otherNs = tb[IFLA_LINK_NETNSID] != nullptr;
  if (otherNs) l.set("linkNetnsId", tb[IFLA_LINK_NETNSID]->s32());
  if (tb[IFLA_LINK]) {
    uint32_t parent = tb[IFLA_LINK]->u32();
    // Across namespaces the peer may well have the same number as this link.
    if (parent && (otherNs || parent != static_cast<uint32_t>(ifi->ifi_index))) {
      l.set("linkIndex", parent);
      if (!otherNs) {
        std::string pn = names.name(parent);
        if (!pn.empty()) l.set("link", pn);
      }
    }
  }
  l.set("group", tb[IFLA_GROUP] ? tb[IFLA_GROUP]->u32() : 0u);
  if (tb[IFLA_IFALIAS]) l.set("alias", tb[IFLA_IFALIAS]->str());
  if (tb[IFLA_TXQLEN]) l.set("txqueuelen", tb[IFLA_TXQLEN]->u32());
  if (tb[IFLA_NUM_TX_QUEUES]) l.set("numTxQueues", tb[IFLA_NUM_TX_QUEUES]->u32());
  if (tb[IFLA_NUM_RX_QUEUES]) l.set("numRxQueues", tb[IFLA_NUM_RX_QUEUES]->u32());
  if (tb[IFLA_PROMISCUITY]) l.set("promiscuity", tb[IFLA_PROMISCUITY]->u32());
  for (const LinkU32Attr& a : kLinkU32Attrs)
    if (const Attr* x = tb[a.attr]; x && x->len >= 4) l.set(a.key, x->u32());
  if (tb[IFLA_STATS64]) l.set("stats", decodeStats64(*tb[IFLA_STATS64]));
  // The kind's own settings, by its table (lib/kinds/); kinds without one decode as {}.
  auto schemas = kindSchemas();
  Value kinfo = Value::object();
  if (const KindSchema* k = findKindSchema(*schemas, kind))
    if (info[IFLA_INFO_DATA]) decodeKindFields(*info[IFLA_INFO_DATA], k->fields, k->maxAttr, kinfo);
  l.set("info", std::move(kinfo));
  if (info[IFLA_INFO_SLAVE_KIND]) {
    std::string sk = info[IFLA_INFO_SLAVE_KIND]->str();
    Value port = Value::object();
    port.set("kind", sk);
    if (const KindSchema* k = findKindSchema(*schemas, sk))
      if (info[IFLA_INFO_SLAVE_DATA] && !k->port.empty()) decodeKindFields(*info[IFLA_INFO_SLAVE_DATA], k->port, k->maxPortAttr, port);
    l.set("port", std::move(port));
  }
  return l;
}

}  // namespace vnl
