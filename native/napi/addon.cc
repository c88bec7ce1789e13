// Module entry: the handle class and the list of registered operations.
#include <linux/if_tun.h>
#include <napi.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "codec/kind_schema.h"
#include "fwd/forwarder_napi.h"
#include "napi/convert.h"
#include "napi/handle.h"
#include "ops/ops.h"
#include "transport/trace.h"

namespace vnl {

Napi::Function initMonitor(Napi::Env env);  // napi/monitor.cc

namespace {

// The guest fds (tap queues, macvtap queues) this environment (the main thread or one worker)
// holds and has not closed yet. They are process-wide numbers, so a worker that ends without
// closing them would leak them, and keep a non-persistent tap alive, for the life of the
// process: the environment that opened them owns them, and closes them when it is torn down.
// JS thread only (calls and the cleanup hook both run there).
struct OwnedFd {
  int fd;
  dev_t dev;
  ino_t ino;
  dev_t rdev;
  std::string name;  // the device it was attached to ("" when TUNGETIFF answered none)
};

std::string attachedName(int fd) {
  struct ifreq ifr{};
  if (ioctl(fd, TUNGETIFF, &ifr) != 0) return "";
  return std::string(ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ));
}

// Closes only what still is the file we recorded: a number closed behind our back and reused
// by another file (or another tap: every /dev/net/tun fd shares one inode) is left alone.
void closeOwned(std::vector<OwnedFd>& fds) {
  for (const OwnedFd& o : fds) {
    struct stat st;
    if (fstat(o.fd, &st) != 0 || st.st_dev != o.dev || st.st_ino != o.ino || st.st_rdev != o.rdev) continue;
    std::string now = attachedName(o.fd);
    if (!now.empty() && now != o.name) continue;
    close(o.fd);
  }
  fds.clear();
}

int fdArg(const Napi::Value& v) {
  if (!v.IsNumber()) return -1;
  double d = v.As<Napi::Number>().DoubleValue();
  return d >= 0 && d <= 0x7fffffff && d == static_cast<int>(d) ? static_cast<int>(d) : -1;
}

Napi::Object initFdOwner(Napi::Env env) {
  // Freed by the cleanup hook, after which no call can come from this environment.
  auto* owned = new std::vector<OwnedFd>();
  env.AddCleanupHook([owned]() {
    closeOwned(*owned);
    delete owned;
  });
  auto o = Napi::Object::New(env);
  // own(fds: number[]): records what each fd is now.
  o.Set("own", Napi::Function::New(env, [owned](const Napi::CallbackInfo& info) {
    if (info.Length() < 1 || !info[0].IsArray()) throw Napi::TypeError::New(info.Env(), "fdOwner.own: fds must be an array");
    auto a = info[0].As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length() && i < 1024; i++) {
      int fd = fdArg(a.Get(i));
      struct stat st;
      if (fd < 0 || fstat(fd, &st) != 0) continue;
      owned->push_back({fd, st.st_dev, st.st_ino, st.st_rdev, attachedName(fd)});
    }
  }));
  // disown(fds: number[]): they are being closed (or were) by their JS owner.
  o.Set("disown", Napi::Function::New(env, [owned](const Napi::CallbackInfo& info) {
    if (info.Length() < 1 || !info[0].IsArray()) throw Napi::TypeError::New(info.Env(), "fdOwner.disown: fds must be an array");
    auto a = info[0].As<Napi::Array>();
    std::vector<int> gone;
    for (uint32_t i = 0; i < a.Length() && i < 1024; i++) gone.push_back(fdArg(a.Get(i)));
    owned->erase(std::remove_if(owned->begin(), owned->end(),
                                [&](const OwnedFd& x) { return std::find(gone.begin(), gone.end(), x.fd) != gone.end(); }),
                 owned->end());
  }));
  o.Set("count", Napi::Function::New(env, [owned](const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(owned->size()));
  }));
  return o;
}

}  // namespace

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Handle", initHandle(env));
  exports.Set("Monitor", initMonitor(env));
  exports.Set("Forwarder", initForwarder(env));
  exports.Set("fdOwner", initFdOwner(env));
  auto ops = Napi::Array::New(env);
  uint32_t i = 0;
  for (auto& kv : OpRegistry::all()) ops.Set(i++, Napi::String::New(env, kv.first));
  exports.Set("ops", ops);
  // NODE_DEBUG=vnetlink: the TS layer turns message tracing on (process-wide).
  exports.Set("setTrace", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
    gTrace.store(info.Length() > 0 && info[0].ToBoolean().Value(), std::memory_order_relaxed);
  }));
  // The link kind tables (lib/kinds/index.ts sends them once, as it loads).
  exports.Set("setLinkKinds", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
    try {
      setKindSchemas(fromJs(info[0]));
    } catch (const std::exception& e) {
      throw Napi::TypeError::New(info.Env(), std::string("vnetlink: bad link kind table: ") + e.what());
    }
  }));
  return exports;
}

}  // namespace vnl

static Napi::Object InitVnetlink(Napi::Env env, Napi::Object exports) { return vnl::Init(env, exports); }

NODE_API_MODULE(vnetlink, InitVnetlink)
