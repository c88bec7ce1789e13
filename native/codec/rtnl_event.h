// A monitor's rtnetlink events and snapshots as bytes <-> Values, with no I/O: which messages a
// subscription reports (its tables and address family), the dump requests of a snapshot, the
// events of one received datagram, and the index->name map that names links in them. The
// socket work is the transport's (NlSocket's subscription mode), the loop is ops/monitor.cc,
// the delivery to JS is napi/monitor.cc; this part is what the rtnl fuzzer can reach.
#pragma once
#include <sys/socket.h>

#include <cstdint>
#include <vector>

#include "codec/names.h"
#include "codec/nlmsg.h"
#include "codec/value.h"

namespace vnl {

// What a monitor reports: its tables, and the address family of addr/route/neigh.
struct EventFilter {
  bool link = false, addr = false, route = false, neigh = false;
  int family = AF_UNSPEC;  // AF_UNSPEC: both inet and inet6
  bool familyOk(int fam) const {
    if (fam != AF_INET && fam != AF_INET6) return false;
    return family == AF_UNSPEC || fam == family;
  }
};

// The decoding state of one monitor. Names are never looked up (the reader thread is not in
// the monitor's namespace): the map is fed by link dumps and link events, and decoders see it
// through a Names resolver. Not copyable: the resolver points at this object's map.
class RtnlEvents {
 public:
  RtnlEvents(const EventFilter& f, uint32_t portid) : f_(f), portid_(portid) {}
  RtnlEvents(const RtnlEvents&) = delete;
  RtnlEvents& operator=(const RtnlEvents&) = delete;

  const EventFilter& filter() const { return f_; }

  // RTM_GETLINK/ADDR/ROUTE/NEIGH with NLM_F_REQUEST|NLM_F_DUMP for one family.
  static MsgBuilder dumpRequest(uint16_t type, uint8_t family);
  // One message of a dump, decoded into `out` when it belongs to the subscription (links of
  // AF_UNSPEC, addr/route/neigh of the filter's families); a malformed one is skipped.
  void decodeDumped(const nlmsghdr* h, std::vector<Value>& out) const;
  // After a link dump: the name map is rebuilt from it, and masters/parents the first pass
  // could not name (they came later in the dump) are named now.
  void learnLinks(std::vector<Value>& links);
  // {type, existing?, links?, addrs?, routes?, neighs?}: the tables the filter subscribes.
  Value snapshot(const char* type, bool existing, std::vector<Value>& links, std::vector<Value>& addrs,
                 std::vector<Value>& routes, std::vector<Value>& neighs) const;
  // The events of one received datagram, appended to `batch`; stale replies to our own dumps
  // are skipped, and so is a malformed message (never fatal). The name map follows link
  // events even when links are not reported, so later addr/route/neigh events carry names.
  void decodeDatagram(const uint8_t* p, size_t n, std::vector<Value>& batch);

  // The initial state as ordinary new* events marked `existing`, then `synced`.
  static void existingEvents(const Value& snapshot, std::vector<Value>& batch);
  // `resync` after the kernel dropped events: the fresh snapshot, with the reason.
  static Value resync(Value snapshot);
  // {type: 'error', errno, where}: how a failed reader ends (lib/monitor.ts throws it).
  static Value errorEvent(int err, const std::string& where);

 private:
  void decodeEvent(const nlmsghdr* h, std::vector<Value>& batch);

  EventFilter f_;
  uint32_t portid_;
  IndexNames names_;
  const Names resolve_ = Names::of(names_);
};

}  // namespace vnl
