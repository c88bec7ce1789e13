// rtnetlink replies as a receive buffer: every message goes to the decoder its type names
// (link, addr, route, neigh; acks and DONE to parseAck), the way list/get and monitors use
// them. Unknown types pick a decoder from the type, so mutated headers still reach them all.
// Links decode with the real kind tables (fuzz/kind-tables.json, the data lib/kinds/index.ts
// sends with native.setLinkKinds), so IFLA_INFO_DATA goes through the table-driven codec as
// it does in the addon; the seeds include one RTM_NEWLINK per kind (from the golden requests).
#include <linux/rtnetlink.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "codec/kind_schema.h"
#include "codec/rtnl.h"
#include "fuzz/fuzz_common.h"
#include "fuzz/json_value.h"
#include "transport/nlsock.h"

using namespace vnl;

// VNL_KIND_TABLES (set by scripts/fuzz.mjs), else the checkout's copy next to build-fuzz/,
// so replaying a crash file by hand decodes with the same tables. Without tables the kind
// codec would go unfuzzed, so a missing file stops the harness instead of running without.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  std::string path;
  if (const char* e = getenv("VNL_KIND_TABLES")) {
    path = e;
  } else {
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    std::string dir = n > 0 ? std::string(exe, static_cast<size_t>(n)) : std::string("build-fuzz/x");
    path = dir.substr(0, dir.rfind('/')) + "/../fuzz/kind-tables.json";
  }
  try {
    Value tables = fuzz::readJsonFile(path);
    setKindSchemas(tables);
    if (kindSchemas()->size() < 2) throw std::runtime_error("no kinds in " + path);
    fprintf(stderr, "rtnl_fuzz: %zu link kind tables from %s\n", kindSchemas()->size(), path.c_str());
  } catch (const std::exception& e) {
    fprintf(stderr, "rtnl_fuzz: cannot load the kind tables: %s\n", e.what());
    abort();
  }
  return 0;
}

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
        case RTM_NEWLINK: case RTM_DELLINK: {
          (void)decodeLink(h, names);
          Value vlans = Value::array();  // an AF_BRIDGE dump's VLANs (bridge.vlan.list)
          decodeBridgeVlans(h, names, vlans);
          break;
        }
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
