// The N-API side of a handle: one native thread per handle that enters the handle's network
// namespace once and runs every operation of that handle there, in order. Results come back
// through one ThreadSafeFunction and settle promises on the JS thread. libuv's pool is never
// used, so no shared thread ever changes namespace. The slow tail of an operation (a daemon's
// launcher, see ops/offthread.h) runs on a waiter thread of the handle, so the queue goes on.
#include <fcntl.h>
#include <napi.h>
#include <sched.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <condition_variable>
#include <atomic>
#include <deque>
#include <list>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "napi/convert.h"
#include "napi/guard.h"
#include "napi/handle.h"
#include "ops/offthread.h"
#include "ops/ops.h"

namespace vnl {

namespace {

struct Job {
  OpFn fn = nullptr;
  std::string op;
  Value args;
  Napi::Promise::Deferred deferred;
  bool close = false;
  // result
  bool ok = false;
  Value result;
  // The result as JSON text, made on the handle's thread when JSON carries it exactly
  // (toJson): the JS thread then builds it with one JSON.parse instead of member by member.
  bool hasJson = false;
  bool jsonAscii = false;
  std::string json;
  int err = 0;
  std::string where, extack, message;
  bool malformed = false;  // err is EPROTO because a message that came in could not be read
  explicit Job(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}
};

// Runs f and records its result or its failure in the job, as the JS side expects them.
template <typename F>
void settle(Job* j, F&& f) {
  j->ok = false;  // a waiter settles a job whose quick part already succeeded
  j->hasJson = false;
  try {
    j->result = f();
    j->ok = true;
    j->hasJson = toJson(j->result, j->json, j->jsonAscii);
    if (j->hasJson) j->result = Value();  // freed here, not on the JS thread
  } catch (const SysError& e) {
    j->err = e.err();
    j->where = e.where();
    j->extack = e.extack();
  } catch (const std::invalid_argument& e) {
    j->err = EINVAL;
    j->where = j->op + ": bad argument: " + e.what();
  } catch (const DecodeError& e) {
    j->err = EPROTO;
    j->malformed = true;
    j->where = j->op + ": " + e.what();
  } catch (const CodecError& e) {
    j->err = EMSGSIZE;
    j->where = j->op + ": " + e.what();
  } catch (const std::exception& e) {
    j->err = EIO;
    j->where = j->op + ": " + e.what();
  } catch (...) {
    j->err = EIO;
    j->where = j->op + ": unknown failure";
  }
}

struct Waiter {
  std::thread thread;
  std::atomic<bool> finished{false};
};

}  // namespace

class Handle : public Napi::ObjectWrap<Handle> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit Handle(const Napi::CallbackInfo& info);
  ~Handle() override;

  // Stops the thread and waits for it; used by close, finalizers and the env cleanup hook.
  void shutdown();

