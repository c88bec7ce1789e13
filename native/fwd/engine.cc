#include "fwd/engine.h"

#include <algorithm>
#include <fcntl.h>
#include <linux/sockios.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>

#include "fwd/packet.h"
#include "transport/error.h"

namespace vnl::fwd {

static constexpr uint64_t kEventTag = ~uint64_t(0);

const char* dropName(int d) {
  static const char* names[kDropCount] = {"txFull", "txError", "rxError", "gso", "malformed", "noRoute", "copies",
                                          "oversize", "gsoLimit", "srcMac", "macLimit"};
  return d >= 0 && d < kDropCount ? names[d] : "?";
}

void Counters::reset() {
  rxPackets.store(0, std::memory_order_relaxed);
  rxBytes.store(0, std::memory_order_relaxed);
  txPackets.store(0, std::memory_order_relaxed);
  txBytes.store(0, std::memory_order_relaxed);
  for (auto& d : drops) d.store(0, std::memory_order_relaxed);
}

static inline uint64_t monoNs(clockid_t c = CLOCK_MONOTONIC) {
  timespec ts;
  clock_gettime(c, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

// ---- copy ring ---------------------------------------------------------------------------------

CopyRing::CopyRing(size_t cap) : cap_(cap), mem_(new uint8_t[cap]) {}

bool CopyRing::push(const CopyRec& r, const uint8_t* data) {
  size_t need = (sizeof r + r.caplen + 7) & ~size_t(7);
  if (need > cap_ / 2) return false;
  uint64_t h = head_.load(std::memory_order_relaxed);
  uint64_t t = tail_.load(std::memory_order_acquire);
  size_t pos = h % cap_;
  size_t skip = cap_ - pos < need ? cap_ - pos : 0;
  if (cap_ - (h - t) < skip + need) return false;
  if (skip) {
    if (skip >= sizeof(uint32_t)) { uint32_t m = UINT32_MAX; std::memcpy(mem_.get() + pos, &m, sizeof m); }
    h += skip;
    pos = 0;
  }
  std::memcpy(mem_.get() + pos, &r, sizeof r);
  std::memcpy(mem_.get() + pos + sizeof r, data, r.caplen);
  head_.store(h + need, std::memory_order_release);
  return true;
}

// ---- MAC table ---------------------------------------------------------------------------------

static constexpr int kProbe = 8;

Fdb::Fdb(uint32_t size) {
  uint32_t s = 16;
  while (s < size) s <<= 1;
  mask_ = s - 1;
  word_.reset(new std::atomic<uint64_t>[s]);
  seen_.reset(new std::atomic<uint32_t>[s]);
  for (uint32_t i = 0; i < s; i++) { word_[i].store(0); seen_[i].store(0); }
}

// Seconds since `seen`. Workers keep their own clock, read after each wait: another worker's
// entry may be a second "in the future", which is fresh, not 2^32 seconds old.
static inline bool aged(uint32_t now, uint32_t seen, uint32_t ageing) {
  return static_cast<int32_t>(now - seen) > static_cast<int32_t>(ageing);
}

static inline uint32_t macHash(uint64_t mac) {
  uint64_t x = mac * 0x9E3779B97F4A7C15ull;
  return static_cast<uint32_t>(x >> 32);
}

int Fdb::lookup(uint64_t mac, uint32_t now, uint32_t ageing) const {
  uint32_t h = macHash(mac);
  for (int i = 0; i < kProbe; i++) {
    uint32_t k = (h + i) & mask_;
    uint64_t w = word_[k].load(std::memory_order_relaxed);
    if ((w >> 16) == mac && w) {
      if (aged(now, seen_[k].load(std::memory_order_relaxed), ageing)) return -1;
      return static_cast<int>(w & 0xffff);
    }
  }
  return -1;
}

bool Fdb::refresh(uint64_t mac, int slot, uint8_t gen, uint32_t now) {
  uint64_t want = mac << 16 | uint64_t(slot) << 8 | gen;
  uint32_t h = macHash(mac);
  for (int i = 0; i < kProbe; i++) {
    uint32_t k = (h + i) & mask_;
    uint64_t w = word_[k].load(std::memory_order_relaxed);
    if (w == want) {
      if (seen_[k].load(std::memory_order_relaxed) != now) seen_[k].store(now, std::memory_order_relaxed);
      return true;
    }
    if (w && (w >> 16) == mac) return false;  // learned elsewhere: the caller decides
  }
  return false;
}

void Fdb::purge(int slot) {
  for (uint32_t i = 0; i <= mask_; i++) {
    uint64_t w = word_[i].load(std::memory_order_relaxed);
    // A worker may be replacing this very entry with another station: then it is not ours.
    if (w && int((w >> 8) & 0xff) == slot) word_[i].compare_exchange_strong(w, 0, std::memory_order_relaxed);
  }
}

void Fdb::learn(uint64_t mac, int slot, uint8_t gen, uint32_t now, uint32_t ageing) {
  uint64_t want = mac << 16 | uint64_t(slot) << 8 | gen;
  uint32_t h = macHash(mac);
  int victim = -1;
  uint32_t oldest = UINT32_MAX;
  for (int i = 0; i < kProbe; i++) {
    uint32_t k = (h + i) & mask_;
    uint64_t w = word_[k].load(std::memory_order_relaxed);
    if (w && (w >> 16) == mac) {
      // Write only on change: a station that keeps talking costs no cache-line traffic.
      if (w != want) word_[k].store(want, std::memory_order_relaxed);
      if (seen_[k].load(std::memory_order_relaxed) != now) seen_[k].store(now, std::memory_order_relaxed);
      return;
    }
    uint32_t s = w ? seen_[k].load(std::memory_order_relaxed) : 0;
    if (!w || aged(now, s, ageing)) { if (victim < 0 || oldest != 0) { victim = static_cast<int>(k); oldest = 0; } continue; }
    if (s < oldest) { oldest = s; victim = static_cast<int>(k); }
  }
  // The table is bounded: a full probe window evicts its least recently seen station.
  seen_[victim].store(now, std::memory_order_relaxed);
  word_[victim].store(want, std::memory_order_relaxed);
}

// ---- worker ------------------------------------------------------------------------------------

Worker::Worker(Engine* e, int i)
    // One byte more than the largest frame taken: a read that fills it was cut short.
    : eng(e), index(i), buf(new uint8_t[kBufLen + 1]), seg(new uint8_t[kSegScratch]), ring(e->opt.copyRingBytes) {
  cmds.reserve(kMaxPorts * 4);
  scratchCmds.reserve(kMaxPorts * 4);
  ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) throwErrno("forwarder: epoll_create1");
  evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (evfd < 0) { int err = errno; close(ep); throw SysError(err, "forwarder: eventfd"); }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kEventTag;
  // Without it no command would ever wake an idle worker, and post(wait) would block the JS
  // thread until traffic came (ENOSPC: max_user_watches used up).
  if (epoll_ctl(ep, EPOLL_CTL_ADD, evfd, &ev) != 0) {
    int err = errno;
    close(evfd);
    close(ep);
    throw SysError(err, "forwarder: epoll_ctl");
  }
}

Worker::~Worker() {
  if (ep >= 0) close(ep);
  if (evfd >= 0) close(evfd);
}

void Worker::wake() {
  uint64_t one = 1;
  ssize_t r = write(evfd, &one, sizeof one);
  (void)r;
}

void Worker::apply(const Cmd& c) {
  Port& p = eng->ports[c.slot];
  switch (c.type) {
    case Cmd::Activate: {
      if (active[c.slot]) break;
      for (int q = 0; q < p.nq; q++) {
        if (p.owner[q] != index) continue;
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = uint64_t(c.slot) << 8 | uint64_t(q);
        if (epoll_ctl(ep, EPOLL_CTL_ADD, p.fds[q], &ev) < 0) {
          p.downQueues.fetch_or(1u << q);
          p.lastErrno.store(errno);
        }
      }
      active[c.slot] = true;
      gen[c.slot] = p.gen;
      activeList[nActive++] = c.slot;
      break;
    }
    case Cmd::Deactivate: {
      if (!active[c.slot]) break;
      for (int q = 0; q < p.nq; q++)
        if (p.owner[q] == index) epoll_ctl(ep, EPOLL_CTL_DEL, p.fds[q], nullptr);
      active[c.slot] = false;
      for (int i = 0; i < nActive; i++)
        if (activeList[i] == c.slot) { activeList[i] = activeList[--nActive]; break; }
      break;
    }
    case Cmd::Monitor:
      break;  // the flag itself is atomic; the command only orders it
    case Cmd::Stop:
      stopping = true;
      break;
  }
}

void Worker::applyPending() {
  uint64_t upto;
  {
    std::lock_guard<std::mutex> lk(mu);
    scratchCmds.swap(cmds);
    hasCmd.store(false, std::memory_order_relaxed);
    upto = posted.load(std::memory_order_relaxed);
  }
  for (auto& c : scratchCmds) apply(c);
  scratchCmds.clear();
  {
    std::lock_guard<std::mutex> lk(eng->ackMu);
    applied.store(upto, std::memory_order_release);
  }
  eng->ackCv.notify_all();
}

void Worker::run() {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  epoll_event evs[64];
  uint64_t lastWork = monoNs();
  // Adaptive busy polling. busyPollUs is the most the thread may spin after a frame; how long
  // it really spins (`budget`) follows the traffic: a frame caught while spinning, or one that
  // woke the thread shortly after it gave up (a near miss), stretches the budget to twice that
  // gap; a spin that caught nothing halves it. So the thread spins while frames keep coming
  // (a TCP stream, the reply half of a ping) and goes back to blocking in epoll within a few
  // tens of microseconds when they stop, instead of holding a core for the whole busyPollUs
  // that a guest on a 2-core host needs.
  const uint64_t busyNs = uint64_t(eng->opt.busyPollUs) * 1000;
  const uint64_t floorNs = std::min<uint64_t>(busyNs, 25000);
  uint64_t budget = floorNs;
  bool spun = false;      // the last wait was a poll (timeout 0) that found nothing
  while (!stopping) {
    if (hasCmd.load(std::memory_order_acquire)) {
      applyPending();
      if (stopping) break;
    }
    int timeout = -1;
    uint64_t t = busyNs ? monoNs() : 0;
    if (busyNs && t - lastWork < budget) {
      timeout = 0;
    } else if (spun) {
      budget = std::max(floorNs, budget / 2);  // the spin ran out empty: back off
      spun = false;
    }
    int n = epoll_wait(ep, evs, 64, timeout);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    // The clock for learning and ageing, read after the wait (which may have lasted minutes).
    if (n > 0) nowSec = static_cast<uint32_t>(monoNs(CLOCK_MONOTONIC_COARSE) / 1000000000ull);
    // Spinning on a shared machine: let whatever else is runnable here (often the very guest
    // process we wait for) have the core between empty polls.
    if (n == 0 && timeout == 0) { spun = true; sched_yield(); }
    bool work = false;
    for (int i = 0; i < n; i++) {
      uint64_t d = evs[i].data.u64;
      if (d == kEventTag) {
        uint64_t v;
        ssize_t r = read(evfd, &v, sizeof v);
        (void)r;
        continue;
      }
      pollQueue(static_cast<int>(d >> 8), static_cast<int>(d & 0xff));
      work = true;
    }
    if (work) {
      uint64_t now = monoNs();
      if (busyNs) {
        uint64_t gap = now - lastWork;
        // Caught by the spin, or missed by less than four budgets: worth spinning for.
        if (timeout == 0 || gap < 4 * budget) budget = std::min(busyNs, std::max(budget, 2 * gap));
      }
      spun = false;
      lastWork = now;
    }
  }
  {
    // Whoever waits for an ack from this thread must not wait for a thread that is gone.
    std::lock_guard<std::mutex> lk(eng->ackMu);
    applied.store(UINT64_MAX, std::memory_order_release);
  }
  eng->ackCv.notify_all();
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  cpuNsDone.store(cpuNsDone.load() + uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec));
}

void Worker::disableQueue(int slot, int q, int err) {
  Port& p = eng->ports[slot];
  epoll_ctl(ep, EPOLL_CTL_DEL, p.fds[q], nullptr);
  p.downQueues.fetch_or(1u << q);
  p.lastErrno.store(err);
}

// Whether a read of 0 bytes was the end of the queue's file, or an empty frame (which any
// guest may send and which must not take the queue out of service).
bool Worker::zeroIsEof(const Port& p, int q) const {
  switch (p.zero[q]) {
    case ZeroRead::Frame: return false;
    case ZeroRead::Eof: return true;
    case ZeroRead::CheckHup: break;
  }
  // A seqpacket read returns 0 both for an empty message and once the peer has gone (or shut
  // down its sending side). Only the latter raises POLLRDHUP; messages queued before it still
  // count (SIOCINQ: bytes queued), so an empty message followed by others is not an end.
  pollfd pfd{p.fds[q], POLLRDHUP, 0};
  if (poll(&pfd, 1, 0) <= 0 || !(pfd.revents & (POLLRDHUP | POLLHUP))) return false;
  int queued = 0;
  return !(ioctl(p.fds[q], SIOCINQ, &queued) == 0 && queued > 0);
}

void Worker::pollQueue(int slot, int q) {
  if (slot < 0 || slot >= kMaxPorts || !active[slot]) return;  // a stale event for a port just removed
  Port& p = eng->ports[slot];
  if (q >= p.nq) return;
  int fd = p.fds[q];
  uint8_t* b = buf.get();
  // The turn ends after `batch` writes' worth of work, not `batch` frames: a frame that is
  // segmented or flooded costs every write it caused, so one queue cannot hold the others up.
  long budget = eng->opt.batch;
  while (budget > 0) {
    ssize_t n = read(fd, b, kBufLen + 1);
    budget--;
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EINTR) continue;
      bump(counters[slot].drops[kDropRxError]);
      disableQueue(slot, q, errno);
      return;
    }
    if (n == 0) {
      if (zeroIsEof(p, q)) {  // end of file (a socketpair's peer went away)
        bump(counters[slot].drops[kDropRxError]);
        disableQueue(slot, q, EPIPE);
        return;
      }
      bump(counters[slot].drops[kDropMalformed]);  // an empty frame
      continue;
    }
    // Cut short: a datagram larger than the buffer loses its tail, and a tap read returns the
    // frame's full length even when fewer bytes were copied. Either way it is not forwarded.
    if (static_cast<size_t>(n) > kBufLen) {
      bump(counters[slot].drops[kDropOversize]);
      continue;
    }
    writes = 0;
    handle(slot, b, static_cast<size_t>(n));
    if (writes > 1) budget -= writes - 1;
    if (!active[slot]) return;
  }
}

