// A Monitor owns a subscribed NETLINK_ROUTE socket (made in the handle's namespace by
// monitor.open) and one reader thread that never enters any namespace: the socket already
// belongs to the right one, and dumps sent on it run there too. Names of links are never
// looked up with if_indextoname (that would ask the reader thread's namespace); an
// index->name map fed by the dumps and the link events resolves them. Decoded events reach
// JS in batches through a ThreadSafeFunction. On ENOBUFS (events dropped by the kernel) it
// re-dumps and emits a `resync` event with the fresh state. close() and env teardown wake
// the thread through an eventfd and join it.
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <napi.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "codec/rtnl.h"
#include "napi/convert.h"
#include "napi/guard.h"
#include "transport/nlsock.h"

namespace vnl {
namespace {

constexpr size_t kMaxQueued = 1 << 16;  // events waiting for JS before the reader pauses

struct Core {
  int sock = -1;
  int efd = -1;
  uint32_t portid = 0;
  bool wantLink = false, wantAddr = false, wantRoute = false, wantNeigh = false, listExisting = false;
  int family = AF_UNSPEC;  // filter for addr/route/neigh

  std::mutex mu;
  std::condition_variable cv;
  std::vector<Value> queue;
  bool scheduled = false;
  std::atomic<bool> stop{false};
  Napi::ThreadSafeFunction tsfn;

  ~Core() {
    if (sock >= 0) close(sock);
    if (efd >= 0) close(efd);
  }
};

struct Stopped {};  // thrown inside the reader when close() woke it

class Reader {
 public:
  explicit Reader(std::shared_ptr<Core> c) : c_(std::move(c)), rx_(256 * 1024) {}
  void run();

 private:
  // Waits until the socket is readable; throws Stopped when the eventfd fired.
  void waitReadable();
  // Receives one datagram; returns its length, or -errno (ENOBUFS, EAGAIN, ...).
  ssize_t recvOne();
  // Dumps one table on the monitor socket; multicast events arriving meanwhile are kept
  // for after. Sets lost_ when the kernel dropped events meanwhile.
  void dump(uint16_t type, uint8_t family, std::vector<Value>& out);
  Value snapshot(const char* type, bool existing, bool full = true);
  void handleEvent(const nlmsghdr* h, std::vector<Value>& batch);
  void handleDatagram(const uint8_t* p, size_t n, std::vector<Value>& batch);
  bool familyOk(int fam) const {
    if (fam != AF_INET && fam != AF_INET6) return false;
    return c_->family == AF_UNSPEC || fam == c_->family;
  }
  void deliver(std::vector<Value>& batch);