 private:
  Napi::Value Call(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Pending(const Napi::CallbackInfo& info);
  void run();
  bool startWaiter(Job* j, const std::shared_ptr<OffThreadRest>& rest);
  void stopWaiters();
  void closeCancelFd();
  void complete(Job* j);
  void drain(Napi::Env env);
  void hold(Napi::Env env);
  void release(Napi::Env env);

  std::string nsPath_;
  int nsFd_ = -1;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job*> queue_;
  bool stop_ = false;
  bool closing_ = false;   // JS side: no more calls accepted
  bool joined_ = false;

  std::mutex doneMu_;
  std::vector<Job*> done_;
  bool scheduled_ = false;
  Napi::ThreadSafeFunction tsfn_;
  Napi::FunctionReference jsonParse_;  // JSON.parse, for results delivered as JSON text
  size_t pending_ = 0;     // JS thread only
  bool refed_ = false;
  bool held_ = false;      // a strong reference to the JS object while calls are pending
  std::set<Handle*>* registry_ = nullptr;
  std::list<Waiter> waiters_;  // the handle thread's; slow tails of operations
  int cancelFd_ = -1;          // an eventfd: readable once waiters must give up
};

static void keepLive(Napi::Env, std::set<Handle*>*) {}

static std::set<Handle*>& liveHandles(Napi::Env env) {
  auto* s = env.GetInstanceData<std::set<Handle*>>();
  return *s;
}

Napi::Function Handle::Init(Napi::Env env) {
  return DefineClass(env, "Handle", {
      InstanceMethod<&Handle::Call>("call"),
      InstanceMethod<&Handle::Close>("close"),
      InstanceMethod<&Handle::Pending>("pending"),
  });
}

// new Handle({ netnsPath?, netnsFd? })
Handle::Handle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Handle>(info) {
  Napi::Env env = info.Env();
  if (info.Length() > 0 && info[0].IsObject()) {
    auto o = info[0].As<Napi::Object>();
    if (o.Has("netnsPath") && o.Get("netnsPath").IsString()) nsPath_ = o.Get("netnsPath").As<Napi::String>().Utf8Value();
    // One of the two: the thread opens a path itself, and a dup it would never use would leak.
    if (nsPath_.empty() && o.Has("netnsFd") && o.Get("netnsFd").IsNumber()) {
      int fd = o.Get("netnsFd").As<Napi::Number>().Int32Value();
      nsFd_ = fcntl(fd, F_DUPFD_CLOEXEC, 3);
      if (nsFd_ < 0) {
        Napi::Error e = Napi::Error::New(env, std::string("open: bad namespace fd: ") + strerror(errno));
        e.Set("errno", Napi::Number::New(env, errno));
        e.Set("where", Napi::String::New(env, "open"));
        throw e;
      }
    }
  }
  cancelFd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (cancelFd_ < 0) throw Napi::Error::New(env, std::string("open: eventfd: ") + strerror(errno));
  tsfn_ = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}),
                                        "vnetlink.handle", 0, 1);
  tsfn_.Unref(env);
  jsonParse_ = Napi::Persistent(env.Global().Get("JSON").As<Napi::Object>().Get("parse").As<Napi::Function>());
  registry_ = &liveHandles(env);
  registry_->insert(this);
  try {
    thread_ = std::thread([this] { run(); });
  } catch (const std::system_error& e) {
    // Only Napi::Error may cross into JS (anything else terminates the process). A
    // constructor that throws gets no destructor: what it made goes here.
    registry_->erase(this);
    registry_ = nullptr;
    joined_ = true;
    tsfn_.Abort();
    if (nsFd_ >= 0) { close(nsFd_); nsFd_ = -1; }
    closeCancelFd();
    throw Napi::Error::New(env, std::string("open: cannot start the handle's thread: ") + e.what());
  }
}

Handle::~Handle() {
  shutdown();
  if (registry_) registry_->erase(this);
  closeCancelFd();
}

// Once the handle's thread is joined (it joined its waiters first), nothing reads the eventfd.
void Handle::closeCancelFd() {
  if (cancelFd_ >= 0) { close(cancelFd_); cancelFd_ = -1; }
}

// Only at env teardown or when the handle was collected (so nothing was pending): jobs not
// yet started are dropped, never run; a kernel change nobody can learn about is not made.
void Handle::shutdown() {
  std::deque<Job*> unstarted;
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
    unstarted.swap(queue_);
  }
  cv_.notify_all();
  for (Job* j : unstarted) delete j;  // their promises can no longer be settled
  if (thread_.joinable()) thread_.join();
  closeCancelFd();
  if (!joined_) {
    joined_ = true;
    tsfn_.Abort();
    // An aborted TSFN never runs the queued drain: the results it would have settled go here.
    std::lock_guard<std::mutex> lk(doneMu_);
    for (Job* j : done_) delete j;
    done_.clear();
  }
}

