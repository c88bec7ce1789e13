// The decoders the other harnesses do not reach: a monitor's datagrams and dumps (RtnlEvents,
// including the name map it learns from link dumps), policy rules, conntrack entries, generic
// netlink controller replies and WireGuard's GET_DEVICE parts. The input is one receive buffer;
// every message goes to each decoder, since a hostile or mutated header may reach any of them.
#include <linux/rtnetlink.h>

#include "codec/ct.h"
#include "codec/genl.h"
#include "codec/rtnl.h"
#include "codec/rtnl_event.h"
#include "codec/wireguard.h"
#include "fuzz/fuzz_common.h"

using namespace vnl;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> buf = fuzz::aligned(data, size);
  // A monitor subscribed to everything: the datagram path skips what it cannot read, so
  // nothing may escape it at all; the dump path feeds the name map as a resync does.
  EventFilter f;
  f.link = f.addr = f.route = f.neigh = true;
  RtnlEvents ev(f, 4242);
  std::vector<Value> batch, links;
  ev.decodeDatagram(buf.data(), buf.size(), batch);
  MsgIter it(buf.data(), buf.size());
  while (const nlmsghdr* h = it.next()) {
    ev.decodeDumped(h, links);
    fuzz::expectCodecErrorsOnly([&] { (void)decodeRule(h); });
    fuzz::expectCodecErrorsOnly([&] { (void)ct::decodeEntry(h); });
    fuzz::expectCodecErrorsOnly([&] { genl::Family fam; (void)genl::decodeFamily(h, fam); });
    fuzz::expectCodecErrorsOnly([&] { wg::Device dev; wg::decodeGetPart(h, dev); });
  }
  ev.learnLinks(links);
  // Events decoded after the name map was learned carry names from it.
  ev.decodeDatagram(buf.data(), buf.size(), batch);
  return 0;
}
