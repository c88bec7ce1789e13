// Acks, errors and DONE messages as parseAck reads them: the error number, the echoed
// request header (capped or not) and the extended-ack TLVs after it.
#include "fuzz/fuzz_common.h"
#include "transport/nlsock.h"

using namespace vnl;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> buf = fuzz::aligned(data, size);
  MsgIter it(buf.data(), buf.size());
  while (const nlmsghdr* h = it.next()) {
    AckResult r = NlSocket::parseAck(h);
    // The contract the transport relies on: a positive errno or 0, never anything else.
    if (r.err < 0 || r.err > 4095) __builtin_trap();
  }
  return 0;
}
