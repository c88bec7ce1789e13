// Shared by the libFuzzer harnesses: the input copied into an aligned buffer (the kernel's
// receive buffers are aligned; netlink headers are read in place), and the one exception a
// decoder may throw on malformed input. Anything else escaping a decoder is a finding.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "codec/nlmsg.h"

namespace vnl {
namespace fuzz {

// Exactly `n` bytes (no slack), so reading one byte past the input is an ASan report.
inline std::vector<uint8_t> aligned(const uint8_t* data, size_t n) { return std::vector<uint8_t>(data, data + n); }

template <class F>
inline void expectCodecErrorsOnly(F&& f) {
  try {
    f();
  } catch (const CodecError&) {
    // malformed input rejected: the contract
  }
}

}  // namespace fuzz
}  // namespace vnl