static inline uint64_t macAt(const uint8_t* p) {
  return uint64_t(p[0]) << 40 | uint64_t(p[1]) << 32 | uint64_t(p[2]) << 24 | uint64_t(p[3]) << 16 |
         uint64_t(p[4]) << 8 | p[5];
}

void Worker::copy(int slot, int dir, const uint8_t* frame, size_t len) {
  CopyRec r{};
  r.caplen = static_cast<uint32_t>(len < eng->opt.snaplen ? len : eng->opt.snaplen);
  r.origLen = static_cast<uint32_t>(len);
  r.port = static_cast<uint16_t>(slot);
  r.dir = static_cast<uint8_t>(dir);
  r.gen = gen[slot];
  r.tsNs = monoNs(CLOCK_REALTIME);
  if (!ring.push(r, frame)) bump(counters[slot].drops[kDropCopies]);
}

// Charges a new source MAC to its port's limit. True when the port may learn it: it is charged
// already, or a free or stale entry (the table no longer maps that MAC to this port) takes it.
bool Worker::charge(Port& p, int in, uint64_t mac) {
  uint32_t n = p.maxMacs;
  int free = -1;
  for (uint32_t i = 0; i < n; i++) {
    uint64_t m = p.macs[i].load(std::memory_order_relaxed);
    if (m == mac) return true;
    if (!m && free < 0) free = static_cast<int>(i);
  }
  uint8_t g = static_cast<uint8_t>(gen[in]);
  for (int attempt = 0; attempt < 2; attempt++) {
    if (free < 0) {
      // Full: the slow path of a port at its limit (a guest cycling through source MACs).
      // Bounded in time too: one fruitless scan per second (entries age by the second).
      uint32_t now = static_cast<uint32_t>(nowSec) + 1;  // +1: 0 means "never"
      if (p.fullSec.load(std::memory_order_relaxed) == now) return false;
      for (uint32_t i = 0; i < n && free < 0; i++) {
        uint64_t m = p.macs[i].load(std::memory_order_relaxed);
        int e = m ? eng->fdb_.lookup(m, nowSec, eng->opt.ageingSec) : -1;
        if (!m || e < 0 || (e >> 8) != in || uint8_t(e & 0xff) != g) free = static_cast<int>(i);
      }
      if (free < 0) {
        p.fullSec.store(now, std::memory_order_relaxed);
        return false;
      }
    }
    uint64_t old = p.macs[free].load(std::memory_order_relaxed);
    if (p.macs[free].compare_exchange_strong(old, mac, std::memory_order_relaxed)) return true;
    free = -1;  // another worker took it: look again once
  }
  return false;
}

