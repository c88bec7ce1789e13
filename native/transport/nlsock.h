// A netlink socket owned by one thread: sequence numbers matched to replies, acks with the
// kernel's extended-ack text, multipart dumps (restarted when the kernel marks them
// interrupted), pipelined requests and nftables batches. Every exchange runs through one
// receive loop (NlSocket::exchange) with a deadline.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "codec/nlmsg.h"
#include "transport/error.h"

namespace vnl {

// How long one exchange with the kernel may take before it fails with ETIMEDOUT. The kernel
// answers rtnetlink and nfnetlink inside sendmsg; only a lost reply makes us wait this long.
constexpr int kExchangeTimeoutMs = 10000;

struct AckResult {
  int err = 0;          // 0 or a positive errno
  std::string extack;   // NLMSGERR_ATTR_MSG when the kernel sent one
  uint32_t seq = 0;     // the seq of the message the ack answers
};

// Receives one datagram from the kernel into buf with one recvmsg (EINTR retried, datagrams
// from other senders skipped). Returns its length or -errno; a datagram larger than buf is
// lost: buf grows (by `grow`, at least to that datagram's size) and -EMSGSIZE is returned.
ssize_t nlRecv(int fd, std::vector<uint8_t>& buf, int flags, size_t grow = 4);

// One exchange's view of the replies: the receive loop hands it only messages from the kernel
// addressed to our port whose seq it owns, with NLMSG_ERROR and NLMSG_DONE already decoded.
struct Exchange {
  const char* op = "netlink";
  int timeoutMs = kExchangeTimeoutMs;
  std::function<bool(uint32_t seq)> owns;
  // A message of the exchange; `status` is set for NLMSG_ERROR and NLMSG_DONE. Returns true
  // once the exchange is complete (the rest of that datagram is still read).
  std::function<bool(const nlmsghdr*, const AckResult* status)> onMsg;
  // Replies were lost (ENOBUFS, or a datagram larger than the buffer): true to read on,
  // false to fail with ENOBUFS. Default: fail.
  std::function<bool()> onLoss;
  // Nothing is queued: true ends the exchange. Default: wait for more.
  std::function<bool()> onIdle;
  // The deadline passed: true ends the exchange quietly. Default: fail with ETIMEDOUT.
  std::function<bool()> onTimeout;
  // Messages that are not the exchange's (a monitor socket's events, kept for later).
  std::function<void(const nlmsghdr*)> onOther;
  // An eventfd that ends the wait early (a monitor being closed): exchange() returns false.
  int wakeFd = -1;
};

// The one receive loop over a bound netlink socket (libmnl's callback-run shape): reads until
// the exchange is complete (returns true) or wakeFd fired (false). Only datagrams from the
// kernel are read; only messages addressed to `portid` with a seq the exchange owns reach
// onMsg. Throws SysError ETIMEDOUT when the kernel stays silent for timeoutMs (each reply of
// the exchange restarts the wait, so a long dump is not cut off), and ENOBUFS on lost replies
// unless onLoss copes.
bool runExchange(int fd, uint32_t portid, std::vector<uint8_t>& rx, const Exchange& x);

class NlSocket {
 public:
  using OnMsg = std::function<void(const nlmsghdr*)>;

  // A request socket: blocking, bound, extended acks on.
  explicit NlSocket(int protocol, int rcvbuf = 1 << 20);
  ~NlSocket();  // closes the fd it owns (none after release())
  NlSocket(const NlSocket&) = delete;
  NlSocket& operator=(const NlSocket&) = delete;
  NlSocket(NlSocket&& o) noexcept;

  // --- Subscription mode (a monitor) ---
  // A socket joined to multicast `groups`, non-blocking, with a receive buffer of `rcvbuf`
  // bytes (forced past rmem_max as root; a tiny one is allowed on purpose: tests, overflow).
  // Made on the namespace thread: it hears that namespace's events, and dumps sent on it run
  // there, whichever thread reads it later. Throws SysError naming `op` and the failed call.
  static NlSocket subscribed(int protocol, const std::vector<unsigned>& groups, int rcvbuf, const char* op);
  // Takes ownership of a subscribed socket's fd handed over by release() (monitor.open's fd
  // crosses JS as a number into a Monitor); `portid` is the one it was bound with.
  static NlSocket adopt(int fd, int protocol, uint32_t portid);
  // Gives up the fd (the caller owns it from here on); this object then closes nothing.
  int release();
  // Closes the fd now rather than at destruction (its one user is known to be done).
  void closeNow() noexcept;
  // The receive buffer the kernel granted.
  int rcvbuf() const;
  // Blocks until events are queued (true) or wakeFd fired (false). `op` names poll failures.
  bool waitEvents(int wakeFd, const char* op);
  // Reads up to `max` queued datagrams without blocking, each to onDatagram. Returns true
  // when the kernel dropped events (ENOBUFS, or a datagram larger than the buffer, which has
  // grown meanwhile: a gap either way), after which the caller re-reads the state; stops
  // then, or when nothing more is queued. Other receive errors throw SysError("<op>: recvmsg").
  bool drainEvents(const std::function<void(const uint8_t*, size_t)>& onDatagram, const char* op, int max = 256);
  // A dump on a subscribed socket: the replies go to onReply; multicast events arriving
  // meanwhile go to onEvent (in order, for after the dump: they are newer than the state it
  // read), stale replies of ours are dropped. An overrun sets `lost` (events were dropped)
  // and the dump reads on; a dump the kernel marked interrupted is asked again, at most 10
  // times, then taken as it is. Returns false when wakeFd fired (the monitor is closing).
  bool dumpSubscribed(MsgBuilder& m, const char* op, int wakeFd, const OnMsg& onReply, const OnMsg& onEvent, bool& lost);

