// Addresses as `ip -j addr show` describes them (RTM_NEWADDR/RTM_DELADDR), for list and monitors.
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>

#include <cstring>

#include "codec/format.h"
#include "codec/rtnl.h"

namespace vnl {

const char* scopeName(uint8_t s) {
  switch (s) {
    case RT_SCOPE_UNIVERSE: return "global";
    case RT_SCOPE_SITE: return "site";
    case RT_SCOPE_LINK: return "link";
    case RT_SCOPE_HOST: return "host";
    case RT_SCOPE_NOWHERE: return "nowhere";
    default: return "unknown";
  }
}

Value decodeAddr(const nlmsghdr* h, const Names& names) {
  const ifaddrmsg* ifa = familyHeader<ifaddrmsg>(h);
  if (!ifa) throw DecodeError("short RTM_NEWADDR message");
  const uint8_t* p;
  size_t len;
  if (!payloadAfter(h, sizeof(ifaddrmsg), p, len)) throw DecodeError("short RTM_NEWADDR message");
  AttrTable tb(p, len, IFA_MAX);
  Value a = Value::object();
  int fam = ifa->ifa_family;
  a.set("family", fam == AF_INET ? "inet" : fam == AF_INET6 ? "inet6" : "other");
  a.set("index", ifa->ifa_index);
  std::string ln = names.name(ifa->ifa_index);
  if (!ln.empty()) a.set("link", ln);
  // An address attribute is used only when it holds a whole address of the family; a short
  // one is ignored as if absent (it was once compared over the other one's length).
  const bool ip = fam == AF_INET || fam == AF_INET6;
  const size_t alen = fam == AF_INET ? 4 : 16;
  auto whole = [&](uint16_t t) -> const Attr* { return ip && tb[t] && tb[t]->len >= alen ? tb[t] : nullptr; };
  const Attr* ifaLocal = whole(IFA_LOCAL);
  const Attr* ifaAddress = whole(IFA_ADDRESS);
  const Attr* local = ifaLocal ? ifaLocal : ifaAddress;
  if (local) {
    std::string s = ipToString(fam, local->data);
    a.set("address", s);
    a.set("prefixLen", ifa->ifa_prefixlen);
    a.set("cidr", s + "/" + std::to_string(ifa->ifa_prefixlen));
  }
  if (ifaLocal && ifaAddress && memcmp(ifaLocal->data, ifaAddress->data, alen) != 0)
    a.set("peer", ipToString(fam, ifaAddress->data));
  if (fam == AF_INET && tb[IFA_BROADCAST] && tb[IFA_BROADCAST]->len >= 4) a.set("broadcast", ipToString(AF_INET, tb[IFA_BROADCAST]->data));
  if (tb[IFA_LABEL]) a.set("label", tb[IFA_LABEL]->str());
  a.set("scope", scopeName(ifa->ifa_scope));
  uint32_t flags = tb[IFA_FLAGS] ? tb[IFA_FLAGS]->u32() : ifa->ifa_flags;
  Value f = Value::array();
  static const std::pair<uint32_t, const char*> fl[] = {
      {IFA_F_SECONDARY, "secondary"}, {IFA_F_NODAD, "nodad"}, {IFA_F_OPTIMISTIC, "optimistic"},
      {IFA_F_DADFAILED, "dadfailed"}, {IFA_F_HOMEADDRESS, "home"}, {IFA_F_DEPRECATED, "deprecated"},
      {IFA_F_TENTATIVE, "tentative"}, {IFA_F_PERMANENT, "permanent"}, {IFA_F_MANAGETEMPADDR, "mngtmpaddr"},
      {IFA_F_NOPREFIXROUTE, "noprefixroute"}};
  for (auto& x : fl)
    if (flags & x.first) f.push(x.second);
  a.set("flags", std::move(f));
  ifa_cacheinfo ci;
  if (tb[IFA_CACHEINFO] && tb[IFA_CACHEINFO]->as(ci)) {
    // INFINITY_LIFE_TIME (all ones) is ip's "forever".
    auto lft = [](uint32_t s) { return s == 0xffffffffu ? Value("forever") : Value(static_cast<double>(s)); };
    a.set("validLft", lft(ci.ifa_valid));
    a.set("preferredLft", lft(ci.ifa_prefered));
  }
  return a;
}

}  // namespace vnl