void Worker::handle(int in, uint8_t* b, size_t n) {
  Port& p = eng->ports[in];
  size_t hl = static_cast<size_t>(p.hdrLen);
  Counters& c = counters[in];
  if (n < hl + 14) { bump(c.drops[kDropMalformed]); return; }
  const uint8_t* frame = b + hl;
  size_t flen = n - hl;
  if (hl) {
    // The header is the guest's word: checked once here, so no port is handed (or cut up for)
    // a frame it describes wrongly.
    VnetHdr h;
    std::memcpy(&h, b, sizeof h);
    Verdict v = checkVnetHdr(frame, flen, h);
    if (v != Verdict::Ok) { bump(c.drops[v == Verdict::GsoLimit ? kDropGsoLimit : kDropMalformed]); return; }
  }
  const uint8_t* dst = frame;
  const uint8_t* src = frame + 6;
  uint64_t smac = macAt(src);
  if (p.nAllowed) {
    bool ok = false;
    for (int i = 0; i < p.nAllowed && !ok; i++) ok = p.allowed[i] == smac;
    if (!ok) { bump(c.drops[kDropSrcMac]); return; }
  }
  if (eng->opt.switchMode) {
    // As the kernel bridge: a multicast or all-zero source is no station (and is not learned).
    if ((src[0] & 1) || !smac) { bump(c.drops[kDropSrcMac]); return; }
    uint8_t g = static_cast<uint8_t>(gen[in]);
    if (!eng->fdb_.refresh(smac, in, g, nowSec)) {
      // A new (or moved, or aged) station: within the port's limit, so that one guest cannot
      // fill the table and evict everyone else's stations.
      if (p.maxMacs && !charge(p, in, smac)) { bump(c.drops[kDropMacLimit]); return; }
      eng->fdb_.learn(smac, in, g, nowSec, eng->opt.ageingSec);
    }
  }
  bump(c.rxPackets);
  bump(c.rxBytes, flen);
  if (p.monitor.load(std::memory_order_relaxed)) copy(in, 0, frame, flen);

  if (!eng->opt.switchMode) {
    for (int i = 0; i < nActive; i++)
      if (activeList[i] != in) { emit(in, activeList[i], b, n); return; }
    bump(c.drops[kDropNoRoute]);
    return;
  }
  if (!(dst[0] & 1)) {
    int e = eng->fdb_.lookup(macAt(dst), nowSec, eng->opt.ageingSec);
    if (e >= 0) {
      int out = e >> 8;
      if (out < kMaxPorts && active[out] && uint8_t(gen[out]) == uint8_t(e & 0xff)) {
        if (out != in) emit(in, out, b, n);  // never reflected to where it came from
        return;
      }
    }
  }
  // Broadcast, multicast and unknown unicast: every other port.
  bool any = false;
  for (int i = 0; i < nActive; i++)
    if (activeList[i] != in) { emit(in, activeList[i], b, n); any = true; }
  if (!any) bump(c.drops[kDropNoRoute]);
}

