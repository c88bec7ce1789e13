// Traffic-control replies (qdiscs, classes, filters with their actions) as a receive buffer,
// each message to the decoder its RTM_NEW* type names, as tc.list uses them; other types pick
// one from the type. The scheduler clock is the one these kernels report.
#include <linux/rtnetlink.h>

#include "codec/tc.h"
#include "fuzz/fuzz_common.h"

using namespace vnl;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const tc::Clock clk;
  static const tc::Names names{
      [](const std::string& n) -> uint32_t { return n == "v0" ? 2 : 0; },
      [](uint32_t i) -> std::string { return i == 2 ? "v0" : i == 3 ? "br0" : ""; }};
  std::vector<uint8_t> buf = fuzz::aligned(data, size);
  MsgIter it(buf.data(), buf.size());
  while (const nlmsghdr* h = it.next()) {
    fuzz::expectCodecErrorsOnly([&] {
      switch (h->nlmsg_type) {
        case RTM_NEWQDISC: case RTM_DELQDISC: (void)tc::decodeQdisc(h, clk, names); break;
        case RTM_NEWTCLASS: case RTM_DELTCLASS: (void)tc::decodeClass(h, clk, names); break;
        case RTM_NEWTFILTER: case RTM_DELTFILTER: (void)tc::decodeFilter(h, clk, names); break;
        default:
          switch (h->nlmsg_type % 3) {
            case 0: (void)tc::decodeQdisc(h, clk, names); break;
            case 1: (void)tc::decodeClass(h, clk, names); break;
            default: (void)tc::decodeFilter(h, clk, names); break;
          }
      }
    });
  }
  return 0;
}
