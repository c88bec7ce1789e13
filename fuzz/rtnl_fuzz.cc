// rtnetlink replies as a receive buffer: every message goes to the decoder its type names
// (link, addr, route, neigh; acks and DONE to parseAck), the way list/get and monitors use
// them. Unknown types pick a decoder from the type, so mutated headers still reach them all.
#include <linux/rtnetlink.h>

#include "fuzz/fuzz_common.h"
#include "transport/nlsock.h"
#include "codec/rtnl.h"

using namespace vnl;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const IndexNames table = {{1, "lo"}, {2, "v0"}, {3, "br0"}};
  static const Names names = Names::of(table);
  std::vector<uint8_t> buf = fuzz::aligned(data, size);
  MsgIter it(buf.data(), buf.size());
  while (const nlmsghdr* h = it.next()) {
    fuzz::expectCodecErrorsOnly([&] {
      switch (h->nlmsg_type) {
        case NLMSG_ERROR:
        case NLMSG_DONE: (void)NlSocket::parseAck(h); break;
        case RTM_NEWLINK: case RTM_DELLINK: (void)decodeLink(h, names); break;
        case RTM_NEWADDR: case RTM_DELADDR: (void)decodeAddr(h, names); break;
        case RTM_NEWROUTE: case RTM_DELROUTE: (void)decodeRoute(h, names); break;
        case RTM_NEWNEIGH: case RTM_DELNEIGH: (void)decodeNeigh(h, names); break;
        default:
          switch (h->nlmsg_type % 5) {
            case 0: (void)NlSocket::parseAck(h); break;
            case 1: (void)decodeLink(h, names); break;
            case 2: (void)decodeAddr(h, names); break;
            case 3: (void)decodeRoute(h, names); break;
            default: (void)decodeNeigh(h, names); break;
          }
      }
    });
  }
  return 0;
}