void Handle::run() {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);

  int startErr = 0;
  std::string startWhere;
  int fd = nsFd_;
  if (!nsPath_.empty()) {
    fd = open(nsPath_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) { startErr = errno; startWhere = "open: cannot open namespace '" + nsPath_ + "'"; }
  }
  if (fd >= 0) {
    if (setns(fd, CLONE_NEWNET) < 0) { startErr = errno; startWhere = "open: setns(" + (nsPath_.empty() ? std::string("fd") : nsPath_) + ")"; }
    close(fd);
    nsFd_ = -1;
  }

  auto ctx = std::make_unique<Ctx>();
  for (;;) {
    Job* j = nullptr;
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [this] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) break;  // stop requested and nothing left
      j = queue_.front();
      queue_.pop_front();
    }
    if (j->close) {
      stopWaiters();
      ctx.reset();  // closes this handle's sockets and mounts, on the thread that made them
      j->ok = true;
      complete(j);
      // Anything queued behind close is refused.
      std::deque<Job*> rest;
      {
        std::lock_guard<std::mutex> lk(mu_);
        rest.swap(queue_);
        stop_ = true;
      }
      for (Job* r : rest) { r->err = EBADF; r->where = r->op + ": handle is closed"; complete(r); }
      return;
    }
    if (startErr) {
      j->err = startErr;
      j->where = startWhere;
    } else {
      settle(j, [&] { return j->fn(*ctx, j->args); });
      OffThreadRest rest = std::exchange(offThreadSlot(), nullptr);
      if (j->ok && rest) {
        auto held = std::make_shared<OffThreadRest>(std::move(rest));
        if (startWaiter(j, held)) continue;
        // No thread for the wait (a pids limit): it runs here instead. The queue waits behind
        // it, but the launched process is still reaped and the call still settles.
        settle(j, [&] { return (*held)(cancelFd_); });
      }
    }
    complete(j);
  }
  stopWaiters();
}

// Handle thread only: waiters are started, reaped and joined here.
// False when no thread could be made; `rest` is then still the caller's to run.
bool Handle::startWaiter(Job* j, const std::shared_ptr<OffThreadRest>& rest) {
  for (auto it = waiters_.begin(); it != waiters_.end();) {
    if (it->finished.load()) { it->thread.join(); it = waiters_.erase(it); }
    else ++it;
  }
  Waiter& w = waiters_.emplace_back();
  try {
    w.thread = std::thread([this, j, rest, &w] {
      sigset_t all;
      sigfillset(&all);
      pthread_sigmask(SIG_BLOCK, &all, nullptr);
      settle(j, [&] { return (*rest)(cancelFd_); });
      complete(j);
      w.finished.store(true);
    });
  } catch (const std::system_error&) {
    waiters_.pop_back();
    return false;
  }
  return true;
}

// Before the handle's sockets close (close) or its thread ends (teardown): every wait still
// running is cancelled and its call settled first.
void Handle::stopWaiters() {
  if (waiters_.empty()) return;
  uint64_t one = 1;
  if (cancelFd_ >= 0 && write(cancelFd_, &one, sizeof one) < 0) { /* nothing more to do */ }
  for (Waiter& w : waiters_) w.thread.join();
  waiters_.clear();
}

void Handle::complete(Job* j) {
  bool schedule = false;
  {
    std::lock_guard<std::mutex> lk(doneMu_);
    done_.push_back(j);
    if (!scheduled_) { scheduled_ = true; schedule = true; }
  }
  if (schedule) {
    tsfn_.NonBlockingCall([this](Napi::Env env, Napi::Function) { callGuarded(env, [&] { drain(env); }); });
  }
}

