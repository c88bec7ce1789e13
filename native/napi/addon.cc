// Module entry: the handle class and the list of registered operations.
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/kcmp.h>
#include <napi.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>

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
//
// An fd number is reused as soon as it is closed, by any thread, and every /dev/net/tun fd
// shares one inode: fstat and the attached tap's name cannot tell our queue from another
// environment's queue on the same tap that got the number. The open file description can:
// each entry keeps a private dup of its fd, and kcmp(KCMP_FILE) says whether the number still
// names that very file. Without kcmp (ENOSYS: a kernel without CONFIG_KCMP; EPERM/EACCES:
// refused by a seccomp policy or ptrace rules) the entry keeps no dup and the older check
// (same device and inode, attached to the same tap name) is all there is.
struct OwnedFd {
  uint32_t id;       // what TypeScript names it by (numbers are reused; ids are not)
  int fd;
  int dup;           // the private dup kcmp compares against, -1 without kcmp
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

// 1: kcmp works here, 0: it does not (ENOSYS/EPERM/EACCES once seen), -1: not tried yet.
std::atomic<int> gKcmp{-1};

// 1 when fds a and b of this process are one open file, 0 when not, -1 when kcmp cannot say.
int sameFile(int a, int b) {
#ifdef SYS_kcmp
  if (gKcmp.load(std::memory_order_relaxed) == 0) return -1;
  pid_t self = getpid();
  long r = syscall(SYS_kcmp, self, self, KCMP_FILE, a, b);
  if (r == 0) return 1;
  if (r > 0) return 0;
  if (errno == EBADF) return 0;  // one of them is closed: not the same open file any more
  if (errno == ENOSYS || errno == EPERM || errno == EACCES) gKcmp.store(0, std::memory_order_relaxed);
  return -1;
#else
  (void)a;
  (void)b;
  return -1;
#endif
}

// Whether the entry's number still names the file we recorded.
bool stillSame(const OwnedFd& o) {
  if (o.dup >= 0) {
    int same = sameFile(o.fd, o.dup);
    if (same >= 0) return same == 1;
  }
  struct stat st;
  if (fstat(o.fd, &st) != 0 || st.st_dev != o.dev || st.st_ino != o.ino || st.st_rdev != o.rdev) return false;
  std::string now = attachedName(o.fd);
  return now.empty() || now == o.name;
}

// Closes only what still is the file we recorded: a number closed behind our back and reused
// by another file (or another environment's queue on the same tap) is left alone.
void closeOwned(std::vector<OwnedFd>& fds) {
  for (const OwnedFd& o : fds) {
    if (stillSame(o)) close(o.fd);
    if (o.dup >= 0) close(o.dup);
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
  auto* nextId = new uint32_t(1);
  env.AddCleanupHook([owned, nextId]() {
    closeOwned(*owned);
    delete owned;
    delete nextId;
  });
  auto o = Napi::Object::New(env);
  auto idsArg = [](const Napi::CallbackInfo& info, const char* what) {
    if (info.Length() < 1 || !info[0].IsArray()) throw Napi::TypeError::New(info.Env(), std::string("fdOwner.") + what + ": ids must be an array");
    auto a = info[0].As<Napi::Array>();
    std::vector<uint32_t> ids;
    for (uint32_t i = 0; i < a.Length() && i < 1024; i++) {
      // Positions are kept (answers line up with the ids asked about); no entry has id 0.
      int id = fdArg(a.Get(i));
      ids.push_back(id > 0 ? static_cast<uint32_t>(id) : 0);
    }
    return ids;
  };
  // own(fds: number[]) -> { id, dev, ino, rdev }[]: records what each fd is now, and hands the
  // identity back so the caller needs no fstat of its own (id 0 and zeros: not open).
  o.Set("own", Napi::Function::New(env, [owned, nextId](const Napi::CallbackInfo& info) {
    if (info.Length() < 1 || !info[0].IsArray()) throw Napi::TypeError::New(info.Env(), "fdOwner.own: fds must be an array");
    auto a = info[0].As<Napi::Array>();
    auto out = Napi::Array::New(info.Env());
    for (uint32_t i = 0; i < a.Length() && i < 1024; i++) {
      int fd = fdArg(a.Get(i));
      struct stat st;
      auto rec = Napi::Object::New(info.Env());
      out.Set(i, rec);
      if (fd < 0 || fstat(fd, &st) != 0) {
        rec.Set("id", Napi::Number::New(info.Env(), 0));
        for (const char* k : {"dev", "ino", "rdev"}) rec.Set(k, Napi::BigInt::New(info.Env(), uint64_t{0}));
        continue;
      }
      int dup = -1;
      if (gKcmp.load(std::memory_order_relaxed) != 0) {
        dup = fcntl(fd, F_DUPFD_CLOEXEC, 0);  // EMFILE: no dup, the older check for this one
        // The first dup proves whether kcmp works here at all (see OwnedFd).
        if (dup >= 0 && sameFile(fd, dup) != 1) {
          close(dup);  // the fd itself is still open: no last reference goes here
          dup = -1;
        } else if (dup >= 0) {
          gKcmp.store(1, std::memory_order_relaxed);
        }
      }
      uint32_t id = (*nextId)++;
      if (*nextId > 0x7fffffff) *nextId = 1;
      owned->push_back({id, fd, dup, st.st_dev, st.st_ino, st.st_rdev, attachedName(fd)});
      rec.Set("id", Napi::Number::New(info.Env(), id));
      rec.Set("dev", Napi::BigInt::New(info.Env(), static_cast<uint64_t>(st.st_dev)));
      rec.Set("ino", Napi::BigInt::New(info.Env(), static_cast<uint64_t>(st.st_ino)));
      rec.Set("rdev", Napi::BigInt::New(info.Env(), static_cast<uint64_t>(st.st_rdev)));
    }
    return out;
  }));
  // same(ids) -> (boolean | null)[]: whether each entry's number still names its file (null:
  // no such entry, or no dup to compare against; the caller checks as well as it can).
  o.Set("same", Napi::Function::New(env, [owned, idsArg](const Napi::CallbackInfo& info) {
    auto ids = idsArg(info, "same");
    auto out = Napi::Array::New(info.Env());
    for (size_t i = 0; i < ids.size(); i++) {
      auto it = std::find_if(owned->begin(), owned->end(), [&](const OwnedFd& x) { return x.id == ids[i]; });
      int same = it == owned->end() || it->dup < 0 ? -1 : sameFile(it->fd, it->dup);
      out.Set(static_cast<uint32_t>(i), same < 0 ? info.Env().Null() : Napi::Boolean::New(info.Env(), same == 1));
    }
    return out;
  }));
  // disown(ids) -> dups: these entries' fds are being closed (or were) by their JS owner. Only
  // those entries go (another entry with a reused number stays owned); their private dups are
  // returned for the caller to close with the fds, off the JS thread: when the fd was closed
  // behind our back, a dup is the tap's last reference, and its close waits for RCU.
  o.Set("disown", Napi::Function::New(env, [owned, idsArg](const Napi::CallbackInfo& info) {
    auto ids = idsArg(info, "disown");
    auto out = Napi::Array::New(info.Env());
    uint32_t n = 0;
    owned->erase(std::remove_if(owned->begin(), owned->end(),
                                [&](const OwnedFd& x) {
                                  if (std::find(ids.begin(), ids.end(), x.id) == ids.end()) return false;
                                  if (x.dup >= 0) out.Set(n++, Napi::Number::New(info.Env(), x.dup));
                                  return true;
                                }),
                 owned->end());
    return out;
  }));
  o.Set("count", Napi::Function::New(env, [owned](const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(owned->size()));
  }));
  // kcmp(): whether identities are compared by open file (true), by the older check (false),
  // or not known yet (null: nothing was owned so far).
  o.Set("kcmp", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    int k = gKcmp.load(std::memory_order_relaxed);
    return k < 0 ? info.Env().Null() : Napi::Boolean::New(info.Env(), k == 1);
  }));
  return o;
}

}  // namespace

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // fdOwner first: cleanup hooks run last-registered first, so its hook (closing the fds
  // still owned) then runs after the handles' hook has joined their threads, which may be
  // working on those very fd numbers.
  exports.Set("fdOwner", initFdOwner(env));
  exports.Set("Handle", initHandle(env));
  exports.Set("Monitor", initMonitor(env));
  exports.Set("Forwarder", initForwarder(env));
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