void Worker::writeOne(int out, int fd, const iovec* iov, int iovcnt, size_t frameLen, const uint8_t* frame) {
  Counters& c = counters[out];
  writes++;
  for (;;) {
    ssize_t w = iovcnt == 1 ? write(fd, iov[0].iov_base, iov[0].iov_len) : writev(fd, iov, iovcnt);
    if (w >= 0) break;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) bump(c.drops[kDropTxFull]);
    else { bump(c.drops[kDropTxError]); eng->ports[out].lastErrno.store(errno, std::memory_order_relaxed); }
    return;
  }
  bump(c.txPackets);
  bump(c.txBytes, frameLen);
  if (eng->ports[out].monitor.load(std::memory_order_relaxed)) copy(out, 1, frame, frameLen);
}

void Worker::emit(int in, int out, uint8_t* b, size_t n) {
  Port& ip = eng->ports[in];
  Port& op = eng->ports[out];
  int fd = op.fds[op.nq == 1 ? 0 : index % op.nq];
  size_t ih = static_cast<size_t>(ip.hdrLen), oh = static_cast<size_t>(op.hdrLen);
  uint8_t* frame = b + ih;
  size_t flen = n - ih;
  iovec iov[2];
  if (ih == oh) {
    iov[0] = {b, n};
    writeOne(out, fd, iov, 1, flen, frame);
    return;
  }
  if (oh == 0) {
    // Towards a port without vnet header: the frame must be complete on the wire.
    VnetHdr h;
    std::memcpy(&h, b, sizeof h);
    if (h.gsoType != kGsoNone) {
      int segs = -1;
      if (eng->opt.segment) {
        segs = segment(frame, flen, h, seg.get(), kSegScratch, [&](const uint8_t* s, size_t len) {
          iovec v{const_cast<uint8_t*>(s), len};
          writeOne(out, fd, &v, 1, len, s);
        });
      }
      // Limits and lengths were checked on the way in (checkVnetHdr): what is left is a frame
      // this port cannot take (VLAN tag, UFO, extension headers, or gsoToPlain 'drop').
      if (segs < 0) bump(counters[out].drops[segs == -3 ? kDropGsoLimit : kDropGso]);
      return;
    }
    if (h.flags & kHdrNeedsCsum) {
      if (!completeChecksum(frame, flen, h)) { bump(counters[out].drops[kDropMalformed]); return; }
      // Done in place: mark the shared header so later vnet-header ports see a complete frame.
      h.flags = kHdrDataValid;
      std::memcpy(b, &h, sizeof h);
    }
    iov[0] = {frame, flen};
    writeOne(out, fd, iov, 1, flen, frame);
    return;
  }
  // Adding a header (zeros: nothing to offload) or resizing one (10 <-> 12 bytes).
  uint8_t hdr[kMaxHdrLen] = {};
  if (ih) std::memcpy(hdr, b, ih < oh ? ih : oh);
  iov[0] = {hdr, oh};
  iov[1] = {frame, flen};
  writeOne(out, fd, iov, 2, flen, frame);
}

