// The userspace forwarding engine: worker threads that move Ethernet frames between fds
// (tap/macvtap queues, socketpairs) with epoll, preallocated buffers and per-thread counters.
// The JS-facing control side (add/remove ports, start/stop, stats, copies for people) talks to
// the workers through a small command queue applied between batches; the packet path takes
// no lock, allocates nothing and never calls into JavaScript.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <functional>

#include <sys/uio.h>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace vnl::fwd {

constexpr int kMaxPorts = 64;
constexpr int kMaxQueues = 16;
constexpr int kMaxThreads = 16;
constexpr size_t kBufLen = 65536 + 4096;  // the largest frame taken: a whole GSO frame plus headers
constexpr int kMaxHdrLen = 32;            // the largest vnet header a port may use (header buffers)
constexpr int kMaxAllowedMacs = 64;       // source MACs a port may be locked to
constexpr uint32_t kMaxPortMacs = 4096;   // the largest per-port MAC limit

// Why a frame was not delivered (counted on the port it was meant for, or read from).
enum Drop {
  kDropTxFull, kDropTxError, kDropRxError, kDropGso, kDropMalformed, kDropNoRoute, kDropCopies,
  kDropOversize,  // larger than the read buffer (kBufLen): would have been cut short
  kDropGsoLimit,  // a GSO frame outside the segmentation limits (packet.h)
  kDropSrcMac,    // source MAC not a station address (switch mode) or not in the port's allowed list
  kDropMacLimit,  // a new source MAC on a port that already holds its limit of learned MACs
  kDropCount
};
const char* dropName(int d);

// Written by exactly one thread (its owner), read by anyone: relaxed loads/stores, no RMW.
struct alignas(64) Counters {
  std::atomic<uint64_t> rxPackets{0}, rxBytes{0}, txPackets{0}, txBytes{0};
  std::atomic<uint64_t> drops[kDropCount] = {};
  void reset();
};
inline void bump(std::atomic<uint64_t>& a, uint64_t v = 1) {
  a.store(a.load(std::memory_order_relaxed) + v, std::memory_order_relaxed);
}

struct Options {
  bool switchMode = false;
  int threads = 1;
  int busyPollUs = 0;
  int batch = 64;              // per-queue fairness cap: frames read before the next queue's turn
  uint32_t fdbSize = 4096;     // MAC table entries (power of two)
  uint32_t ageingSec = 300;
  size_t copyRingBytes = 4 << 20;  // per worker, for frames()/capture copies
  uint32_t snaplen = 65535 + 64;
  bool segment = true;         // GSO towards a port without vnet header: segment (else drop)
};

// What a zero-length read means on a queue's fd.
enum class ZeroRead : uint8_t {
  Frame,     // an empty frame (taps, datagram sockets: neither has an end of file)
  Eof,       // end of file (pipes and other files)
  CheckHup,  // seqpacket: an empty message, unless the peer has shut down and nothing is queued
};

// What add() asks for a port besides its fds.
struct PortSpec {
  int hdrLen = 0;
  uint32_t maxMacs = 64;                // switch mode: learned source MACs (0: only the table bounds them)
  std::vector<uint64_t> allowedMacs;    // when not empty: the only source MACs taken from the port
};

// A port. Its fields change only while no worker has it active (commands order the hand-off).
struct Port {
  bool used = false;
  int hdrLen = 0;
  int nq = 0;
  int fds[kMaxQueues] = {};
  int owner[kMaxQueues] = {};  // worker polling each queue
  ZeroRead zero[kMaxQueues] = {};
  // Bumped on every add and remove of the slot. Copies carry all 32 bits; the MAC table keeps
  // the low 8, which is safe because removing a port purges its entries from the table.
  uint32_t gen = 0;
  uint32_t maxMacs = 0;
  // The source MACs charged to this port (0: free), at most maxMacs; an entry whose MAC the
  // table no longer maps here (aged, evicted, moved) may be reused. Written by CAS from any worker.
  std::unique_ptr<std::atomic<uint64_t>[]> macs;
  // The second (the workers' clock) in which a full scan of `macs` last found nothing to reuse:
  // within that second a new source MAC is dropped without scanning again, so a guest cycling
  // source MACs costs one maxMacs-long scan per second, not one per frame.
  std::atomic<uint32_t> fullSec{0};
  int nAllowed = 0;
  uint64_t allowed[kMaxAllowedMacs] = {};
  std::atomic<bool> monitor{false};
  std::atomic<uint32_t> downQueues{0};
  std::atomic<int> lastErrno{0};
};

// One record in a copy ring (followed by `caplen` bytes, padded to 8).
struct CopyRec {
  uint32_t caplen;
  uint32_t origLen;
  uint16_t port;
  uint8_t dir;  // 0 rx (received from the port), 1 tx (sent to it)
  uint8_t pad;
  uint32_t gen;   // Port::gen when the copy was made
  uint64_t tsNs;  // CLOCK_REALTIME
};
static_assert(sizeof(CopyRec) == 24, "records are 8-byte aligned");

// Single-producer (a worker) single-consumer (the JS thread) byte ring of CopyRec records.
class CopyRing {
 public:
  explicit CopyRing(size_t cap);
  bool push(const CopyRec& r, const uint8_t* data);
  // Calls fn(rec, data) for up to max records; returns how many.
  template <class Fn> size_t pop(size_t max, Fn&& fn);
 private:
  size_t cap_;
  std::unique_ptr<uint8_t[]> mem_;
  alignas(64) std::atomic<uint64_t> head_{0};
  alignas(64) std::atomic<uint64_t> tail_{0};
};