void Handle::drain(Napi::Env env) {
  std::vector<Job*> batch;
  {
    std::lock_guard<std::mutex> lk(doneMu_);
    batch.swap(done_);
    scheduled_ = false;
  }
  bool closed = false;
  for (Job* raw : batch) {
    std::unique_ptr<Job> j(raw);
    if (pending_) pending_--;
    if (j->close) closed = true;
    // One job failing to settle (e.g. while the environment is being torn down) must not
    // leave the rest of the batch unsettled or the counters wrong.
    try {
      Napi::HandleScope scope(env);
      if (j->ok && j->hasJson) {
        Napi::Value v;
        try {
          v = fromJson(env, jsonParse_.Value(), j->json, j->jsonAscii);
        } catch (const Napi::Error& e) {
          // Not expected (the text is ours); the call still settles.
          j->deferred.Reject(e.Value());
          continue;
        }
        j->deferred.Resolve(v);
      } else if (j->ok) {
        j->deferred.Resolve(toJs(env, j->result));
      } else {
        std::string msg = j->where + ": " + strerror(j->err) + (j->extack.empty() ? "" : ": " + j->extack);
        Napi::Error e = Napi::Error::New(env, msg);
        e.Set("errno", Napi::Number::New(env, j->err));
        e.Set("where", Napi::String::New(env, j->where));
        if (!j->extack.empty()) e.Set("extack", Napi::String::New(env, j->extack));
        if (j->malformed) e.Set("malformed", Napi::Boolean::New(env, true));
        j->deferred.Reject(e.Value());
      }
    } catch (...) {
    }
  }
  if (closed && thread_.joinable()) {
    thread_.join();  // the thread returned right after completing close
    closeCancelFd();
    joined_ = true;
    tsfn_.Release();
  }
  if (pending_ == 0) release(env);
}

// While a call is pending the JS object is held strongly (so a handle dropped with a call in
// flight, `await h.close()` included, is not collected and its promise still settles) and the
// TSFN keeps the event loop alive until the result is back.
void Handle::hold(Napi::Env env) {
  if (pending_++ != 0) return;
  if (!held_) { held_ = true; Ref(); }
  if (!refed_ && !joined_) { refed_ = true; tsfn_.Ref(env); }
}

void Handle::release(Napi::Env env) {
  if (refed_ && !joined_) { refed_ = false; tsfn_.Unref(env); }
  if (held_) { held_ = false; Unref(); }
}

// call(op: string, args: object): Promise<any>
Napi::Value Handle::Call(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  // Read the arguments before allocating the job: either read may throw.
  std::string op = info[0].As<Napi::String>().Utf8Value();
  vnl::Value args = info.Length() > 1 ? fromJs(info[1]) : vnl::Value::object();
  auto* j = new Job(env);
  Napi::Promise p = j->deferred.Promise();
  j->op = std::move(op);
  j->fn = OpRegistry::find(j->op);
  if (closing_ || !j->fn) {
    Napi::Error e = Napi::Error::New(env, j->op + (closing_ ? ": handle is closed" : ": unknown operation"));
    e.Set("errno", Napi::Number::New(env, closing_ ? EBADF : ENOSYS));
    e.Set("where", Napi::String::New(env, j->op));
    j->deferred.Reject(e.Value());
    delete j;
    return p;
  }
  j->args = std::move(args);
  hold(env);
  {
    std::lock_guard<std::mutex> lk(mu_);
    queue_.push_back(j);
  }
  cv_.notify_one();
  return p;
}

Napi::Value Handle::Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto* j = new Job(env);
  Napi::Promise p = j->deferred.Promise();
  if (closing_) {
    j->deferred.Resolve(env.Undefined());
    delete j;
    return p;
  }
  closing_ = true;
  j->close = true;
  j->op = "close";
  hold(env);
  {
    std::lock_guard<std::mutex> lk(mu_);
    queue_.push_back(j);
  }
  cv_.notify_one();
  return p;
}

Napi::Value Handle::Pending(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(pending_));
}

Napi::Function initHandle(Napi::Env env) {
  // Never freed: handle finalizers may run after instance data would be torn down.
  auto* live = new std::set<Handle*>();
  env.SetInstanceData<std::set<Handle*>, keepLive>(live);
  // On environment teardown, stop and join every thread that is still running.
  env.AddCleanupHook([live]() {
    for (Handle* h : *live) h->shutdown();
  });
  return Handle::Init(env);
}

}  // namespace vnl