// ---- engine (control side) ----------------------------------------------------------------------

Engine::Engine(const Options& o) : opt(o), fdb_(o.fdbSize) {
  if (opt.threads < 1) opt.threads = 1;
  if (opt.threads > kMaxThreads) opt.threads = kMaxThreads;
  for (int i = 0; i < opt.threads; i++) workers_.emplace_back(new Worker(this, i));
}

Engine::~Engine() { shutdown(); }

void Engine::post(const Cmd& c, bool wait) {
  if (!running_) {
    for (auto& w : workers_) w->apply(c);
    return;
  }
  std::vector<std::pair<Worker*, uint64_t>> seqs;
  for (auto& w : workers_) {
    uint64_t s;
    {
      std::lock_guard<std::mutex> lk(w->mu);
      w->cmds.push_back(c);
      s = w->posted.load(std::memory_order_relaxed) + 1;
      w->posted.store(s, std::memory_order_relaxed);
      w->hasCmd.store(true, std::memory_order_release);
    }
    w->wake();
    seqs.emplace_back(w.get(), s);
  }
  if (!wait) return;
  // A worker applies commands between batches, so this waits at most one batch per worker.
  std::unique_lock<std::mutex> lk(ackMu);
  for (auto& [w, s] : seqs) {
    Worker* wp = w;
    uint64_t want = s;
    ackCv.wait(lk, [wp, want] { return wp->applied.load(std::memory_order_acquire) >= want; });
  }
}