  // Sends one request with NLM_F_ACK and waits for its ack; replies that come before the
  // ack (NLM_F_ECHO, GET) go to onMsg. Throws SysError(op) with the extack text on failure,
  // ETIMEDOUT when no ack came within timeoutMs.
  void request(MsgBuilder& m, const char* op, const OnMsg& onMsg = {}, int timeoutMs = kExchangeTimeoutMs);
  // Dump request: every message of a complete, uninterrupted dump goes to onMsg.
  void dump(MsgBuilder& m, const char* op, const OnMsg& onMsg, int timeoutMs = kExchangeTimeoutMs);
  // Sends all requests (NLM_F_ACK added) packed into few sendmsg calls and gathers one result
  // per request, in order. Replies other than acks go to onMsg with the request's index.
  // At most `window` requests are in flight at once.
  std::vector<AckResult> requestMany(std::vector<MsgBuilder>& msgs,
                                     const std::function<void(size_t, const nlmsghdr*)>& onMsg = {},
                                     size_t window = 256);
  // Sends pre-built bytes (an nftables NFNL_MSG_BATCH_BEGIN...END batch) whose messages carry
  // seqs from nextSeq(), and collects every reply the kernel sent about them: the first error
  // in batch order wins (including one addressed to BATCH_BEGIN), otherwise every seq in
  // `ackSeqs` must have been acked. Other replies with a batch seq (NLM_F_ECHO) go to onMsg.
  // Never blocks for long: nfnetlink handles the batch inside our sendmsg, so all replies are
  // queued when it returns; a missing ack or lost replies (ENOBUFS) are reported, not waited on.
  AckResult sendRawAndAck(const std::vector<uint8_t>& bytes, const std::vector<uint32_t>& ackSeqs,
                          const OnMsg& onMsg = {});

  // Runs the receive loop on this socket (see runExchange).
  void exchange(const Exchange& x) { runExchange(fd_, portid_, rx_, x); }
  // Sends bytes to the kernel as one datagram.
  void send(const uint8_t* p, size_t len, const char* op);

  uint32_t nextSeq() { return ++seq_; }
  // Grows the receive buffer to at least `bytes` (capped at 64 MiB) for many replies at once.
  void growRcvbuf(size_t bytes);
  uint32_t portId() const { return portid_; }
  int fd() const { return fd_; }

  // The status an NLMSG_ERROR (an ack or an error, then the echoed request, then TLVs) or an
  // NLMSG_DONE (an int error, then TLVs) carries.
  static AckResult parseAck(const nlmsghdr* h);

 private:
  using Parts = std::vector<std::vector<uint8_t>>;
  NlSocket(int fd, int protocol, uint32_t portid, size_t rxSize);
  // One dump request and its replies, complete or not: copies of the messages in `parts`,
  // `interrupted` when the kernel marked one NLM_F_DUMP_INTR, `lossSeen` on an overrun (what a
  // loss means is the caller's), other messages to onOther. False when wakeFd fired.
  bool dumpRound(MsgBuilder& m, const char* op, int timeoutMs, int wakeFd, Parts& parts, bool& interrupted,
                 bool& lossSeen, const OnMsg& onOther);
  // socket(2) + bind(2) + the port the kernel gave; the fd is closed again on failure.
  static int openBound(int protocol, int typeFlags, uint32_t& portid, const char* op);

  int fd_ = -1;
  int protocol_;
  uint32_t portid_ = 0;
  uint32_t seq_;
  bool nonblocking_ = false;  // subscription mode: sendto may say EAGAIN
  std::vector<uint8_t> rx_;
};

}  // namespace vnl
