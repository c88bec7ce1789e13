// monitor.open: makes a NETLINK_ROUTE socket subscribed to the asked groups on the handle's
// namespace thread (a socket belongs to the namespace it was created in, for events and for
// the dumps later sent on it) and hands its fd to a Monitor, whose own thread reads it.
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <algorithm>

#include "ops/ops.h"
#include "transport/nlsock.h"

namespace vnl {
namespace {

Value monitorOpen(Ctx&, const Value& args) {
  const char* op = "monitor.open";
  std::string fam = args.str("family", "");
  bool v4 = fam != "inet6", v6 = fam != "inet";
  std::vector<unsigned> groups;
  for (const Value& g : args.req("groups").items()) {
    const std::string& s = g.string();
    if (s == "link") groups.push_back(RTNLGRP_LINK);
    else if (s == "addr") { if (v4) groups.push_back(RTNLGRP_IPV4_IFADDR); if (v6) groups.push_back(RTNLGRP_IPV6_IFADDR); }
    else if (s == "route") { if (v4) groups.push_back(RTNLGRP_IPV4_ROUTE); if (v6) groups.push_back(RTNLGRP_IPV6_ROUTE); }
    else if (s == "neigh") groups.push_back(RTNLGRP_NEIGH);
    else throw std::invalid_argument("unknown monitor group '" + s + "'");
  }
  // Link events also keep the reader's index->name map current, so addr/route/neigh events of
  // links made after the start carry names; the reader drops them when links were not asked for.
  if (!groups.empty() && std::find(groups.begin(), groups.end(), unsigned(RTNLGRP_LINK)) == groups.end())
    groups.push_back(RTNLGRP_LINK);
  NlSocket sock = NlSocket::subscribed(NETLINK_ROUTE, groups, static_cast<int>(args.num("rcvbuf", 4 << 20)), op);
  Value out = Value::object();
  out.set("portId", sock.portId());
  out.set("rcvbuf", sock.rcvbuf());
  // From here the fd is JS's to hand to a Monitor (lib/monitor.ts closes it when the monitor
  // was closed meanwhile); the socket object closes nothing.
  out.set("fd", sock.release());
  return out;
}

}  // namespace

VNL_OP("monitor.open", monitorOpen);

}  // namespace vnl
