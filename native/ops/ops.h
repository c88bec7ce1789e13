// Per-family operations run on a handle's namespace thread. Each family file registers its
// operations by name with VNL_OP; the glue looks them up, so adding a family touches no
// other file.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "codec/names.h"
#include "codec/value.h"
#include "transport/genl.h"
#include "transport/nlsock.h"
#include "transport/request.h"

namespace vnl {

// Everything an operation may use, owned by the namespace thread it runs on.
class Ctx {
 public:
  Ctx() = default;
  ~Ctx();
  Ctx(const Ctx&) = delete;
  Ctx& operator=(const Ctx&) = delete;

  NlSocket& rtnl();    // NETLINK_ROUTE, opened on first use (in this namespace)
  NlSocket& nfnl();    // NETLINK_NETFILTER
  GenlSocket& genl();  // NETLINK_GENERIC, with the families this handle has resolved
  // A directory fd of a sysfs instance that shows *this* namespace (a detached mount made on
  // this thread), since /sys shows whoever mounted it.
  int sysfs();
  // Resolves an interface name to its index in this namespace (ENODEV when absent).
  uint32_t ifindex(const std::string& name, const char* op);
  std::string ifname(uint32_t index);  // "" when absent
  // The same lookups for the codec, failures named after `op` (which must outlive the result).
  Names names(const char* op = "netlink") {
    return Names{[this, op](const std::string& n) { return ifindex(n, op); },
                 [this](uint32_t i) { return ifname(i); }};
  }

  // Per-family state that lives as long as the handle (e.g. a monitor socket).
  std::map<std::string, std::shared_ptr<void>> state;

 private:
  std::unique_ptr<NlSocket> rtnl_, nfnl_;
  GenlSocket genl_;
  int sysfs_ = -1;
};

using OpFn = Value (*)(Ctx&, const Value& args);

struct OpRegistry {
  static std::map<std::string, OpFn>& all();
  static OpFn find(const std::string& name);
};

struct OpRegistrar {
  OpRegistrar(const char* name, OpFn fn) { OpRegistry::all()[name] = fn; }
};

#define VNL_OP_CAT2(a, b) a##b
#define VNL_OP_CAT(a, b) VNL_OP_CAT2(a, b)
// VNL_OP("link.add", linkAdd); each registrar gets its own name from __COUNTER__, so one
// line (one macro) may register several ops.
#define VNL_OP(name, fn) static ::vnl::OpRegistrar VNL_OP_CAT(vnl_op_reg_, __COUNTER__)(name, fn)

// A change op states only what it sends: its message, built from the normalized arguments,
// with `op` naming any failure (a name to resolve, a value out of range).
using BuildFn = MsgBuilder (*)(Ctx&, const Value& args, const char* op);

// A builder whose message names fds (IFLA_NET_NS_FD): they go in `keep`, open until it is sent.
class Fd;
using BuildKeepFn = MsgBuilder (*)(Ctx&, const Value& args, const char* op, std::vector<Fd>& keep);

// One change: `build`'s message submitted on the handle's rtnetlink socket (Send::Request:
// acked, refusals thrown naming `op`) or returned as bytes (Send::Encode, no socket opened).
Value runChange(Ctx& ctx, const Value& args, BuildFn build, Send how, const char* op);
Value runChange(Ctx& ctx, const Value& args, BuildKeepFn build, Send how, const char* op);

// VNL_CHANGE_OP("addr.add", addrAddMsg): an op that sends and acks what the builder encodes,
// named in errors by args.op when the TS layer passes one (`fdb.add` through neigh.modify),
// else by its own name. VNL_ENCODE_OP("addr.encode", addrMsg): the bytes that would go out.
// VNL_CHANGE_OPS(change, encode, build): both, from one builder.
#define VNL_CHANGE_OP(name, build)                                                      \
  VNL_OP(name, +[](::vnl::Ctx& c, const ::vnl::Value& a) {                              \
    const std::string op = a.str("op", name);                                          \
    return ::vnl::runChange(c, a, build, ::vnl::Send::Request, op.c_str());            \
  })
#define VNL_ENCODE_OP(name, build) \
  VNL_OP(name, +[](::vnl::Ctx& c, const ::vnl::Value& a) { return ::vnl::runChange(c, a, build, ::vnl::Send::Encode, name); })
#define VNL_CHANGE_OPS(name, encodeName, build) \
  VNL_CHANGE_OP(name, build);                   \
  VNL_ENCODE_OP(encodeName, build)

// Opens a namespace given as {netnsPath} or {netnsFd} in args (or none) and returns an fd
// the caller must close, or -1 when the spec names no namespace.
int openNetnsArg(const Value& v, const char* op);

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd();
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept;
  Fd(const Fd&) = delete;
  int get() const { return fd_; }
  int release() { int f = fd_; fd_ = -1; return f; }
  explicit operator bool() const { return fd_ >= 0; }
 private:
  int fd_;
};

}  // namespace vnl