  std::shared_ptr<Core> c_;
  std::vector<uint8_t> rx_;
  IndexNames names_;
  const Names resolve_ = Names::of(names_);  // decoding never looks names up
  uint32_t seq_ = 1;
  bool lost_ = false;
  std::vector<std::vector<uint8_t>> deferred_;  // events seen during a dump
};

void Reader::waitReadable() {
  pollfd p[2] = {{c_->sock, POLLIN, 0}, {c_->efd, POLLIN, 0}};
  for (;;) {
    if (c_->stop.load()) throw Stopped{};
    int r = poll(p, 2, -1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) throwErrno("monitor: poll");
    if (p[1].revents) throw Stopped{};
    if (p[0].revents) return;
  }
}

ssize_t Reader::recvOne() {
  ssize_t n = nlRecv(c_->sock, rx_, MSG_DONTWAIT, 2);
  return n == -EMSGSIZE ? -ENOBUFS : n;  // a lost datagram is a gap: resync
}

void Reader::dump(uint16_t type, uint8_t family, std::vector<Value>& out) {
  for (int attempt = 0;; attempt++) {
    MsgBuilder m(type, NLM_F_REQUEST | NLM_F_DUMP);
    uint32_t seq = ++seq_;
    m.setSeq(seq);
    if (type == RTM_GETLINK) { ifinfomsg h{}; h.ifi_family = family; m.putHeader(h); }
    else if (type == RTM_GETADDR) { ifaddrmsg h{}; h.ifa_family = family; m.putHeader(h); }
    else if (type == RTM_GETROUTE) { rtmsg h{}; h.rtm_family = family; m.putHeader(h); }
    else { ndmsg h{}; h.ndm_family = family; m.putHeader(h); }
    sockaddr_nl sa{};
    sa.nl_family = AF_NETLINK;
    while (sendto(c_->sock, m.data(), m.size(), 0, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) { usleep(1000); continue; }
      throwErrno("monitor: dump (sendto)");
    }
    std::vector<std::vector<uint8_t>> parts;
    bool intr = false;
    // The transport's receive loop, with this socket's events kept aside for after the dump
    // and close() able to end the wait.
    Exchange x;
    x.op = "monitor: dump";
    x.owns = [seq](uint32_t s) { return s == seq; };
    x.onMsg = [&](const nlmsghdr* h, const AckResult* st) {
      if (h->nlmsg_flags & NLM_F_DUMP_INTR) intr = true;
      if (st) {
        if (st->err) throw SysError(st->err, "monitor: dump", st->extack);
        return true;
      }
      const uint8_t* b = reinterpret_cast<const uint8_t*>(h);
      parts.emplace_back(b, b + h->nlmsg_len);
      return false;
    };
    x.onOther = [&](const nlmsghdr* h) {
      const uint8_t* b = reinterpret_cast<const uint8_t*>(h);
      if (h->nlmsg_pid != c_->portid) deferred_.emplace_back(b, b + h->nlmsg_len);  // an event
    };
    x.onLoss = [&] { lost_ = true; return true; };  // events were lost; our dump replies are not
    x.wakeFd = c_->efd;
    if (c_->stop.load() || !runExchange(c_->sock, c_->portid, rx_, x)) throw Stopped{};
    if (intr && attempt < 10) continue;
    for (auto& raw : parts) {
      const nlmsghdr* h = reinterpret_cast<const nlmsghdr*>(raw.data());
      try {
        switch (h->nlmsg_type) {
          case RTM_NEWLINK: {
            const ifinfomsg* ifi = familyHeader<ifinfomsg>(h);
            if (!ifi || ifi->ifi_family != AF_UNSPEC) break;
            out.push_back(decodeLink(h, resolve_));
            break;
          }
          case RTM_NEWADDR: {
            const ifaddrmsg* a = familyHeader<ifaddrmsg>(h);
            if (a && familyOk(a->ifa_family)) out.push_back(decodeAddr(h, resolve_));
            break;
          }
          case RTM_NEWROUTE: {
            const rtmsg* r = familyHeader<rtmsg>(h);
            if (r && familyOk(r->rtm_family)) out.push_back(decodeRoute(h, resolve_));
            break;
          }
          case RTM_NEWNEIGH: {
            const ndmsg* nd = familyHeader<ndmsg>(h);
            if (nd && familyOk(nd->ndm_family)) out.push_back(decodeNeigh(h, resolve_));
            break;
          }
        }
      } catch (const CodecError&) {
        // a malformed message is skipped, never fatal
      }
    }
    return;
  }
}

// The full state of the subscribed tables. The link dump also rebuilds the name map first,
// so addresses and routes in the same snapshot carry link names.
Value Reader::snapshot(const char* type, bool existing, bool full) {
  std::vector<Value> links;
  dump(RTM_GETLINK, AF_UNSPEC, links);  // always: the name map depends on it
  names_.clear();
  for (auto& l : links) names_[static_cast<uint32_t>(l.num("index"))] = l.str("name", "");
  // Re-decode masters/parents now that the map is complete (cheap: a second pass on Values
  // is not possible, so fill names the first pass could not know).
  for (auto& l : links) {
    if (const Value* mi = l.get("masterIndex"); mi && !l.has("master")) {
      auto it = names_.find(static_cast<uint32_t>(mi->number()));
      if (it != names_.end()) l.set("master", it->second);
    }
    if (const Value* pi = l.get("linkIndex"); pi && !l.has("link") && !l.has("linkNetnsId")) {
      auto it = names_.find(static_cast<uint32_t>(pi->number()));
      if (it != names_.end()) l.set("link", it->second);
    }
  }
  std::vector<Value> addrs, routes, neighs;
  if (!full) return Value();  // only the name map was wanted
  if (c_->wantAddr) dump(RTM_GETADDR, c_->family, addrs);
  if (c_->wantRoute) dump(RTM_GETROUTE, c_->family, routes);
  if (c_->wantNeigh) {
    if (c_->family != AF_INET6) dump(RTM_GETNEIGH, AF_INET, neighs);
    if (c_->family != AF_INET) dump(RTM_GETNEIGH, AF_INET6, neighs);
  }
  Value s = Value::object();
  s.set("type", type);
  if (existing) s.set("existing", true);
  auto arr = [](std::vector<Value>& v) { Value a = Value::array(); for (auto& x : v) a.push(std::move(x)); return a; };
  if (c_->wantLink) s.set("links", arr(links));
  if (c_->wantAddr) s.set("addrs", arr(addrs));
  if (c_->wantRoute) s.set("routes", arr(routes));
  if (c_->wantNeigh) s.set("neighs", arr(neighs));
  return s;
}

void Reader::handleEvent(const nlmsghdr* h, std::vector<Value>& batch) {
  const char* type = nullptr;
  const char* key = nullptr;
  Value obj;
  switch (h->nlmsg_type) {
    case RTM_NEWLINK:
    case RTM_DELLINK: {
      const ifinfomsg* ifi = familyHeader<ifinfomsg>(h);
      // Bridge port notifications (AF_BRIDGE) share the group; `ip monitor link` shows them
      // apart, and they are not Link objects.
      if (!ifi || ifi->ifi_family != AF_UNSPEC) return;
      bool del = h->nlmsg_type == RTM_DELLINK;
      uint32_t idx = static_cast<uint32_t>(ifi->ifi_index);
      // The name map follows link events even when links are not wanted: addr, route and
      // neigh events of links made later are named from it (monitor.open subscribes for it).
      if (!del) {
        const uint8_t* p;
        size_t len;
        if (payloadAfter(h, sizeof(ifinfomsg), p, len)) {
          AttrTable tb(p, len, IFLA_IFNAME);
          if (tb[IFLA_IFNAME]) names_[idx] = tb[IFLA_IFNAME]->str();
        }
      }
      if (!c_->wantLink) {
        if (del) names_.erase(idx);
        return;
      }
      obj = decodeLink(h, resolve_);
      if (del) names_.erase(idx);
      type = del ? "dellink" : "newlink";
      key = "link";
      break;
    }
    case RTM_NEWADDR:
    case RTM_DELADDR: {
      const ifaddrmsg* a = familyHeader<ifaddrmsg>(h);
      if (!a || !familyOk(a->ifa_family) || !c_->wantAddr) return;
      obj = decodeAddr(h, resolve_);
      type = h->nlmsg_type == RTM_NEWADDR ? "newaddr" : "deladdr";
      key = "addr";
      break;
    }
    case RTM_NEWROUTE:
    case RTM_DELROUTE: {
      const rtmsg* r = familyHeader<rtmsg>(h);
      if (!r || !familyOk(r->rtm_family) || !c_->wantRoute) return;
      obj = decodeRoute(h, resolve_);
      type = h->nlmsg_type == RTM_NEWROUTE ? "newroute" : "delroute";
      key = "route";
      break;
    }
    case RTM_NEWNEIGH:
    case RTM_DELNEIGH: {
      const ndmsg* nd = familyHeader<ndmsg>(h);
      if (!nd || !familyOk(nd->ndm_family) || !c_->wantNeigh) return;
      obj = decodeNeigh(h, resolve_);
      type = h->nlmsg_type == RTM_NEWNEIGH ? "newneigh" : "delneigh";
      key = "neigh";
      break;
    }
    default:
      return;
  }
  Value ev = Value::object();
  ev.set("type", type);
  ev.set(key, std::move(obj));
  batch.push_back(std::move(ev));
}

void Reader::handleDatagram(const uint8_t* p, size_t n, std::vector<Value>& batch) {
  MsgIter it(p, n);
  while (const nlmsghdr* h = it.next()) {
    if (h->nlmsg_pid == c_->portid && h->nlmsg_pid != 0) continue;  // a stale dump reply
    try {
      handleEvent(h, batch);
    } catch (const CodecError&) {
    }
  }
}

void Reader::deliver(std::vector<Value>& batch) {
  if (batch.empty()) return;
  bool schedule = false;
  {
    std::unique_lock<std::mutex> lk(c_->mu);
    // Bounded memory: when JS falls behind, stop reading; the kernel then drops events
    // and we resync, instead of growing without limit.
    c_->cv.wait(lk, [&] { return c_->stop.load() || c_->queue.size() < kMaxQueued; });
    if (c_->stop.load()) throw Stopped{};
    for (auto& e : batch) c_->queue.push_back(std::move(e));
    if (!c_->scheduled) { c_->scheduled = true; schedule = true; }
  }
  batch.clear();
  if (schedule) {
    auto core = c_;
    c_->tsfn.NonBlockingCall([core](Napi::Env env, Napi::Function cb) {
      std::vector<Value> evs;
      {
        std::lock_guard<std::mutex> lk(core->mu);
        evs.swap(core->queue);
        core->scheduled = false;
      }
      core->cv.notify_all();
      if (evs.empty()) return;
      // A worker being terminated fails every call below with a Napi::Error.
      callGuarded(env, [&] {
        Napi::HandleScope scope(env);
        Napi::Array a = Napi::Array::New(env, evs.size());
        for (size_t i = 0; i < evs.size(); i++) a.Set(static_cast<uint32_t>(i), toJs(env, evs[i]));
        cb.Call({a});
      });
    });
  }
}

void Reader::run() {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  std::vector<Value> batch;
  try {
    try {
      // The name map is needed even without listExisting.
      Value s = snapshot("existing", true, c_->listExisting);
      if (c_->listExisting) {
        // The initial state as ordinary new* events marked existing, then `synced`.
        auto emit = [&](const char* k, const char* t, const char* key) {
          if (const Value* arr = s.get(k))
            for (const Value& o : arr->items()) {
              Value ev = Value::object();
              ev.set("type", t);
              ev.set("existing", true);
              ev.set(key, o);
              batch.push_back(std::move(ev));
            }
        };
        emit("links", "newlink", "link");
        emit("addrs", "newaddr", "addr");
        emit("routes", "newroute", "route");
        emit("neighs", "newneigh", "neigh");
        Value ev = Value::object();
        ev.set("type", "synced");
        batch.push_back(std::move(ev));
      }
      for (;;) {
        // Events that arrived while dumping come after the snapshot they raced with.
        if (!deferred_.empty()) {
          auto d = std::move(deferred_);
          deferred_.clear();
          for (auto& raw : d) handleDatagram(raw.data(), raw.size(), batch);
        }
        while (lost_) {
          lost_ = false;
          Value r = snapshot("resync", false);
          r.set("reason", "ENOBUFS");
          r.set("message", "the kernel dropped events (receive buffer full); this is the fresh state, re-dumped");
          batch.push_back(std::move(r));
          for (auto& raw : std::exchange(deferred_, {})) handleDatagram(raw.data(), raw.size(), batch);
        }
        deliver(batch);
        waitReadable();
        // Take everything queued at once: one JS wake-up per burst.
        for (int i = 0; i < 256; i++) {
          ssize_t n = recvOne();
          if (n == -EAGAIN || n == -EWOULDBLOCK) break;
          if (n == -ENOBUFS) { lost_ = true; break; }
          if (n < 0) throw SysError(static_cast<int>(-n), "monitor: recvmsg");
          handleDatagram(rx_.data(), static_cast<size_t>(n), batch);
        }
      }
    } catch (const SysError& e) {
      Value ev = Value::object();
      ev.set("type", "error");
      ev.set("errno", e.err());
      ev.set("where", e.where());
      batch.push_back(std::move(ev));
      deliver(batch);
    } catch (const std::exception& e) {
      Value ev = Value::object();
      ev.set("type", "error");
      ev.set("errno", EIO);
      ev.set("where", std::string("monitor: ") + e.what());
      batch.push_back(std::move(ev));
      deliver(batch);
    }
  } catch (const Stopped&) {
  }
}

class Monitor : public Napi::ObjectWrap<Monitor> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Monitor", {InstanceMethod<&Monitor::Close>("close"), InstanceMethod<&Monitor::SetRef>("ref")});
  }

