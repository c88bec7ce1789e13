// Namespace-local files: sysctls under /proc/sys/net (read and written from the handle's
// thread, so they are that namespace's), fd closing off the event loop, and a readiness probe.
#include <fcntl.h>
#include <unistd.h>

#include "ops/ops.h"

namespace vnl {
namespace {

// sysctl(8)'s two spellings: "net/ipv6/conf/vs../accept_ra" is a path; in the dotted form
// "net.ipv6.conf.vs//.accept_ra" a '.' separates and a '/' stands for a '.' inside a
// component (an interface name such as "vs..").
std::string sysctlPath(const std::string& key) {
  std::string p = "/proc/sys/";
  if (key.find('/') < key.find('.')) return p + key;
  for (char c : key) p += (c == '.') ? '/' : (c == '/') ? '.' : c;
  return p;
}

Value sysctlGet(Ctx&, const Value& args) {
  std::string path = sysctlPath(args.str("key"));
  Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw SysError(errno, "sysctl.get: " + path);
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd.get(), buf, sizeof buf);
    if (n < 0) { if (errno == EINTR) continue; throw SysError(errno, "sysctl.get: " + path); }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

Value sysctlSet(Ctx&, const Value& args) {
  std::string path = sysctlPath(args.str("key"));
  std::string val = args.str("value");
  Fd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) throw SysError(errno, "sysctl.set: " + path);
  if (write(fd.get(), val.data(), val.size()) < 0) throw SysError(errno, "sysctl.set: " + path);
  return Value();
}

Value fdClose(Ctx&, const Value& args) {
  // Closing the last fd of a tap unregisters it (an RCU wait), so it happens here.
  for (auto& f : args.req("fds").items()) close(static_cast<int>(f.number()));
  return Value();
}

Value ready(Ctx&, const Value&) { return Value(true); }

}  // namespace

VNL_OP("sysctl.get", sysctlGet);
VNL_OP("sysctl.set", sysctlSet);
VNL_OP("fd.close", fdClose);
VNL_OP("handle.ready", ready);

}  // namespace vnl
