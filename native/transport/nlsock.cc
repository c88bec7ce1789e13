#include "transport/nlsock.h"
#include "transport/trace.h"

#include <linux/netlink.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <unordered_map>
#include <utility>

namespace vnl {

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#ifndef NETLINK_CAP_ACK
#define NETLINK_CAP_ACK 10
#endif

namespace {

int64_t nowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace

int NlSocket::openBound(int protocol, int typeFlags, uint32_t& portid, const char* op) {
  const std::string pre = op ? std::string(op) + ": " : std::string();
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | typeFlags, protocol);
  if (fd < 0) throwErrno(pre + "socket(AF_NETLINK)");
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) {
    int e = errno; close(fd); throw SysError(e, op ? pre + "bind" : std::string("bind(AF_NETLINK)"));
  }
  socklen_t sl = sizeof sa;
  getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &sl);
  portid = sa.nl_pid;
  return fd;
}

NlSocket::NlSocket(int fd, int protocol, uint32_t portid, size_t rxSize)
    : fd_(fd), protocol_(protocol), portid_(portid), rx_(rxSize) {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  seq_ = static_cast<uint32_t>(ts.tv_nsec ^ ts.tv_sec);
}

NlSocket::NlSocket(int protocol, int rcvbuf) : NlSocket(-1, protocol, 0, 128 * 1024) {
  fd_ = openBound(protocol, 0, portid_, nullptr);
  int one = 1;
  setsockopt(fd_, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  // Errors echo only the header of our request, not the whole message.
  setsockopt(fd_, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  if (setsockopt(fd_, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0)
    setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  int sndbuf = 1 << 20;
  if (setsockopt(fd_, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf) < 0)
    setsockopt(fd_, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
}

NlSocket::NlSocket(NlSocket&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)), protocol_(o.protocol_), portid_(o.portid_), seq_(o.seq_),
      nonblocking_(o.nonblocking_), rx_(std::move(o.rx_)) {}

NlSocket::~NlSocket() {
  if (fd_ >= 0) close(fd_);
}

// --- Subscription mode ---

NlSocket NlSocket::subscribed(int protocol, const std::vector<unsigned>& groups, int rcvbuf, const char* op) {
  uint32_t portid = 0;
  int fd = openBound(protocol, SOCK_NONBLOCK, portid, op);  // before `portid` is read
  // Owned by `s` from here on: every throw below closes it.
  NlSocket s(fd, protocol, portid, 256 * 1024);
  s.nonblocking_ = true;
  if (setsockopt(s.fd_, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0 &&
      setsockopt(s.fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) < 0)
    throwErrno(std::string(op) + ": setsockopt(SO_RCVBUF)");
  for (unsigned g : groups)
    if (setsockopt(s.fd_, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &g, sizeof g) < 0)
      throwErrno(std::string(op) + ": NETLINK_ADD_MEMBERSHIP");
  return s;
}

NlSocket NlSocket::adopt(int fd, int protocol, uint32_t portid) {
  NlSocket s(fd, protocol, portid, 256 * 1024);
  s.nonblocking_ = true;
  return s;
}

int NlSocket::release() { return std::exchange(fd_, -1); }

void NlSocket::closeNow() noexcept {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

int NlSocket::rcvbuf() const {
  int actual = 0;
  socklen_t al = sizeof actual;
  getsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &actual, &al);
  return actual;
}

bool NlSocket::waitEvents(int wakeFd, const char* op) {
  pollfd p[2] = {{fd_, POLLIN, 0}, {wakeFd, POLLIN, 0}};
  for (;;) {
    int r = poll(p, 2, -1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) throwErrno(std::string(op) + ": poll");
    if (p[1].revents) return false;
    if (p[0].revents) return true;
  }
}

bool NlSocket::drainEvents(const std::function<void(const uint8_t*, size_t)>& onDatagram, const char* op, int max) {
  // Everything queued at once: one wake-up of the consumer per burst.
  for (int i = 0; i < max; i++) {
    ssize_t n = nlRecv(fd_, rx_, MSG_DONTWAIT, 2);
    if (n == -EAGAIN || n == -EWOULDBLOCK) return false;
    if (n == -ENOBUFS || n == -EMSGSIZE) return true;  // a lost datagram is a gap: resync
    if (n < 0) throw SysError(static_cast<int>(-n), std::string(op) + ": recvmsg");
    onDatagram(rx_.data(), static_cast<size_t>(n));
  }
  return false;
}

bool NlSocket::dumpSubscribed(MsgBuilder& m, const char* op, int wakeFd, const OnMsg& onReply, const OnMsg& onEvent,
                              bool& lost) {
  // Ours with another seq: a stale reply, dropped; anything else is an event.
  const OnMsg other = [&](const nlmsghdr* h) { if (h->nlmsg_pid != portid_) onEvent(h); };
  for (int attempt = 0;; attempt++) {
    Parts parts;
    bool intr = false;
    // An overrun lost events (`lost`: the caller re-dumps later), not our dump replies.
    if (!dumpRound(m, op, kExchangeTimeoutMs, wakeFd, parts, intr, lost, other)) return false;
    if (intr && attempt < 10) continue;
    for (auto& raw : parts) onReply(reinterpret_cast<const nlmsghdr*>(raw.data()));
    return true;
  }
}

void NlSocket::send(const uint8_t* p, size_t len, const char* op) {
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  for (;;) {
    ssize_t n = sendto(fd_, p, len, 0, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    if (n >= 0) { traceDatagram(fd_, p, len, true); return; }
    if (errno == EINTR) continue;
    // A subscribed socket is non-blocking (its reader polls): wait for room, briefly.
    if (errno == EAGAIN && nonblocking_) { usleep(1000); continue; }
    throwErrno(std::string(op) + " (sendto)");
  }
}

ssize_t nlRecv(int fd, std::vector<uint8_t>& buf, int flags, size_t grow) {
  for (;;) {
    sockaddr_nl sa{};
    iovec iov{buf.data(), buf.size()};
    msghdr mh{};
    mh.msg_name = &sa;
    mh.msg_namelen = sizeof sa;
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    // MSG_TRUNC: netlink returns the datagram's real length, so one read both fills the
    // buffer and says whether it was big enough (no MSG_PEEK probe per datagram).
    ssize_t n = recvmsg(fd, &mh, flags | MSG_TRUNC);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (static_cast<size_t>(n) > buf.size() || (mh.msg_flags & MSG_TRUNC)) {
      // The datagram is gone; the next one of that size fits.
      size_t want = std::max(buf.size() * grow, (static_cast<size_t>(n) + 4095) & ~size_t(4095));
      buf.resize(std::min<size_t>(want, 64u << 20));
      if (sa.nl_pid != 0) continue;  // not from the kernel: nothing of ours was lost
      return -EMSGSIZE;
    }
    if (sa.nl_pid != 0) continue;  // only the kernel talks to us
    traceDatagram(fd, buf.data(), static_cast<size_t>(n), false);
    return n;
  }
}

bool runExchange(int fd, uint32_t portid, std::vector<uint8_t>& rx, const Exchange& x) {
  int64_t deadline = nowMs() + x.timeoutMs;
  bool complete = false;
  while (!complete) {
    // Non-blocking reads, with the waiting done in poll: the deadline and the wake fd bound it.
    ssize_t n = nlRecv(fd, rx, MSG_DONTWAIT);
    if (n == -EAGAIN || n == -EWOULDBLOCK) {
      if (x.onIdle && x.onIdle()) return true;
      int64_t left = deadline - nowMs();
      if (left <= 0) {
        if (x.onTimeout && x.onTimeout()) return true;
        throw SysError(ETIMEDOUT, x.op, "no reply from the kernel within " + std::to_string(x.timeoutMs) + " ms");
      }
      pollfd p[2] = {{fd, POLLIN, 0}, {x.wakeFd, POLLIN, 0}};
      int r = poll(p, x.wakeFd >= 0 ? 2 : 1, static_cast<int>(std::min<int64_t>(left, INT_MAX)));
      if (r < 0 && errno != EINTR) throwErrno(std::string(x.op) + " (poll)");
      if (r > 0 && x.wakeFd >= 0 && p[1].revents) return false;
      continue;
    }
    if (n == -ENOBUFS || n == -EMSGSIZE) {
      // A request socket joins no groups: an overrun lost replies of ours, never waited for.
      if (x.onLoss && x.onLoss()) continue;
      throw SysError(ENOBUFS, x.op, "the reply was lost (receive buffer overrun); whether the request took effect is unknown");
    }
    if (n < 0) throw SysError(static_cast<int>(-n), std::string(x.op) + " (recvmsg)");
    bool ours = false;
    MsgIter it(rx.data(), static_cast<size_t>(n));
    while (const nlmsghdr* h = it.next()) {
      if (h->nlmsg_pid != portid || !x.owns(h->nlmsg_seq)) {
        // Not a reply to this exchange: a stale reply to an earlier one, or an event.
        if (x.onOther) x.onOther(h);
        continue;
      }
      ours = true;
      if (h->nlmsg_type == NLMSG_ERROR || h->nlmsg_type == NLMSG_DONE) {
        AckResult r = NlSocket::parseAck(h);
        if (x.onMsg(h, &r)) complete = true;
      } else if (x.onMsg(h, nullptr)) {
        complete = true;
      }
    }
    if (ours) deadline = nowMs() + x.timeoutMs;  // the kernel is answering: wait on
  }
  return true;
}

AckResult NlSocket::parseAck(const nlmsghdr* h) {
  AckResult r;
  r.seq = h->nlmsg_seq;
  if (h->nlmsg_len < NLMSG_HDRLEN + sizeof(int)) { r.err = EBADMSG; return r; }
  int error;
  memcpy(&error, NLMSG_DATA(h), sizeof error);
  // Negating INT_MIN is undefined; anything outside -4095..0 is not an errno the kernel sends.
  r.err = (error <= 0 && error >= -4095) ? -error : EPROTO;
  if (h->nlmsg_flags & NLM_F_ACK_TLVS) {
    // ERROR: the int, the request it answers (its header alone when capped), then the TLVs.
    // DONE: the int, then the TLVs (nothing is echoed).
    size_t off = NLMSG_HDRLEN + sizeof(int);
    if (h->nlmsg_type == NLMSG_ERROR) {
      if (h->nlmsg_flags & NLM_F_CAPPED) {
        off += sizeof(nlmsghdr);
      } else if (h->nlmsg_len >= NLMSG_HDRLEN + sizeof(nlmsgerr)) {
        const auto* e = reinterpret_cast<const nlmsgerr*>(NLMSG_DATA(h));
        off += NLMSG_ALIGN(e->msg.nlmsg_len);
      }
    }
    if (off < h->nlmsg_len) {
      AttrIter it(reinterpret_cast<const uint8_t*>(h) + off, h->nlmsg_len - off);
      Attr a;
      while (it.next(a))
        if (a.type == NLMSGERR_ATTR_MSG) r.extack = a.str();
    }
  }
  return r;
}

void NlSocket::request(MsgBuilder& m, const char* op, const OnMsg& onMsg, int timeoutMs) {
  m.addFlags(NLM_F_REQUEST | NLM_F_ACK);
  // A read-only request (an rtnetlink GET) whose reply was too big for the buffer is asked
  // again once: the buffer has grown to the lost datagram's size meanwhile.
  const bool readOnly = protocol_ == NETLINK_ROUTE && m.size() >= sizeof(nlmsghdr) &&
                        (reinterpret_cast<const nlmsghdr*>(m.data())->nlmsg_type & 3) == 2 &&
                        !(m.flags() & (NLM_F_CREATE | NLM_F_EXCL | NLM_F_REPLACE | NLM_F_APPEND));
  for (int attempt = 0;; attempt++) {
    uint32_t seq = nextSeq();
    m.setSeq(seq);
    send(m.data(), m.size(), op);
    bool lost = false;
    Exchange x;
    x.op = op;
    x.timeoutMs = timeoutMs;
    x.owns = [seq](uint32_t s) { return s == seq; };
    x.onMsg = [&](const nlmsghdr* h, const AckResult* st) {
      if (!st) {
        if (onMsg && !lost) onMsg(h);
        return false;
      }
      if (st->err) throw SysError(st->err, op, st->extack);
      return true;
    };
    // A data reply (GET, NLM_F_ECHO) larger than the buffer: read on to the ack, then decide.
    x.onLoss = [&] { lost = true; return true; };
    exchange(x);
    if (!lost) return;
    if (!readOnly || attempt > 0)
      throw SysError(EMSGSIZE, op, "the kernel's reply did not fit the receive buffer and was lost" +
                                       std::string(readOnly ? "" : "; the request itself succeeded"));
  }
}

bool NlSocket::dumpRound(MsgBuilder& m, const char* op, int timeoutMs, int wakeFd, Parts& parts, bool& interrupted,
                         bool& lossSeen, const OnMsg& onOther) {
  uint32_t seq = nextSeq();
  m.setSeq(seq);
  m.addFlags(NLM_F_REQUEST | NLM_F_DUMP);
  send(m.data(), m.size(), op);
  Exchange x;
  x.op = op;
  x.timeoutMs = timeoutMs;
  x.owns = [seq](uint32_t s) { return s == seq; };
  x.onMsg = [&](const nlmsghdr* h, const AckResult* st) {
    if (h->nlmsg_flags & NLM_F_DUMP_INTR) interrupted = true;
    if (st) {
      if (st->err) throw SysError(st->err, op, st->extack);
      return true;
    }
    const uint8_t* p = reinterpret_cast<const uint8_t*>(h);
    parts.emplace_back(p, p + h->nlmsg_len);
    return false;
  };
  x.onLoss = [&] { lossSeen = true; return true; };
  if (onOther) x.onOther = onOther;
  x.wakeFd = wakeFd;
  return runExchange(fd_, portid_, rx_, x);
}

void NlSocket::dump(MsgBuilder& m, const char* op, const OnMsg& onMsg, int timeoutMs) {
  for (int attempt = 0;; attempt++) {
    Parts parts;
    bool interrupted = false, lost = false;
    dumpRound(m, op, timeoutMs, -1, parts, interrupted, lost, {});
    // A datagram lost to an overrun (or truncated: the buffer has grown meanwhile) leaves a
    // hole: the broken dump was read to its end; ask again.
    if (interrupted || lost) {
      if (attempt < 10) continue;
      throw SysError(EINTR, std::string(op) + " (dump kept being interrupted)");
    }
    for (auto& p : parts) onMsg(reinterpret_cast<const nlmsghdr*>(p.data()));
    return;
  }
}

void NlSocket::growRcvbuf(size_t bytes) {
  int want = static_cast<int>(std::min<size_t>(bytes, 64 << 20));
  int have = 0;
  socklen_t sl = sizeof have;
  if (getsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &have, &sl) == 0 && have >= want) return;
  if (setsockopt(fd_, SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof want) < 0)
    setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &want, sizeof want);
}

std::vector<AckResult> NlSocket::requestMany(std::vector<MsgBuilder>& msgs,
                                             const std::function<void(size_t, const nlmsghdr*)>& onMsg,
                                             size_t window) {
  if (window == 0) window = 1;
  std::vector<AckResult> out(msgs.size());
  std::unordered_map<uint32_t, size_t> bySeq;
  const size_t kChunk = 64 * 1024;  // stay well inside the socket buffers
  size_t i = 0;
  std::vector<uint8_t> buf;
  // The replies of a whole window must fit in the receive buffer: an echoed link costs a few
  // KiB of skb, an ack under one. Grown like the batch path grows its send buffer.
  {
    bool echo = false;
    for (auto& m : msgs) echo = echo || (m.flags() & NLM_F_ECHO);
    growRcvbuf(std::min(window, msgs.size()) * (echo ? 8192 : 1024) + (64 << 10));
  }
  bool lost = false;
  Exchange x;
  x.op = "requestMany";
  x.owns = [&](uint32_t s) { return bySeq.count(s) != 0; };
  x.onMsg = [&](const nlmsghdr* h, const AckResult* st) {
    auto f = bySeq.find(h->nlmsg_seq);
    if (!st || h->nlmsg_type != NLMSG_ERROR) {
      if (!st && onMsg) onMsg(f->second, h);
      return false;
    }
    out[f->second] = *st;
    bySeq.erase(f);
    return true;  // after this datagram, refill the window
  };
  x.onLoss = [&] { lost = true; return true; };
  x.onIdle = [&] {
    if (!lost) return false;
    // rtnetlink answers inside sendmsg, so every reply to what was sent is queued by now:
    // the acks still missing were dropped with the overrun. Their outcome is unknown.
    for (auto& [seq, k] : bySeq) {
      out[k].err = ENOBUFS;
      out[k].seq = seq;
      out[k].extack = "the reply was lost (receive buffer overrun); whether the request took effect is unknown";
    }
    bySeq.clear();
    lost = false;
    return true;
  };
  // Every request gets a result: those the kernel never answered are ETIMEDOUT, not a throw
  // that would lose the results already gathered.
  x.onTimeout = [&] {
    for (auto& [seq, k] : bySeq) {
      out[k].err = ETIMEDOUT;
      out[k].seq = seq;
      out[k].extack = "no reply from the kernel within " + std::to_string(x.timeoutMs) + " ms; whether the request took effect is unknown";
    }
    bySeq.clear();
    return true;
  };
  while (i < msgs.size() || !bySeq.empty()) {
    // Keep a bounded window in flight so acks never overflow our receive buffer. The window is
    // refilled once half of it is answered, not after every ack: rtnetlink does its work inside
    // our sendmsg, so one sendmsg of many requests costs the kernel the same and us far fewer
    // syscalls than one per request.
    if (i < msgs.size() && (bySeq.empty() || bySeq.size() <= window / 2)) {
      buf.clear();
      while (i < msgs.size() && bySeq.size() < window && (buf.empty() || buf.size() + msgs[i].size() <= kChunk)) {
        uint32_t seq = nextSeq();
        msgs[i].setSeq(seq);
        msgs[i].addFlags(NLM_F_REQUEST | NLM_F_ACK);
        bySeq[seq] = i;
        buf.insert(buf.end(), msgs[i].bytes().begin(), msgs[i].bytes().end());
        i++;
      }
      send(buf.data(), buf.size(), "requestMany");
    }
    if (!bySeq.empty()) exchange(x);
  }
  return out;
}

AckResult NlSocket::sendRawAndAck(const std::vector<uint8_t>& bytes, const std::vector<uint32_t>& ackSeqs,
                                  const OnMsg& onMsg) {
  // Position of every message of the batch by seq, so an error addressed to any of them
  // (BATCH_BEGIN included: EOPNOTSUPP, ERESTART, ENOMEM) is seen, and ordered.
  std::unordered_map<uint32_t, size_t> pos;
  {
    MsgIter it(bytes.data(), bytes.size());
    size_t i = 0;
    while (const nlmsghdr* h = it.next()) pos.emplace(h->nlmsg_seq, i++);
  }
  std::unordered_map<uint32_t, bool> acked;
  for (uint32_t s : ackSeqs) acked[s] = false;
  // A batch is one datagram: the send buffer must hold it whole (as nft grows it too).
  int sndbuf = 0;
  socklen_t sl = sizeof sndbuf;
  if (getsockopt(fd_, SOL_SOCKET, SO_SNDBUF, &sndbuf, &sl) == 0 && bytes.size() + 4096 > static_cast<size_t>(sndbuf)) {
    int want = static_cast<int>(std::min<size_t>(bytes.size() + 4096, INT_MAX / 2));
    if (setsockopt(fd_, SOL_SOCKET, SO_SNDBUFFORCE, &want, sizeof want) < 0)
      setsockopt(fd_, SOL_SOCKET, SO_SNDBUF, &want, sizeof want);
  }
  send(bytes.data(), bytes.size(), "batch");

  AckResult first;
  size_t firstPos = SIZE_MAX;
  bool lost = false;
  size_t missing = acked.size();
  Exchange x;
  x.op = "batch";
  // Everything is normally queued already; the short wait only guards against a kernel that
  // would answer later, and bounds it when it says nothing (a batch it found malformed).
  x.timeoutMs = 1000;
  x.owns = [&](uint32_t s) { return pos.count(s) != 0; };
  x.onMsg = [&](const nlmsghdr* h, const AckResult* st) {
    if (!st) {
      if (onMsg) onMsg(h);
      return false;
    }
    if (h->nlmsg_type != NLMSG_ERROR) return false;
    if (st->err) {
      size_t p = pos[h->nlmsg_seq];
      if (p < firstPos) { first = *st; firstPos = p; }  // the first error in batch order wins
      return false;
    }
    auto a = acked.find(h->nlmsg_seq);
    if (a != acked.end() && !a->second) { a->second = true; missing--; }
    return false;
  };
  x.onLoss = [&] { lost = true; return true; };
  // All that was queued has been read: the errors seen are all there will be.
  x.onIdle = [&] { return firstPos != SIZE_MAX || missing == 0 || lost; };
  x.onTimeout = [] { return true; };
  exchange(x);
  if (firstPos != SIZE_MAX) return first;
  if (lost) {
    first.err = ENOBUFS;
    first.extack = "replies to the batch were lost (receive buffer overrun); its outcome is unknown";
  } else if (missing) {
    first.err = EPROTO;
    first.extack = "the kernel did not acknowledge the batch";
  }
  return first;
}

}  // namespace vnl