// What a read of 0 bytes means on this fd; refuses fds the forwarder cannot frame.
static ZeroRead zeroReadOf(int fd) {
  struct stat st;
  if (fstat(fd, &st) < 0) throwErrno("forwarder.add: fstat fd " + std::to_string(fd));
  if (S_ISCHR(st.st_mode)) return ZeroRead::Frame;  // tap/macvtap: a read never means end of file
  if (!S_ISSOCK(st.st_mode)) return ZeroRead::Eof;
  int type = 0;
  socklen_t l = sizeof type;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) < 0) throwErrno("forwarder.add: SO_TYPE of fd " + std::to_string(fd));
  if (type == SOCK_STREAM) throw SysError(EPROTOTYPE, "forwarder.add: fd " + std::to_string(fd) + " is a stream socket (no frame boundaries)");
  return type == SOCK_SEQPACKET ? ZeroRead::CheckHup : ZeroRead::Frame;  // datagrams have no end of file
}

int Engine::addPort(const int* fds, int nfds, const PortSpec& spec, const std::function<void(const int*, int)>& prepare) {
  int hdrLen = spec.hdrLen;
  int slot = -1;
  for (int i = 0; i < kMaxPorts; i++)
    if (!ports[i].used) { slot = i; break; }
  if (slot < 0) throw SysError(ENOSPC, "forwarder.add: too many ports");
  if (nfds < 1 || nfds > kMaxQueues) throw SysError(EINVAL, "forwarder.add: queue count");
  // Headers are built in kMaxHdrLen-byte buffers: a longer one would be read past their end.
  if (hdrLen < 0 || hdrLen > kMaxHdrLen) throw SysError(EINVAL, "forwarder.add: vnet header size");
  if (spec.maxMacs > kMaxPortMacs) throw SysError(EINVAL, "forwarder.add: maxMacs");
  if (spec.allowedMacs.size() > size_t(kMaxAllowedMacs)) throw SysError(EINVAL, "forwarder.add: allowedMacs");
  Port& p = ports[slot];
  ZeroRead zero[kMaxQueues];
  for (int q = 0; q < nfds; q++) zero[q] = zeroReadOf(fds[q]);
  int own[kMaxQueues];
  for (int q = 0; q < nfds; q++) {
    // Our own reference to the open file: the caller may close its number without pulling the
    // queue out from under a worker (or letting the number be reused for something else).
    own[q] = fcntl(fds[q], F_DUPFD_CLOEXEC, 3);
    if (own[q] < 0) {
      int err = errno;
      for (int k = 0; k < q; k++) close(own[k]);
      throw SysError(err, "forwarder.add: fd " + std::to_string(fds[q]));
    }
    int fl = fcntl(own[q], F_GETFL);
    if (fl >= 0 && !(fl & O_NONBLOCK)) fcntl(own[q], F_SETFL, fl | O_NONBLOCK);
  }
  if (prepare) {
    try {
      prepare(own, nfds);
    } catch (...) {
      for (int q = 0; q < nfds; q++) close(own[q]);
      throw;
    }
  }
  p.used = true;
  p.hdrLen = hdrLen;
  p.nq = nfds;
  for (int q = 0; q < nfds; q++) {
    p.fds[q] = own[q];
    p.owner[q] = rr_++ % opt.threads;
    p.zero[q] = zero[q];
  }
  p.maxMacs = spec.maxMacs;
  p.macs.reset(spec.maxMacs ? new std::atomic<uint64_t>[spec.maxMacs] : nullptr);
  for (uint32_t i = 0; i < spec.maxMacs; i++) p.macs[i].store(0, std::memory_order_relaxed);
  p.fullSec.store(0, std::memory_order_relaxed);
  p.nAllowed = static_cast<int>(spec.allowedMacs.size());
  for (int i = 0; i < p.nAllowed; i++) p.allowed[i] = spec.allowedMacs[i];
  p.gen++;
  p.monitor.store(false);
  p.downQueues.store(0);
  p.lastErrno.store(0);
  for (auto& w : workers_) w->counters[slot].reset();
  control[slot].reset();
  post({Cmd::Activate, slot}, true);
  return slot;
}