  // new Monitor(fd, { portId, link, addr, route, neigh, family, listExisting }, onEvents)
  explicit Monitor(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Monitor>(info) {
    Napi::Env env = info.Env();
    core_ = std::make_shared<Core>();
    core_->sock = info[0].As<Napi::Number>().Int32Value();  // owned from here on
    auto o = info[1].As<Napi::Object>();
    auto flag = [&](const char* k) { return o.Has(k) && o.Get(k).ToBoolean().Value(); };
    core_->portid = o.Get("portId").As<Napi::Number>().Uint32Value();
    core_->wantLink = flag("link");
    core_->wantAddr = flag("addr");
    core_->wantRoute = flag("route");
    core_->wantNeigh = flag("neigh");
    core_->listExisting = flag("listExisting");
    std::string fam = o.Has("family") && o.Get("family").IsString() ? o.Get("family").As<Napi::String>().Utf8Value() : "";
    core_->family = fam == "inet" ? AF_INET : fam == "inet6" ? AF_INET6 : AF_UNSPEC;
    core_->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (core_->efd < 0) throw Napi::Error::New(env, std::string("monitor: eventfd: ") + strerror(errno));
    core_->tsfn = Napi::ThreadSafeFunction::New(env, info[2].As<Napi::Function>(), "vnetlink.monitor", 0, 1);
    hook_ = env.AddCleanupHook(&Monitor::onTeardown, this);
    hooked_ = true;
    auto core = core_;
    thread_ = std::thread([core] { Reader r(core); r.run(); });
  }

  ~Monitor() override {
    stopThread();
    dropQueued();
    releaseTsfn();
    if (hooked_) { hook_.Remove(Env()); hooked_ = false; }  // the hook must not outlive us
  }

 private:
  static void onTeardown(Monitor* m) {
    m->hooked_ = false;  // the hook is being run; never remove it again
    m->stopThread();
    m->dropQueued();
    m->releaseTsfn();
  }

  // Before releasing without close(): a delivery still queued then finds nothing to hand to
  // JS (which may no longer run) and only frees what it holds.
  void dropQueued() {
    if (!core_) return;
    std::lock_guard<std::mutex> lk(core_->mu);
    core_->queue.clear();
  }

  void stopThread() {
    if (!core_) return;
    core_->stop.store(true);
    uint64_t one = 1;
    if (core_->efd >= 0 && write(core_->efd, &one, sizeof one) < 0) { /* the thread also checks `stop` */ }
    core_->cv.notify_all();
    if (thread_.joinable()) thread_.join();
    // Closed here, not by ~Core: a TSFN call still queued at env teardown may never run (so
    // never free the Core it holds).
    if (core_->sock >= 0) { close(core_->sock); core_->sock = -1; }
    if (core_->efd >= 0) { close(core_->efd); core_->efd = -1; }
  }

  // Release, never abort: an aborted TSFN never runs (so never frees) a queued delivery, and
  // that delivery holds the Core.
  void releaseTsfn() {
    if (released_ || !core_) return;
    released_ = true;
    core_->tsfn.Release();
  }

  // ref(bool): whether pending events keep the event loop (and so the process) alive.
  Napi::Value SetRef(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (released_ || !core_) return env.Undefined();
    if (info[0].ToBoolean().Value()) core_->tsfn.Ref(env); else core_->tsfn.Unref(env);
    return env.Undefined();
  }

  // close(): joins the reader, hands the events it had queued to the callback, ends.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (released_) return env.Undefined();
    stopThread();
    if (hooked_) { hook_.Remove(env); hooked_ = false; }
    std::vector<vnl::Value> evs;
    {
      std::lock_guard<std::mutex> lk(core_->mu);
      evs.swap(core_->queue);
    }
    Napi::Array a = Napi::Array::New(env, evs.size());
    for (size_t i = 0; i < evs.size(); i++) a.Set(static_cast<uint32_t>(i), toJs(env, evs[i]));
    // A delivery still queued then runs, finds the queue empty, and frees what it holds.
    releaseTsfn();
    return a;
  }

  std::shared_ptr<Core> core_;
  std::thread thread_;
  Napi::Env::CleanupHook<void (*)(Monitor*), Monitor> hook_;
  bool hooked_ = false;
  bool released_ = false;
};

}  // namespace

Napi::Function initMonitor(Napi::Env env) { return Monitor::Init(env); }

}  // namespace vnl
