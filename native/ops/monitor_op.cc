// monitor.open: makes a NETLINK_ROUTE socket subscribed to the asked groups on the handle's
// namespace thread (a socket belongs to the namespace it was created in, for events and for
// the dumps later sent on it) and hands its fd to a Monitor, whose own thread reads it.
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include "ops/ops.h"

namespace vnl {
namespace {

Value monitorOpen(Ctx&, const Value& args) {
  const char* op = "monitor.open";
  Fd fd(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE));
  if (!fd) throwErrno(std::string(op) + ": socket(AF_NETLINK)");
  int rcvbuf = static_cast<int>(args.num("rcvbuf", 4 << 20));
  // As root the buffer may exceed rmem_max; a tiny one is allowed on purpose (tests, overflow).
  if (setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0 &&
      setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) < 0)
    throwErrno(std::string(op) + ": setsockopt(SO_RCVBUF)");
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) throwErrno(std::string(op) + ": bind");
  socklen_t sl = sizeof sa;
  getsockname(fd.get(), reinterpret_cast<sockaddr*>(&sa), &sl);
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
  for (unsigned g : groups)
    if (setsockopt(fd.get(), SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &g, sizeof g) < 0)
      throwErrno(std::string(op) + ": NETLINK_ADD_MEMBERSHIP");
  int actual = 0;
  socklen_t al = sizeof actual;
  getsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &actual, &al);
  Value out = Value::object();
  out.set("portId", sa.nl_pid);
  out.set("rcvbuf", actual);
  out.set("fd", fd.release());
  return out;
}

}  // namespace

VNL_OP("monitor.open", monitorOpen);

}  // namespace vnl
