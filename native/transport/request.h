// How a change request leaves: sent and acked, or shown as the exact bytes that would be sent.
// Every change op and its `.encode` twin go through this one place (ops.h VNL_CHANGE_OPS), so
// the bytes a golden test checks are the bytes the kernel gets, and every refusal surfaces the
// same way: SysError(op, errno, extack), which the glue turns into a NetlinkError.
#pragma once
#include <functional>

#include "codec/value.h"
#include "transport/nlsock.h"

namespace vnl {

enum class Send { Request, Encode };

// Request: sends `m` on sock() with NLM_F_REQUEST|NLM_F_ACK, waits for the ack (replies
// before it, NLM_F_ECHO or a GET's, go to onMsg) and returns undefined. Encode: returns the
// bytes with NLM_F_REQUEST|NLM_F_ACK, seq 0 and port 0, and opens no socket (sock is not
// called), so `.encode` works where the request would be refused.
inline Value submit(const std::function<NlSocket&()>& sock, MsgBuilder& m, Send how, const char* op,
                    const NlSocket::OnMsg& onMsg = {}) {
  if (how == Send::Encode) {
    m.addFlags(NLM_F_REQUEST | NLM_F_ACK);
    m.setSeq(0);
    return Value::bytes(m.data(), m.size());
  }
  sock().request(m, op, onMsg);
  return Value();
}

}  // namespace vnl
