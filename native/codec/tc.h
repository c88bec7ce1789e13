// Traffic control codec: RTM_{NEW,DEL,GET}{QDISC,TCLASS,TFILTER} requests built from
// normalized arguments, and the kernel's replies decoded into Values. No I/O: interface names
// come through a resolver, and the packet scheduler's clock is a parameter, so the same code
// encodes for a golden-bytes test and for a live kernel.
#pragma once
#include <linux/netlink.h>

#include <cstdint>
#include <functional>
#include <string>

#include "codec/names.h"
#include "codec/nlmsg.h"
#include "codec/value.h"

namespace vnl::tc {

// The scheduler clock as /proc/net/psched describes it (iproute2's tc_core_init): rate
// tables and burst sizes are written in its ticks, so encoding needs it.
struct Clock {
  double tickInUsec = 15.625;  // 6.x kernels: t2us 1000, us2t 64, resolution 1 GHz
  double clockFactor = 1;
  uint32_t hz = 1000000000;    // get_hz(): the denominator when the nominator is 1e6
  // Parses the four hex words of /proc/net/psched; false when malformed.
  static bool parse(const std::string& text, Clock& out);
};

// Interface names and indexes in the namespace the message is for.
using Names = ::vnl::Names;

// What a request does: tc's add / replace / change / del.
enum class Cmd { Add, Replace, Change, Del };

// Builds one request. `args` carries ifindex, parent, handle/classid, kind and the kind's
// normalized options (rates in bytes/s, sizes in bytes, times in microseconds, probabilities
// as fractions). Throws std::invalid_argument naming the field on a value the wire cannot hold.
MsgBuilder buildQdisc(Cmd cmd, const Value& args, const Clock& clk, const Names& names);
MsgBuilder buildClass(Cmd cmd, const Value& args, const Clock& clk, const Names& names);
MsgBuilder buildFilter(Cmd cmd, const Value& args, const Clock& clk, const Names& names);

// A dump request for one device (0: every device, qdiscs only) and, for filters, one parent.
MsgBuilder buildDump(uint16_t type, uint32_t ifindex, uint32_t parent);

// Decodes RTM_NEWQDISC / RTM_NEWTCLASS / RTM_NEWTFILTER into what `tc -s -j ... show` prints.
Value decodeQdisc(const nlmsghdr* h, const Clock& clk, const Names& names);
Value decodeClass(const nlmsghdr* h, const Clock& clk, const Names& names);
Value decodeFilter(const nlmsghdr* h, const Clock& clk, const Names& names);

// tc's text for a class id or parent: "1:", "1:10", ":1", "root", "none" (ingress is "ffff:fff1").
std::string handleString(uint32_t h);

}  // namespace vnl::tc
