// A monitor's reader: what runs on its thread (snapshot, events, resync after an overrun) and
// what it shares with the JS side (a bounded queue of decoded events, the stop flag, the wake
// eventfd). No N-API here: napi/monitor.cc owns the thread and the ThreadSafeFunction, and
// hands the queue to JS. Bytes are the codec's (codec/rtnl_event.h), the socket is the
// transport's subscription mode (NlSocket::subscribed, made by monitor.open).
#pragma once
#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "codec/rtnl_event.h"
#include "transport/nlsock.h"

namespace vnl {

class MonitorCore {
 public:
  // Takes the subscribed socket (monitor.open's fd) and makes the wake eventfd. Throws
  // SysError when the eventfd cannot be made; the socket is closed then.
  MonitorCore(NlSocket sock, const EventFilter& f, bool listExisting);
  ~MonitorCore();
  MonitorCore(const MonitorCore&) = delete;
  MonitorCore& operator=(const MonitorCore&) = delete;

  // The reader thread's body: returns once stop() was called (or after reporting an error
  // event). `wake` is called on that thread when events were queued for a consumer that was
  // not already due to take them; it must not block or throw.
  void run(const std::function<void()>& wake) noexcept;

  // --- the JS thread ---
  // Takes everything queued (the reader may queue again: it was paused at kMaxQueued).
  std::vector<Value> take();
  // Drops what is queued: a delivery still due then finds nothing (JS may no longer run).
  void drop();
  // Asks the reader to end (it wakes from poll, a dump or a full queue); never blocks.
  void stop() noexcept;
  // After the reader thread was joined: closes the socket and the eventfd.
  void closeFds() noexcept;

 private:
  struct Stopped {};  // thrown inside the reader when stop() woke it
  static constexpr size_t kMaxQueued = 1 << 16;  // events waiting for JS before the reader pauses

  void loop(std::vector<Value>& batch);
  void dump(uint16_t type, uint8_t family, std::vector<Value>& out);
  Value snapshot(const char* type, bool existing, bool full = true);
  void replayDeferred(std::vector<Value>& batch);
  void deliver(std::vector<Value>& batch, const std::function<void()>& wake);

  // The socket is used by the reader thread alone while it runs; the JS thread closes it
  // (closeFds) only after joining that thread, so it has one user at any time.
  NlSocket sock_;
  // The eventfd stop() writes to: the reader polls it with the socket; closed by closeFds.
  int efd_ = -1;
  const bool listExisting_;
  RtnlEvents events_;                               // reader thread only
  bool lost_ = false;                               // reader thread only
  std::vector<std::vector<uint8_t>> deferred_;      // events seen during a dump; reader only
  std::function<void()> wake_;                      // set by run(), reader only

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Value> queue_;  // guarded by mu_
  bool scheduled_ = false;    // guarded by mu_: a wake is due and has not taken the queue yet
  std::atomic<bool> stop_{false};
};

}  // namespace vnl
