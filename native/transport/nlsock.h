// A netlink socket owned by one thread: sequence numbers matched to replies, acks with the
// kernel's extended-ack text, multipart dumps (restarted when the kernel marks them
// interrupted), and pipelined requests.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "codec/nlmsg.h"
#include "transport/error.h"

namespace vnl {

struct AckResult {
  int err = 0;          // 0 or a positive errno
  std::string extack;   // NLMSGERR_ATTR_MSG when the kernel sent one
  uint32_t seq = 0;     // the seq of the message the ack answers
};

// Receives one datagram from the kernel into buf (EINTR retried, datagrams from other senders
// skipped). Returns its length or -errno; a truncated datagram is lost: buf grows by `grow` for
// next time and -EMSGSIZE is returned.
ssize_t nlRecv(int fd, std::vector<uint8_t>& buf, int flags, size_t grow = 4);

class NlSocket {
 public:
  using OnMsg = std::function<void(const nlmsghdr*)>;

  explicit NlSocket(int protocol, int rcvbuf = 1 << 20);
  ~NlSocket();
  NlSocket(const NlSocket&) = delete;
  NlSocket& operator=(const NlSocket&) = delete;

  // Sends one request with NLM_F_ACK and waits for its ack; replies that come before the
  // ack (NLM_F_ECHO, GET) go to onMsg. Throws SysError(op) with the extack text on failure.
  void request(MsgBuilder& m, const char* op, const OnMsg& onMsg = {});
  // Dump request: every message of a complete, uninterrupted dump goes to onMsg.
  void dump(MsgBuilder& m, const char* op, const OnMsg& onMsg);
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

  uint32_t nextSeq() { return ++seq_; }
  // Grows the receive buffer to at least `bytes` (capped at 64 MiB) for many replies at once.
  void growRcvbuf(size_t bytes);
  uint32_t portId() const { return portid_; }
  int fd() const { return fd_; }

  // Receives one datagram into the internal buffer; returns its length or -errno (ENOBUFS
  // surfaces to the caller, EINTR is retried).
  ssize_t recvOnce(int flags = 0);
  const uint8_t* rxData() const { return rx_.data(); }

  static AckResult parseAck(const nlmsghdr* h);

 private:
  // Like recvOnce, but peeks at the datagram's size first and grows the buffer to fit, so a
  // large data reply is never truncated (and lost). One more syscall: used only where data
  // replies are expected; acks (NETLINK_CAP_ACK) always fit.
  ssize_t recvWhole(int flags = 0);
  void sendAll(const uint8_t* p, size_t len, const char* op);
  int fd_ = -1;
  int protocol_;
  uint32_t portid_ = 0;
  uint32_t seq_;
  std::vector<uint8_t> rx_;
};

}  // namespace vnl
