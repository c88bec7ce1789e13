// The JS face of a monitor: `new Monitor(fd, flags, onEvents)` takes monitor.open's socket
// and starts one reader thread (ops/monitor.h) whose decoded events reach JS in batches
// through a ThreadSafeFunction. Ownership: this object owns the reader thread (started in
// the constructor, joined by close(), the destructor or env teardown, whichever comes first)
// and the ThreadSafeFunction; the MonitorCore, shared with the thread and with deliveries
// still queued, owns the socket and the wake eventfd, and they are closed on the JS thread
// right after the join, so no fd outlives its one reader.
#include <napi.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "napi/convert.h"
#include "napi/guard.h"
#include "ops/monitor.h"

namespace vnl {
namespace {

class Monitor : public Napi::ObjectWrap<Monitor> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Monitor", {InstanceMethod<&Monitor::Close>("close"), InstanceMethod<&Monitor::SetRef>("ref")});
  }

  // new Monitor(fd, { portId, link, addr, route, neigh, family, listExisting }, onEvents)
  explicit Monitor(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Monitor>(info) {
    Napi::Env env = info.Env();
    // Owned from here on: a throw below closes it with the socket object.
    NlSocket sock = NlSocket::adopt(info[0].As<Napi::Number>().Int32Value(), NETLINK_ROUTE,
                                    info[1].As<Napi::Object>().Get("portId").As<Napi::Number>().Uint32Value());
    auto o = info[1].As<Napi::Object>();
    auto flag = [&](const char* k) { return o.Has(k) && o.Get(k).ToBoolean().Value(); };
    EventFilter f;
    f.link = flag("link");
    f.addr = flag("addr");
    f.route = flag("route");
    f.neigh = flag("neigh");
    std::string fam = o.Has("family") && o.Get("family").IsString() ? o.Get("family").As<Napi::String>().Utf8Value() : "";
    f.family = fam == "inet" ? AF_INET : fam == "inet6" ? AF_INET6 : AF_UNSPEC;
    try {
      core_ = std::make_shared<MonitorCore>(std::move(sock), f, flag("listExisting"));
    } catch (const std::exception& e) {
      throw Napi::Error::New(env, e.what());
    }
    tsfn_ = Napi::ThreadSafeFunction::New(env, info[2].As<Napi::Function>(), "vnetlink.monitor", 0, 1);
    hook_ = env.AddCleanupHook(&Monitor::onTeardown, this);
    hooked_ = true;
    // The thread holds the core (not this object, which JS may collect before join) and a
    // copy of the TSFN handle; both stay valid until the join in stopThread.
    auto core = core_;
    Napi::ThreadSafeFunction tsfn = tsfn_;
    try {
      thread_ = std::thread([core, tsfn]() mutable { core->run([&] { schedule(core, tsfn); }); });
    } catch (const std::system_error& e) {
      // Only Napi::Error may cross into JS. A constructor that throws gets no destructor, so
      // what it made goes here: the hook (it would run on freed memory), the TSFN (it keeps
      // the loop alive), the socket.
      hook_.Remove(env);
      hooked_ = false;
      released_ = true;
      tsfn_.Release();
      core_->closeFds();
      throw Napi::Error::New(env, std::string("monitor: cannot start its thread: ") + e.what());
    }
  }

  ~Monitor() override {
    stopThread();
    dropQueued();
    releaseTsfn();
    if (hooked_) { hook_.Remove(Env()); hooked_ = false; }  // the hook must not outlive us
  }

 private:
  // On the reader thread: one JS call takes everything queued until it runs. The call holds
  // the core, so a delivery queued at teardown that never runs only leaks what it holds;
  // its body catches everything (a worker being terminated fails every call with an error).
  static void schedule(const std::shared_ptr<MonitorCore>& core, Napi::ThreadSafeFunction& tsfn) {
    tsfn.NonBlockingCall([core](Napi::Env env, Napi::Function cb) {
      callGuarded(env, [&] {
        std::vector<vnl::Value> evs = core->take();
        if (evs.empty()) return;
        Napi::HandleScope scope(env);
        Napi::Array a = Napi::Array::New(env, evs.size());
        for (size_t i = 0; i < evs.size(); i++) a.Set(static_cast<uint32_t>(i), toJs(env, evs[i]));
        cb.Call({a});
      });
    });
  }

  static void onTeardown(Monitor* m) {
    m->hooked_ = false;  // the hook is being run; never remove it again
    m->stopThread();
    m->dropQueued();
    m->releaseTsfn();
  }

  // Before releasing without close(): a delivery still queued then finds nothing to hand to
  // JS (which may no longer run) and only frees what it holds.
  void dropQueued() {
    if (core_) core_->drop();
  }

  void stopThread() {
    if (!core_) return;
    core_->stop();
    if (thread_.joinable()) thread_.join();
    // Closed here, not by ~MonitorCore: a TSFN call still queued at env teardown may never
    // run (so never free the core it holds).
    core_->closeFds();
  }

  // Release, never abort: an aborted TSFN never runs (so never frees) a queued delivery, and
  // that delivery holds the core.
  void releaseTsfn() {
    if (released_ || !core_) return;
    released_ = true;
    tsfn_.Release();
  }

  // ref(bool): whether pending events keep the event loop (and so the process) alive.
  Napi::Value SetRef(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (released_ || !core_) return env.Undefined();
    if (info[0].ToBoolean().Value()) tsfn_.Ref(env); else tsfn_.Unref(env);
    return env.Undefined();
  }

  // close(): joins the reader, hands the events it had queued to the caller, ends.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (released_) return env.Undefined();
    stopThread();
    if (hooked_) { hook_.Remove(env); hooked_ = false; }
    std::vector<vnl::Value> evs = core_->take();
    Napi::Array a = Napi::Array::New(env, evs.size());
    for (size_t i = 0; i < evs.size(); i++) a.Set(static_cast<uint32_t>(i), toJs(env, evs[i]));
    // A delivery still queued then runs, finds the queue empty, and frees what it holds.
    releaseTsfn();
    return a;
  }

  std::shared_ptr<MonitorCore> core_;
  Napi::ThreadSafeFunction tsfn_;
  std::thread thread_;
  Napi::Env::CleanupHook<void (*)(Monitor*), Monitor> hook_;
  bool hooked_ = false;
  bool released_ = false;
};

}  // namespace

Napi::Function initMonitor(Napi::Env env) { return Monitor::Init(env); }

}  // namespace vnl
