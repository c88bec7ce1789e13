#include "transport/nlsock.h"

#include <linux/netlink.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <unordered_map>

namespace vnl {

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#ifndef NETLINK_CAP_ACK
#define NETLINK_CAP_ACK 10
#endif

NlSocket::NlSocket(int protocol, int rcvbuf) : protocol_(protocol), rx_(128 * 1024) {
  fd_ = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
  if (fd_ < 0) throwErrno("socket(AF_NETLINK)");
  int one = 1;
  setsockopt(fd_, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  // Errors echo only the header of our request, not the whole message.
  setsockopt(fd_, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  if (setsockopt(fd_, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0)
    setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  int sndbuf = 1 << 20;
  if (setsockopt(fd_, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf) < 0)
    setsockopt(fd_, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  if (bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) {
    int e = errno; close(fd_); throw SysError(e, "bind(AF_NETLINK)");
  }
  socklen_t sl = sizeof sa;
  getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &sl);
  portid_ = sa.nl_pid;
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  seq_ = static_cast<uint32_t>(ts.tv_nsec ^ ts.tv_sec);
}

NlSocket::~NlSocket() {
  if (fd_ >= 0) close(fd_);
}

void NlSocket::sendAll(const uint8_t* p, size_t len, const char* op) {
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  for (;;) {
    ssize_t n = sendto(fd_, p, len, 0, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    if (n >= 0) return;
    if (errno == EINTR) continue;
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
    ssize_t n = recvmsg(fd, &mh, flags);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (mh.msg_flags & MSG_TRUNC) {
      buf.resize(buf.size() * grow);
      return -EMSGSIZE;
    }
    if (sa.nl_pid != 0) continue;  // only the kernel talks to us
    return n;
  }
}

ssize_t NlSocket::recvOnce(int flags) { return nlRecv(fd_, rx_, flags); }

ssize_t NlSocket::recvWhole(int flags) {
  for (;;) {
    sockaddr_nl sa{};
    iovec iov{rx_.data(), 0};
    msghdr mh{};
    mh.msg_name = &sa;
    mh.msg_namelen = sizeof sa;
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    // MSG_TRUNC makes netlink return the datagram's real length; MSG_PEEK leaves it queued.
    ssize_t n = recvmsg(fd_, &mh, flags | MSG_PEEK | MSG_TRUNC);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (static_cast<size_t>(n) > rx_.size()) rx_.resize(static_cast<size_t>(n));
    if (sa.nl_pid != 0) {  // not the kernel: drop it here so nlRecv reads the datagram we sized for
      recv(fd_, rx_.data(), 0, MSG_DONTWAIT | MSG_TRUNC);
      continue;
    }
    // This thread alone reads the socket: the datagram we peeked at is the one read now.
    return nlRecv(fd_, rx_, flags);
  }
}

AckResult NlSocket::parseAck(const nlmsghdr* h) {
  AckResult r;
  r.seq = h->nlmsg_seq;
  if (h->nlmsg_len < NLMSG_HDRLEN + sizeof(int)) { r.err = EBADMSG; return r; }
  const auto* e = reinterpret_cast<const nlmsgerr*>(NLMSG_DATA(h));
  // Negating INT_MIN is undefined; anything outside -4095..0 is not an errno the kernel sends.
  r.err = (e->error <= 0 && e->error >= -4095) ? -e->error : EPROTO;
  if (h->nlmsg_flags & NLM_F_ACK_TLVS) {
    size_t off = NLMSG_HDRLEN + sizeof(int);
    if (h->nlmsg_flags & NLM_F_CAPPED) off += sizeof(nlmsghdr);
    else if (h->nlmsg_len >= NLMSG_HDRLEN + sizeof(nlmsgerr)) off += NLMSG_ALIGN(e->msg.nlmsg_len);
    if (off < h->nlmsg_len) {
      AttrIter it(reinterpret_cast<const uint8_t*>(h) + off, h->nlmsg_len - off);
      Attr a;
      while (it.next(a))
        if (a.type == NLMSGERR_ATTR_MSG) r.extack = a.str();
    }
  }
  return r;
}

void NlSocket::request(MsgBuilder& m, const char* op, const OnMsg& onMsg) {
  uint32_t seq = nextSeq();
  m.setSeq(seq);
  m.addFlags(NLM_F_REQUEST | NLM_F_ACK);
  sendAll(m.data(), m.size(), op);
  // A truncated datagram is gone for good, so replies that carry data (GET, NLM_F_ECHO; they
  // can exceed any fixed buffer) are sized with a peek first; ack-only requests pay nothing.
  for (;;) {
    ssize_t n = onMsg ? recvWhole() : recvOnce();
    if (n == -ENOBUFS) continue;  // a request socket joins no groups; keep waiting for our ack
    if (n < 0) throw SysError(static_cast<int>(-n), std::string(op) + " (recvmsg)");
    MsgIter it(rx_.data(), static_cast<size_t>(n));
    bool done = false;
    while (const nlmsghdr* h = it.next()) {
      if (h->nlmsg_seq != seq) continue;  // a stale reply to an earlier request
      if (h->nlmsg_type == NLMSG_ERROR) {
        AckResult r = parseAck(h);
        if (r.err) throw SysError(r.err, op, r.extack);
        done = true;
        break;
      }
      if (h->nlmsg_type == NLMSG_DONE) { done = true; break; }
      if (onMsg) onMsg(h);
    }
    if (done) return;
  }
}

void NlSocket::dump(MsgBuilder& m, const char* op, const OnMsg& onMsg) {
  for (int attempt = 0;; attempt++) {
    uint32_t seq = nextSeq();
    m.setSeq(seq);
    m.addFlags(NLM_F_REQUEST | NLM_F_DUMP);
    sendAll(m.data(), m.size(), op);
    std::vector<std::vector<uint8_t>> parts;
    bool interrupted = false;
    bool done = false;
    while (!done) {
      ssize_t n = recvOnce();
      if (n == -ENOBUFS || n == -EMSGSIZE) { interrupted = true; break; }
      if (n < 0) throw SysError(static_cast<int>(-n), std::string(op) + " (recvmsg)");
      MsgIter it(rx_.data(), static_cast<size_t>(n));
      while (const nlmsghdr* h = it.next()) {
        if (h->nlmsg_seq != seq) continue;
        if (h->nlmsg_flags & NLM_F_DUMP_INTR) interrupted = true;
        if (h->nlmsg_type == NLMSG_DONE) {
          // DONE carries an int error (and maybe extack TLVs) since 4.x.
          if (h->nlmsg_len >= NLMSG_HDRLEN + sizeof(int)) {
            int err;
            memcpy(&err, NLMSG_DATA(h), sizeof err);
            if (err < 0) {
              AckResult r = parseAck(h);
              throw SysError(-err, op, r.extack);
            }
          }
          done = true;
          break;
        }
        if (h->nlmsg_type == NLMSG_ERROR) {
          AckResult r = parseAck(h);
          if (r.err) throw SysError(r.err, op, r.extack);
          done = true;
          break;
        }
        const uint8_t* p = reinterpret_cast<const uint8_t*>(h);
        parts.emplace_back(p, p + h->nlmsg_len);
      }
    }
    if (interrupted) {
      if (!done) {
        // Drain what is left of the broken dump before asking again.
        for (;;) {
          ssize_t n = recvOnce();
          if (n < 0) break;
          bool end = false;
          MsgIter it(rx_.data(), static_cast<size_t>(n));
          while (const nlmsghdr* h = it.next())
            if (h->nlmsg_seq == seq && (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR)) end = true;
          if (end) break;
        }
      }
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
  size_t pending = 0;
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
  while (i < msgs.size() || pending) {
    // Keep a bounded window in flight so acks never overflow our receive buffer.
    if (i < msgs.size() && pending < window) {
      buf.clear();
      size_t first = i;
      while (i < msgs.size() && pending < window && (buf.empty() || buf.size() + msgs[i].size() <= kChunk)) {
        uint32_t seq = nextSeq();
        msgs[i].setSeq(seq);
        msgs[i].addFlags(NLM_F_REQUEST | NLM_F_ACK);
        bySeq[seq] = i;
        buf.insert(buf.end(), msgs[i].bytes().begin(), msgs[i].bytes().end());
        i++;
        pending++;
      }
      (void)first;
      sendAll(buf.data(), buf.size(), "requestMany");
    }
    if (!pending) continue;
    // Data replies (NLM_F_ECHO) are peeked at first so none is lost to truncation; see request().
    int rflags = lost ? MSG_DONTWAIT : 0;
    ssize_t n = onMsg ? recvWhole(rflags) : recvOnce(rflags);
    if (n == -ENOBUFS) { lost = true; continue; }
    if (lost && (n == -EAGAIN || n == -EWOULDBLOCK)) {
      // rtnetlink answers inside sendmsg, so every reply to what was sent is queued by now:
      // the acks still missing were dropped with the overrun. Waiting for them would block
      // the handle's thread forever; their outcome is unknown.
      for (auto& [seq, k] : bySeq) {
        out[k].err = ENOBUFS;
        out[k].seq = seq;
        out[k].extack = "the reply was lost (receive buffer overrun); whether the request took effect is unknown";
      }
      bySeq.clear();
      pending = 0;
      lost = false;
      continue;
    }
    if (n < 0) throw SysError(static_cast<int>(-n), "requestMany (recvmsg)");
    MsgIter it(rx_.data(), static_cast<size_t>(n));
    while (const nlmsghdr* h = it.next()) {
      auto f = bySeq.find(h->nlmsg_seq);
      if (f == bySeq.end()) continue;
      if (h->nlmsg_type == NLMSG_ERROR) {
        out[f->second] = parseAck(h);
        bySeq.erase(f);
        pending--;
      } else if (onMsg) {
        onMsg(f->second, h);
      }
    }
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
  sendAll(bytes.data(), bytes.size(), "batch");

  AckResult first;
  size_t firstPos = SIZE_MAX;
  bool lost = false;
  size_t missing = acked.size();
  // Everything is normally queued already; the short poll only guards against a kernel that
  // would answer later, and bounds the wait when it says nothing (a batch it found malformed).
  for (int idle = 0; idle < 2;) {
    ssize_t n = onMsg ? recvWhole(MSG_DONTWAIT) : recvOnce(MSG_DONTWAIT);
    if (n == -EAGAIN || n == -EWOULDBLOCK) {
      if (firstPos != SIZE_MAX || missing == 0) break;
      pollfd p{fd_, POLLIN, 0};
      int r = poll(&p, 1, 500);
      if (r <= 0) idle++;
      continue;
    }
    if (n == -ENOBUFS || n == -EMSGSIZE) { lost = true; continue; }
    if (n < 0) throw SysError(static_cast<int>(-n), "batch (recvmsg)");
    MsgIter it(rx_.data(), static_cast<size_t>(n));
    while (const nlmsghdr* h = it.next()) {
      auto p = pos.find(h->nlmsg_seq);
      if (p == pos.end()) continue;  // a stale reply to something else
      if (h->nlmsg_type != NLMSG_ERROR) {
        if (onMsg) onMsg(h);
        continue;
      }
      AckResult r = parseAck(h);
      if (r.err) {
        if (p->second < firstPos) { first = r; firstPos = p->second; }
        continue;
      }
      auto a = acked.find(h->nlmsg_seq);
      if (a != acked.end() && !a->second) { a->second = true; missing--; }
    }
  }
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
