// macvlan and macvtap: one plug-in for both kinds (macvtap is a macvlan with a character
// device). IFLA_INFO_DATA carries IFLA_MACVLAN_MODE, IFLA_MACVLAN_FLAGS and, in source mode,
// the list of source MACs (IFLA_MACVLAN_MACADDR_MODE + IFLA_MACVLAN_MACADDR_DATA).
#include <linux/if_link.h>

#include <cstring>

#include "ops/format.h"
#include "ops/link.h"

namespace vnl {
namespace {

// Newer than some installed headers.
constexpr uint16_t kIflaMacvlanBcCutoff = 9;

const struct { const char* name; uint32_t mode; } kModes[] = {
    {"private", MACVLAN_MODE_PRIVATE}, {"vepa", MACVLAN_MODE_VEPA}, {"bridge", MACVLAN_MODE_BRIDGE},
    {"passthru", MACVLAN_MODE_PASSTHRU}, {"source", MACVLAN_MODE_SOURCE}};

const struct { const char* name; uint16_t bit; } kFlags[] = {
    {"noPromisc", MACVLAN_FLAG_NOPROMISC}, {"nodst", MACVLAN_FLAG_NODST}};

uint32_t modeBits(const std::string& s) {
  for (auto& m : kModes)
    if (s == m.name) return m.mode;
  throw std::invalid_argument("mode: unknown macvlan mode '" + s + "'");
}

uint16_t flagBits(const Value& flags) {
  uint16_t bits = 0;
  for (auto& f : flags.items()) {
    bool known = false;
    for (auto& k : kFlags)
      if (f.string() == k.name) { bits |= k.bit; known = true; }
    if (!known) throw std::invalid_argument("flags: unknown macvlan flag '" + f.string() + "'");
  }
  return bits;
}

// Replaces the source-mode MAC list in one go (MACVLAN_MACADDR_SET: flush, then add each).
void putMacs(MsgBuilder& m, const Value& macs) {
  m.putU32(IFLA_MACVLAN_MACADDR_MODE, MACVLAN_MACADDR_SET);
  auto d = m.nest(IFLA_MACVLAN_MACADDR_DATA);
  for (auto& mac : macs.items()) m.putBytes(IFLA_MACVLAN_MACADDR, parseMac(mac.string(), "macs"));
}

void fillChange(Ctx&, MsgBuilder& m, const Value& spec, const char*) {
  if (const Value* v = spec.get("mode")) m.putU32(IFLA_MACVLAN_MODE, modeBits(v->string()));
  if (const Value* v = spec.get("flags")) m.putU16(IFLA_MACVLAN_FLAGS, flagBits(*v));
  if (const Value* v = spec.get("macs")) putMacs(m, *v);
}

void fillAdd(Ctx& ctx, MsgBuilder& m, const Value& spec, const char* op, std::vector<Fd>&) {
  fillChange(ctx, m, spec, op);
}

void decode(const Attr& data, Value& info) {
  AttrTable tb(data, kIflaMacvlanBcCutoff);
  if (tb[IFLA_MACVLAN_MODE]) {
    uint32_t mode = tb[IFLA_MACVLAN_MODE]->u32();
    std::string name = "unknown";
    for (auto& m : kModes)
      if (m.mode == mode) name = m.name;
    info.set("mode", name);
  }
  Value flags = Value::array();
  if (tb[IFLA_MACVLAN_FLAGS]) {
    uint16_t bits = tb[IFLA_MACVLAN_FLAGS]->u16();
    for (auto& f : kFlags)
      if (bits & f.bit) flags.push(f.name);
  }
  info.set("flags", std::move(flags));
  if (tb[IFLA_MACVLAN_MACADDR_COUNT]) info.set("macCount", tb[IFLA_MACVLAN_MACADDR_COUNT]->u32());
  if (const Attr* d = tb[IFLA_MACVLAN_MACADDR_DATA]) {
    Value macs = Value::array();
    AttrIter it(*d);
    Attr a;
    while (it.next(a))
      if (a.type == IFLA_MACVLAN_MACADDR && a.len >= 6) macs.push(macToString(a.data, 6));
    info.set("macs", std::move(macs));
  }
  if (tb[IFLA_MACVLAN_BC_QUEUE_LEN]) info.set("bcQueueLen", tb[IFLA_MACVLAN_BC_QUEUE_LEN]->u32());
  if (tb[IFLA_MACVLAN_BC_QUEUE_LEN_USED]) info.set("bcQueueLenUsed", tb[IFLA_MACVLAN_BC_QUEUE_LEN_USED]->u32());
  if (tb[kIflaMacvlanBcCutoff]) info.set("bcCutoff", tb[kIflaMacvlanBcCutoff]->s32());
}

const LinkKind macvlan{"macvlan", fillAdd, fillChange, decode};
const LinkKind macvtap{"macvtap", fillAdd, fillChange, decode};
VNL_LINK_KIND(macvlan);
VNL_LINK_KIND(macvtap);

}  // namespace
}  // namespace vnl
