// The reader of a monitor (see monitor.h). Its thread never enters any namespace: the socket
// already belongs to the right one (monitor.open made it on the handle's thread), and dumps
// sent on it run there too. Names of links are never looked up with if_indextoname (that
// would ask the reader thread's namespace); RtnlEvents keeps an index->name map fed by the
// dumps and the link events. On ENOBUFS (events dropped by the kernel) it re-dumps and
// queues a `resync` event with the fresh state.
#include "ops/monitor.h"

#include <linux/rtnetlink.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <utility>

namespace vnl {

MonitorCore::MonitorCore(NlSocket sock, const EventFilter& f, bool listExisting)
    : sock_(std::move(sock)), listExisting_(listExisting), events_(f, sock_.portId()) {
  efd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (efd_ < 0) throwErrno("monitor: eventfd");
}

// Normally closeFds() ran already; this covers a core whose thread never started.
MonitorCore::~MonitorCore() { closeFds(); }

void MonitorCore::closeFds() noexcept {
  sock_.closeNow();
  if (efd_ >= 0) { close(efd_); efd_ = -1; }
}

void MonitorCore::stop() noexcept {
  {
    // Under mu_: a reader between its wait predicate (stop_ false, queue full) and its sleep
    // would otherwise miss this notify and sleep on, and stopThread's join would hang the JS
    // thread whose drain is the only other wake-up.
    std::lock_guard<std::mutex> lk(mu_);
    stop_.store(true);
  }
  uint64_t one = 1;
  if (efd_ >= 0 && write(efd_, &one, sizeof one) < 0) { /* the reader also checks stop_ */ }
  cv_.notify_all();
}

std::vector<Value> MonitorCore::take() {
  std::vector<Value> evs;
  {
    std::lock_guard<std::mutex> lk(mu_);
    evs.swap(queue_);
    scheduled_ = false;
  }
  cv_.notify_all();  // a reader paused on a full queue reads on
  return evs;
}

void MonitorCore::drop() {
  std::lock_guard<std::mutex> lk(mu_);
  queue_.clear();
}

void MonitorCore::dump(uint16_t type, uint8_t family, std::vector<Value>& out) {
  if (stop_.load()) throw Stopped{};
  MsgBuilder m = RtnlEvents::dumpRequest(type, family);
  bool ok = sock_.dumpSubscribed(
      m, "monitor: dump", efd_, [&](const nlmsghdr* h) { events_.decodeDumped(h, out); },
      [&](const nlmsghdr* h) {
        const uint8_t* b = reinterpret_cast<const uint8_t*>(h);
        deferred_.emplace_back(b, b + h->nlmsg_len);
      },
      lost_);
  if (!ok) throw Stopped{};
}

// The full state of the subscribed tables. The link dump also rebuilds the name map first,
// so addresses and routes in the same snapshot carry link names.
Value MonitorCore::snapshot(const char* type, bool existing, bool full) {
  const EventFilter& f = events_.filter();
  std::vector<Value> links;
  dump(RTM_GETLINK, AF_UNSPEC, links);  // always: the name map depends on it
  events_.learnLinks(links);
  if (!full) return Value();  // only the name map was wanted
  std::vector<Value> addrs, routes, neighs;
  if (f.addr) dump(RTM_GETADDR, static_cast<uint8_t>(f.family), addrs);
  if (f.route) dump(RTM_GETROUTE, static_cast<uint8_t>(f.family), routes);
  if (f.neigh) {
    if (f.family != AF_INET6) dump(RTM_GETNEIGH, AF_INET, neighs);
    if (f.family != AF_INET) dump(RTM_GETNEIGH, AF_INET6, neighs);
  }
  return events_.snapshot(type, existing, links, addrs, routes, neighs);
}

// Events that arrived while dumping come after the snapshot they raced with.
void MonitorCore::replayDeferred(std::vector<Value>& batch) {
  for (auto& raw : std::exchange(deferred_, {})) events_.decodeDatagram(raw.data(), raw.size(), batch);
}

void MonitorCore::deliver(std::vector<Value>& batch, const std::function<void()>& wake) {
  if (batch.empty()) return;
  bool schedule = false;
  {
    std::unique_lock<std::mutex> lk(mu_);
    // Bounded memory: when JS falls behind, stop reading; the kernel then drops events
    // and we resync, instead of growing without limit.
    cv_.wait(lk, [&] { return stop_.load() || queue_.size() < kMaxQueued; });
    if (stop_.load()) throw Stopped{};
    for (auto& e : batch) queue_.push_back(std::move(e));
    if (!scheduled_) { scheduled_ = true; schedule = true; }
  }
  batch.clear();
  if (schedule) wake();
}

void MonitorCore::loop(std::vector<Value>& batch) {
  const auto decode = [&](const uint8_t* p, size_t n) { events_.decodeDatagram(p, n, batch); };
  for (;;) {
    replayDeferred(batch);
    while (lost_) {
      // Each resync goes to JS before the next: under constant churn (or a small rcvbuf) the
      // resync dump itself overruns again, and collecting snapshot after snapshot here would
      // grow without bound while JS got nothing. deliver() waits while JS is behind.
      lost_ = false;
      batch.push_back(RtnlEvents::resync(snapshot("resync", false)));
      replayDeferred(batch);
      deliver(batch, wake_);
    }
    deliver(batch, wake_);
    if (stop_.load() || !sock_.waitEvents(efd_, "monitor")) throw Stopped{};
    if (sock_.drainEvents(decode, "monitor")) lost_ = true;
  }
}

void MonitorCore::run(const std::function<void()>& wake) noexcept {
  // Signals belong to the JS thread; this one only reads the socket.
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  std::vector<Value> batch;
  try {
    wake_ = wake;
    try {
      // The name map is needed even without listExisting.
      Value s = snapshot("existing", true, listExisting_);
      if (listExisting_) RtnlEvents::existingEvents(s, batch);
      loop(batch);
    } catch (const SysError& e) {
      batch.push_back(RtnlEvents::errorEvent(e.err(), e.where()));
      deliver(batch, wake_);
    } catch (const std::exception& e) {
      batch.push_back(RtnlEvents::errorEvent(EIO, std::string("monitor: ") + e.what()));
      deliver(batch, wake_);
    }
  } catch (...) {
    // Stopped (close() or teardown woke the reader), or an allocation failing while the
    // error was being reported: the thread ends either way; nothing may escape a thread.
  }
}

}  // namespace vnl