// Learned MACs: one 64-bit word per entry (mac << 16 | slot << 8 | gen) so a reader never sees
// a torn mapping, plus a last-seen second. Lock-free; racing learners at worst duplicate an entry.
class Fdb {
 public:
  explicit Fdb(uint32_t size);
  // Returns slot << 8 | gen, or -1.
  int lookup(uint64_t mac, uint32_t now, uint32_t ageing) const;
  // True when `mac` is already learned at (slot, gen): then only its last-seen time is updated.
  bool refresh(uint64_t mac, int slot, uint8_t gen, uint32_t now);
  void learn(uint64_t mac, int slot, uint8_t gen, uint32_t now, uint32_t ageing);
  // Forgets every entry pointing at a slot (its port is gone; no worker learns for it any more).
  void purge(int slot);
  template <class Fn> void each(Fn&& fn) const {
    for (uint32_t i = 0; i <= mask_; i++) {
      uint64_t w = word_[i].load(std::memory_order_relaxed);
      if (w) fn(w, seen_[i].load(std::memory_order_relaxed));
    }
  }
 private:
  uint32_t mask_;
  std::unique_ptr<std::atomic<uint64_t>[]> word_;
  std::unique_ptr<std::atomic<uint32_t>[]> seen_;
};

class Engine;

struct Cmd {
  enum Type { Activate, Deactivate, Monitor, Stop } type;
  int slot;
};

class Worker {
 public:
  Worker(Engine* e, int index);
  ~Worker();
  void run();
  void apply(const Cmd& c);
  void wake();

  Engine* eng;
  int index;
  int ep = -1;
  int evfd = -1;
  std::thread th;
  std::mutex mu;                 // guards cmds (control side only; the worker swaps them out)
  std::vector<Cmd> cmds, scratchCmds;
  std::atomic<bool> hasCmd{false};
  std::atomic<uint64_t> posted{0}, applied{0};
  std::atomic<uint64_t> cpuNsDone{0};

  // Local view of the port table, changed only by apply().
  bool active[kMaxPorts] = {};
  uint32_t gen[kMaxPorts] = {};
  int activeList[kMaxPorts] = {};
  int nActive = 0;

  std::unique_ptr<uint8_t[]> buf, seg;
  Counters counters[kMaxPorts];
  CopyRing ring;
  bool stopping = false;
  uint32_t nowSec = 0;
  uint32_t writes = 0;  // writes made for the frame being handled (the fairness budget)

 private:
  void pollQueue(int slot, int q);
  void disableQueue(int slot, int q, int err);
  bool zeroIsEof(const Port& p, int q) const;
  bool charge(Port& p, int in, uint64_t mac);
  void handle(int in, uint8_t* b, size_t n);
  void emit(int in, int out, uint8_t* b, size_t n);
  void writeOne(int out, int fd, const iovec* iov, int iovcnt, size_t frameLen, const uint8_t* frame);
  void copy(int slot, int dir, const uint8_t* frame, size_t len);
  void applyPending();
};

class Engine {
 public:
  explicit Engine(const Options& o);
  ~Engine();

  // Control side (one thread: the JS thread). Throws std::system_error-like SysError.
  // `prepare` runs on the engine's own copies of the fds once every check passed and before
  // the port goes live; if it throws, nothing is added.
  int addPort(const int* fds, int nfds, const PortSpec& spec, const std::function<void(const int* own, int n)>& prepare = nullptr);
  void removePort(int slot);
  void start();
  void stop();
  void shutdown();  // stop + close every port fd
  bool running() const { return running_; }
  void setMonitor(int slot, bool on);
  // Writes one frame (without vnet header) to a port from the control thread. 0, or errno.
  int send(int slot, const uint8_t* frame, size_t len);
  // Sum of every thread's counters for a port (slot must be in range: callers check).
  void stats(int slot, uint64_t out[4 + kDropCount]) const;
  std::vector<uint64_t> cpuNs() const;
  template <class Fn> size_t drain(size_t max, Fn&& fn) {
    size_t n = 0;
    for (auto& w : workers_) n += w->ring.pop(max - n, fn);
    return n;
  }
  template <class Fn> void fdbEach(Fn&& fn) const { fdb_.each(fn); }

  Options opt;
  Port ports[kMaxPorts];
  Fdb fdb_;
  Counters control[kMaxPorts];  // frames sent by send()

  // Ack of applied commands.
  std::mutex ackMu;
  std::condition_variable ackCv;

 private:
  void post(const Cmd& c, bool wait);
  std::vector<std::unique_ptr<Worker>> workers_;
  bool running_ = false;
  int rr_ = 0;
};

template <class Fn>
size_t CopyRing::pop(size_t max, Fn&& fn) {
  uint64_t t = tail_.load(std::memory_order_relaxed);
  uint64_t h = head_.load(std::memory_order_acquire);
  size_t n = 0;
  while (t < h && n < max) {
    size_t pos = t % cap_;
    if (cap_ - pos < sizeof(CopyRec)) { t += cap_ - pos; continue; }
    CopyRec r;
    std::memcpy(&r, mem_.get() + pos, sizeof r);
    if (r.caplen == UINT32_MAX) { t += cap_ - pos; continue; }
    fn(r, mem_.get() + pos + sizeof r);
    t += (sizeof r + r.caplen + 7) & ~size_t(7);
    n++;
  }
  tail_.store(t, std::memory_order_release);
  return n;
}

}  // namespace vnl::fwd