void Engine::removePort(int slot) {
  if (slot < 0 || slot >= kMaxPorts || !ports[slot].used) return;
  post({Cmd::Deactivate, slot}, true);
  Port& p = ports[slot];
  for (int q = 0; q < p.nq; q++) close(p.fds[q]);
  p.nq = 0;
  // No worker has the port any more, so none learns for it: its stations go now, and the next
  // port in this slot starts with none (the table's 8-bit generation alone would wrap).
  fdb_.purge(slot);
  p.used = false;
  p.monitor.store(false);
  p.gen++;
}

void Engine::setMonitor(int slot, bool on) {
  if (slot < 0 || slot >= kMaxPorts || !ports[slot].used) return;
  ports[slot].monitor.store(on, std::memory_order_relaxed);
}

void Engine::start() {
  if (running_) return;
  try {
    for (auto& w : workers_) {
      w->stopping = false;
      w->th = std::thread([wp = w.get()] { wp->run(); });
    }
  } catch (...) {
    // A thread that could not be made (EAGAIN: a pids limit): the ones already running stop
    // and are joined, so no worker runs while the engine says it is stopped (and no joinable
    // thread is ever destroyed, which would terminate the process).
    running_ = true;
    stop();
    throw;
  }
  running_ = true;
}

void Engine::stop() {
  if (!running_) return;
  post({Cmd::Stop, 0}, false);
  for (auto& w : workers_)
    if (w->th.joinable()) w->th.join();
  running_ = false;
  for (auto& w : workers_) {
    std::lock_guard<std::mutex> lk(w->mu);
    w->cmds.clear();
    w->hasCmd.store(false);
    w->stopping = false;
    w->applied.store(w->posted.load());
  }
}

void Engine::shutdown() {
  stop();
  for (int i = 0; i < kMaxPorts; i++)
    if (ports[i].used) removePort(i);
}

int Engine::send(int slot, const uint8_t* frame, size_t len) {
  if (slot < 0 || slot >= kMaxPorts || !ports[slot].used) return EBADF;
  Port& p = ports[slot];
  uint8_t hdr[kMaxHdrLen] = {};
  iovec iov[2] = {{hdr, size_t(p.hdrLen)}, {const_cast<uint8_t*>(frame), len}};
  for (;;) {
    ssize_t w = p.hdrLen ? writev(p.fds[0], iov, 2) : write(p.fds[0], frame, len);
    if (w >= 0) break;
    if (errno == EINTR) continue;
    int err = errno;
    bump(control[slot].drops[err == EAGAIN || err == ENOBUFS ? kDropTxFull : kDropTxError]);
    return err;
  }
  bump(control[slot].txPackets);
  bump(control[slot].txBytes, len);
  return 0;
}

void Engine::stats(int slot, uint64_t out[4 + kDropCount]) const {
  for (int i = 0; i < 4 + kDropCount; i++) out[i] = 0;
  auto add = [&](const Counters& c) {
    out[0] += c.rxPackets.load(std::memory_order_relaxed);
    out[1] += c.rxBytes.load(std::memory_order_relaxed);
    out[2] += c.txPackets.load(std::memory_order_relaxed);
    out[3] += c.txBytes.load(std::memory_order_relaxed);
    for (int d = 0; d < kDropCount; d++) out[4 + d] += c.drops[d].load(std::memory_order_relaxed);
  };
  for (auto& w : workers_) add(w->counters[slot]);
  add(control[slot]);
}

std::vector<uint64_t> Engine::cpuNs() const {
  std::vector<uint64_t> r;
  for (auto& w : workers_) {
    uint64_t ns = w->cpuNsDone.load();
    if (running_ && w->th.joinable()) {
      clockid_t cid;
      timespec ts;
      if (pthread_getcpuclockid(const_cast<std::thread&>(w->th).native_handle(), &cid) == 0 && clock_gettime(cid, &ts) == 0)
        ns += uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
    }
    r.push_back(ns);
  }
  return r;
}

}  // namespace vnl::fwd
