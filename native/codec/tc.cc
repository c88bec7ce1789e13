// Traffic control codec (see tc.h). The byte layouts and the rate-table arithmetic follow
// what iproute2's tc sends, so test/fixtures/tc-golden.json (captured from `tc`) can check
// every encoder, including kinds this kernel does not have.
#include "codec/tc.h"

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <linux/tc_act/tc_csum.h>
#include <linux/tc_act/tc_gact.h>
#include <linux/tc_act/tc_mirred.h>
#include <linux/gen_stats.h>

#include <climits>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <vector>

namespace vnl::tc {

namespace {

constexpr double kUsecPerSec = 1000000.0;
constexpr unsigned kLinkLayerEthernet = 1;  // iproute2's LINKLAYER_ETHERNET

// ---- the scheduler clock (tc_core.c's arithmetic) --------------------------------------------

// iproute2 6.1's arithmetic, which the golden bytes come from: the transmit time is truncated
// to whole microseconds before it becomes ticks (later releases round up in ticks; the two
// differ by less than a microsecond).
uint32_t usecToU32(double us) { return us >= 4294967295.0 ? UINT_MAX : !(us > 0) ? 0 : static_cast<uint32_t>(us); }  // NaN: 0

uint32_t xmittime(const Clock& c, uint64_t rate, uint64_t size) {
  if (rate == 0) return 0;
  uint32_t us = usecToU32(kUsecPerSec * (static_cast<double>(size) / static_cast<double>(rate)));
  return usecToU32(us * c.tickInUsec);
}

uint64_t xmitsize(const Clock& c, uint64_t rate, uint32_t ticks) {
  uint32_t us = usecToU32(ticks / c.tickInUsec);
  // A reply's 64-bit rate times a long buffer passes 2^64 bytes: converting that double to an
  // integer would be undefined, so it saturates.
  double bytes = (static_cast<double>(rate) * us) / kUsecPerSec;
  return bytes >= 18446744073709551615.0 ? UINT64_MAX : static_cast<uint64_t>(bytes);
}

uint32_t time2tick(const Clock& c, uint32_t usec) { return usecToU32(usec * c.tickInUsec); }
double tick2time(const Clock& c, uint32_t ticks) { return usecToU32(ticks / c.tickInUsec); }

// Fills a 256-entry rate table: the transmit time of a packet of each size cell.
void rateTable(const Clock& c, tc_ratespec& r, uint32_t* rtab, unsigned mtu, uint64_t bps) {
  if (mtu == 0) mtu = 2047;
  int cellLog = 0;
  while ((mtu >> cellLog) > 255) cellLog++;
  for (unsigned i = 0; i < 256; i++) {
    unsigned sz = (i + 1) << cellLog;
    if (sz < r.mpu) sz = r.mpu;
    rtab[i] = xmittime(c, bps, sz);
  }
  r.cell_align = -1;
  r.cell_log = static_cast<unsigned char>(cellLog);
  r.linklayer = kLinkLayerEthernet & TC_LINKLAYER_MASK;
}

uint32_t clamp32(uint64_t v) { return v >= (1ULL << 32) ? ~0U : static_cast<uint32_t>(v); }

// ---- normalized argument access ----------------------------------------------------------------

uint64_t u64Of(const Value& o, const char* key) {
  double d = o.num(key);
  if (!(d >= 0) || d > 18446744073709549568.0) throw std::invalid_argument(std::string(key) + " is out of range");
  return static_cast<uint64_t>(d);
}
uint32_t u32Of(const Value& o, const char* key) {
  double d = o.num(key);
  if (!(d >= 0) || d > 4294967295.0) throw std::invalid_argument(std::string(key) + " is out of range");
  return static_cast<uint32_t>(d);
}
uint32_t u32Or(const Value& o, const char* key, uint32_t dflt) { return o.has(key) ? u32Of(o, key) : dflt; }
// A probability (0..1) as the kernel's fraction of 2^32-1 (netem's set_percent).
uint32_t fraction(const Value& o, const char* key) {
  double p = o.num(key);
  if (!(p >= 0 && p <= 1)) throw std::invalid_argument(std::string(key) + " must be within 0..1");
  return static_cast<uint32_t>(std::rint(p * UINT32_MAX));
}
const Value& optionsOf(const Value& args) {
  static const Value empty = Value::object();
  const Value* o = args.get("options");
  return o ? *o : empty;
}

// As tc: `replace` of a qdisc swaps whatever hangs at the parent (NLM_F_REPLACE); a class or
// filter is replaced by handle, so CREATE alone means "add or change".
uint16_t flagsFor(uint16_t type, Cmd cmd) {
  switch (cmd) {
    case Cmd::Add: return NLM_F_EXCL | NLM_F_CREATE;
    case Cmd::Replace: return type == RTM_NEWQDISC ? NLM_F_CREATE | NLM_F_REPLACE : NLM_F_CREATE;
    default: return 0;
  }
}

MsgBuilder startMsg(uint16_t type, Cmd cmd, const Value& args, const Names& names, uint32_t handle, uint32_t info) {
  MsgBuilder m(type, flagsFor(type, cmd));
  tcmsg t{};
  t.tcm_family = AF_UNSPEC;
  t.tcm_ifindex = static_cast<int>(args.has("ifindex") ? u32Of(args, "ifindex") : names.index(args.str("dev")));
  t.tcm_handle = handle;
  t.tcm_parent = u32Or(args, "parent", 0);
  t.tcm_info = info;
  m.putHeader(t);
  if (args.has("kind")) m.putStr(TCA_KIND, args.str("kind"));
  return m;
}

// ---- qdisc and class options ----------------------------------------------------------------

void fillHtbQdisc(MsgBuilder& m, const Value& o) {
  tc_htb_glob g{};
  g.version = 3;  // TC_HTB_PROTOVER
  g.rate2quantum = u32Or(o, "r2q", 10);
  g.defcls = u32Or(o, "defcls", 0);
  auto n = m.nestAs(TCA_OPTIONS);
  m.put(TCA_HTB_INIT, &g, sizeof g);
  if (o.has("directQlen")) m.putU32(TCA_HTB_DIRECT_QLEN, u32Of(o, "directQlen"));
}

void fillHtbClass(MsgBuilder& m, const Value& o, const Clock& c) {
  tc_htb_opt opt{};
  std::vector<uint32_t> rtab(256), ctab(256);
  unsigned mtu = u32Or(o, "mtu", 1600);  // an Ethernet frame, as tc assumes
  uint64_t rate = u64Of(o, "rate");
  if (rate == 0) throw std::invalid_argument("rate must be positive");
  uint64_t ceil = o.has("ceil") ? u64Of(o, "ceil") : rate;
  opt.rate.rate = clamp32(rate);
  opt.ceil.rate = clamp32(ceil);
  // As tc: without a burst, the smallest one that still holds an MTU-sized packet.
  uint32_t buffer = o.has("burst") ? u32Of(o, "burst") : static_cast<uint32_t>(rate / c.hz + mtu);
  uint32_t cbuffer = o.has("cburst") ? u32Of(o, "cburst") : static_cast<uint32_t>(ceil / c.hz + mtu);
  opt.prio = u32Or(o, "prio", 0);
  opt.quantum = u32Or(o, "quantum", 0);
  rateTable(c, opt.rate, rtab.data(), mtu, opt.rate.rate);
  opt.buffer = xmittime(c, rate, buffer);
  rateTable(c, opt.ceil, ctab.data(), mtu, opt.ceil.rate);
  opt.cbuffer = xmittime(c, ceil, cbuffer);
  auto n = m.nestAs(TCA_OPTIONS);
  if (rate >= (1ULL << 32)) m.putU64(TCA_HTB_RATE64, rate);
  if (ceil >= (1ULL << 32)) m.putU64(TCA_HTB_CEIL64, ceil);
  m.put(TCA_HTB_PARMS, &opt, sizeof opt);
  m.put(TCA_HTB_RTAB, rtab.data(), 1024);
  m.put(TCA_HTB_CTAB, ctab.data(), 1024);
}

void fillTbf(MsgBuilder& m, const Value& o, const Clock& c) {
  tc_tbf_qopt opt{};
  std::vector<uint32_t> rtab(256), ptab(256);
  uint64_t rate = u64Of(o, "rate");
  uint64_t burst = u64Of(o, "burst");
  if (rate == 0) throw std::invalid_argument("rate must be positive");
  if (burst == 0 || burst >= (1ULL << 32)) throw std::invalid_argument("burst is out of range");
  uint64_t peak = o.has("peakrate") ? u64Of(o, "peakrate") : 0;
  unsigned mtu = u32Or(o, "mtu", 0);
  if (peak && !mtu) throw std::invalid_argument("mtu is required with peakrate");
  opt.rate.rate = clamp32(rate);
  opt.peakrate.rate = clamp32(peak);
  if (o.has("limit")) {
    opt.limit = u32Of(o, "limit");
  } else {
    // As tc: the bytes the bucket can queue during `latency`, plus the bucket itself.
    double lat = u32Of(o, "latency");
    double lim = rate * lat / kUsecPerSec + burst;
    if (peak) {
      double lim2 = peak * lat / kUsecPerSec + mtu;
      if (lim2 < lim) lim = lim2;
    }
    opt.limit = lim > UINT_MAX ? UINT_MAX : static_cast<uint32_t>(lim);
  }
  rateTable(c, opt.rate, rtab.data(), mtu, opt.rate.rate);
  opt.buffer = xmittime(c, opt.rate.rate, burst);
  if (opt.buffer == UINT_MAX) throw std::invalid_argument("burst is too large for this rate");
  if (peak) {
    rateTable(c, opt.peakrate, ptab.data(), mtu, opt.peakrate.rate);
    opt.mtu = xmittime(c, opt.peakrate.rate, mtu);
  }
  auto n = m.nestAs(TCA_OPTIONS);
  m.put(TCA_TBF_PARMS, &opt, sizeof opt);
  m.putU32(TCA_TBF_BURST, static_cast<uint32_t>(burst));
  if (rate >= (1ULL << 32)) m.putU64(TCA_TBF_RATE64, rate);
  m.put(TCA_TBF_RTAB, rtab.data(), 1024);
  if (peak) {
    if (peak >= (1ULL << 32)) m.putU64(TCA_TBF_PRATE64, peak);
    m.putU32(TCA_TBF_PBURST, mtu);
    m.put(TCA_TBF_PTAB, ptab.data(), 1024);
  }
}

// netem's TCA_OPTIONS is its struct followed by attributes, not a plain nest.
void fillNetem(MsgBuilder& m, const Value& o, const Clock& c) {
  tc_netem_qopt opt{};
  opt.limit = u32Or(o, "limit", 1000);
  if (o.has("delay")) opt.latency = time2tick(c, u32Of(o, "delay"));
  if (o.has("jitter")) opt.jitter = time2tick(c, u32Of(o, "jitter"));
  if (o.has("loss")) opt.loss = fraction(o, "loss");
  if (o.has("duplicate")) opt.duplicate = fraction(o, "duplicate");
  opt.gap = u32Or(o, "gap", 0);
  tc_netem_reorder reorder{};
  if (o.has("reorder")) {
    reorder.probability = fraction(o, "reorder");
    if (reorder.probability && !opt.latency) throw std::invalid_argument("reorder needs a delay");
    if (reorder.probability && !opt.gap) opt.gap = 1;
  }
  auto n = m.nestAs(TCA_OPTIONS);
  m.putBody(&opt, sizeof opt);
  if (o.has("reorder")) m.put(TCA_NETEM_REORDER, &reorder, sizeof reorder);
  if (o.has("corrupt")) {
    tc_netem_corrupt cr{};
    cr.probability = fraction(o, "corrupt");
    m.put(TCA_NETEM_CORRUPT, &cr, sizeof cr);
  }
  if (o.has("rate")) {
    uint64_t rate = u64Of(o, "rate");
    tc_netem_rate r{};
    if (rate >= (1ULL << 32)) m.putU64(TCA_NETEM_RATE64, rate);
    r.rate = clamp32(rate);
    m.put(TCA_NETEM_RATE, &r, sizeof r);
  }
}

void fillFqCodel(MsgBuilder& m, const Value& o) {
  auto n = m.nestAs(TCA_OPTIONS);
  if (o.has("limit")) m.putU32(TCA_FQ_CODEL_LIMIT, u32Of(o, "limit"));
  if (o.has("flows")) m.putU32(TCA_FQ_CODEL_FLOWS, u32Of(o, "flows"));
  if (o.has("quantum")) m.putU32(TCA_FQ_CODEL_QUANTUM, u32Of(o, "quantum"));
  if (o.has("interval")) m.putU32(TCA_FQ_CODEL_INTERVAL, u32Of(o, "interval"));
  if (o.has("target")) m.putU32(TCA_FQ_CODEL_TARGET, u32Of(o, "target"));
  if (o.has("ecn")) m.putU32(TCA_FQ_CODEL_ECN, o.flag("ecn") ? 1 : 0);
  if (o.has("ceThreshold")) m.putU32(TCA_FQ_CODEL_CE_THRESHOLD, u32Of(o, "ceThreshold"));
  if (o.has("memoryLimit")) m.putU32(TCA_FQ_CODEL_MEMORY_LIMIT, u32Of(o, "memoryLimit"));
  if (o.has("dropBatch")) m.putU32(TCA_FQ_CODEL_DROP_BATCH_SIZE, u32Of(o, "dropBatch"));
}

// ---- actions --------------------------------------------------------------------------------

int32_t controlOf(const Value& o, const char* key, int32_t dflt) {
  return o.has(key) ? static_cast<int32_t>(o.num(key)) : dflt;
}

// The classic policer: a token bucket with its rate table, shared by the police action and
// u32's own TCA_U32_POLICE.
void fillPolice(MsgBuilder& m, uint16_t type, const Value& o, const Clock& c) {
  tc_police p{};
  std::vector<uint32_t> rtab(256), ptab(256);
  uint64_t rate = u64Of(o, "rate");
  uint32_t burst = u32Of(o, "burst");
  uint64_t peak = o.has("peakrate") ? u64Of(o, "peakrate") : 0;
  uint32_t mtu = u32Or(o, "mtu", 0);
  if (peak && !mtu) throw std::invalid_argument("mtu is required with peakrate");
  p.action = controlOf(o, "exceed", TC_POLICE_RECLASSIFY);
  p.rate.rate = clamp32(rate);
  rateTable(c, p.rate, rtab.data(), mtu, rate);
  p.burst = xmittime(c, rate, burst);
  p.mtu = mtu;
  if (peak) {
    p.peakrate.rate = clamp32(peak);
    rateTable(c, p.peakrate, ptab.data(), mtu, peak);
  }
  auto n = m.nestAs(type);
  m.put(TCA_POLICE_TBF, &p, sizeof p);
  m.put(TCA_POLICE_RATE, rtab.data(), 1024);
  if (rate >= (1ULL << 32)) m.putU64(TCA_POLICE_RATE64, rate);
  if (peak) {
    m.put(TCA_POLICE_PEAKRATE, ptab.data(), 1024);
    if (peak >= (1ULL << 32)) m.putU64(TCA_POLICE_PEAKRATE64, peak);
  }
  if (o.has("conform")) m.putU32(TCA_POLICE_RESULT, static_cast<uint32_t>(controlOf(o, "conform", 0)));
}

void fillActions(MsgBuilder& m, uint16_t type, const Value& list, const Clock& c, const Names& names) {
  auto outer = m.nestAs(type);
  uint16_t prio = 0;
  for (const Value& a : list.items()) {
    auto one = m.nestAs(++prio);  // actions are numbered from 1 in the order they run
    std::string kind = a.str("kind");
    m.putStr(TCA_ACT_KIND, kind);
    if (kind == "mirred") {
      tc_mirred p{};
      p.eaction = static_cast<int>(u32Of(a, "eaction"));
      bool mirror = p.eaction == TCA_EGRESS_MIRROR || p.eaction == TCA_INGRESS_MIRROR;
      p.action = controlOf(a, "action", mirror ? TC_ACT_PIPE : TC_ACT_STOLEN);
      p.ifindex = a.has("ifindex") ? u32Of(a, "ifindex") : names.index(a.str("dev"));
      auto opts = m.nestAs(TCA_ACT_OPTIONS | NLA_F_NESTED);
      m.put(TCA_MIRRED_PARMS, &p, sizeof p);
    } else if (kind == "police") {
      fillPolice(m, TCA_ACT_OPTIONS | NLA_F_NESTED, a, c);
    } else if (kind == "csum") {
      tc_csum p{};
      p.update_flags = u32Of(a, "flags");
      p.action = controlOf(a, "action", TC_ACT_OK);
      auto opts = m.nestAs(TCA_ACT_OPTIONS | NLA_F_NESTED);
      m.put(TCA_CSUM_PARMS, &p, sizeof p);
    } else if (kind == "gact") {
      tc_gact p{};
      p.action = controlOf(a, "action", TC_ACT_OK);
      auto opts = m.nestAs(TCA_ACT_OPTIONS | NLA_F_NESTED);
      m.put(TCA_GACT_PARMS, &p, sizeof p);
    } else {
      throw std::invalid_argument("unknown action kind '" + kind + "'");
    }
  }
}

// ---- filters --------------------------------------------------------------------------------

void fillU32(MsgBuilder& m, const Value& o, const Clock& c, const Names& names) {
  // tc_u32_sel ends in a flexible array of keys: lay both out in one buffer.
  const Value* keys = o.get("keys");
  size_t nkeys = keys ? keys->size() : 0;
  if (nkeys > 128) throw std::invalid_argument("match has more than 128 keys");
  std::vector<uint8_t> buf(sizeof(tc_u32_sel) + nkeys * sizeof(tc_u32_key), 0);
  tc_u32_sel sel{};
  for (size_t i = 0; i < nkeys; i++) {
    const Value& k = keys->items()[i];
    int32_t off = static_cast<int32_t>(k.num("off"));
    if (off % 4) throw std::invalid_argument("match offset must be a multiple of 4");
    uint32_t mask = u32Of(k, "mask");
    tc_u32_key key{};
    key.mask = htonl(mask);
    key.val = htonl(u32Of(k, "val") & mask);
    key.off = off;
    key.offmask = static_cast<int>(k.num("offmask", 0));
    memcpy(buf.data() + sizeof(tc_u32_sel) + i * sizeof(tc_u32_key), &key, sizeof key);
  }
  sel.nkeys = static_cast<unsigned char>(nkeys);
  bool hasActions = o.has("actions") && o.get("actions")->size() > 0;
  // A filter that classifies, polices or acts ends the match (TC_U32_TERMINAL), as tc sets it.
  if (o.has("classid") || hasActions || o.has("police")) sel.flags |= TC_U32_TERMINAL;
  auto n = m.nestAs(TCA_OPTIONS);
  if (o.has("police")) fillPolice(m, TCA_U32_POLICE, *o.get("police"), c);
  if (hasActions) fillActions(m, TCA_U32_ACT, *o.get("actions"), c, names);
  if (o.has("classid")) m.putU32(TCA_U32_CLASSID, u32Of(o, "classid"));
  memcpy(buf.data(), &sel, sizeof sel);
  m.put(TCA_U32_SEL, buf.data(), buf.size());
}

void fillMatchall(MsgBuilder& m, const Value& o, const Clock& c, const Names& names) {
  auto n = m.nestAs(TCA_OPTIONS);
  if (o.has("actions") && o.get("actions")->size() > 0) fillActions(m, TCA_MATCHALL_ACT, *o.get("actions"), c, names);
  if (o.has("classid")) m.putU32(TCA_MATCHALL_CLASSID, u32Of(o, "classid"));
}

// ---- decoding -------------------------------------------------------------------------------

std::string hex(uint32_t v) {
  char b[16];
  snprintf(b, sizeof b, "%x", v);
  return b;
}

void putRate(Value& v, const char* key, uint64_t bytesPerSec) { v.set(key, static_cast<double>(bytesPerSec)); }

Value decodeStats(const AttrTable& tb) {
  Value s = Value::object();
  if (const Attr* st2 = tb[TCA_STATS2]) {
    AttrTable t(*st2, TCA_STATS_MAX);
    gnet_stats_basic b{};
    if (t[TCA_STATS_BASIC] && t[TCA_STATS_BASIC]->as(b)) {
      s.set("bytes", static_cast<double>(b.bytes));
      s.set("packets", b.packets);
    }
    gnet_stats_queue q{};
    if (t[TCA_STATS_QUEUE] && t[TCA_STATS_QUEUE]->as(q)) {
      s.set("drops", q.drops);
      s.set("overlimits", q.overlimits);
      s.set("requeues", q.requeues);
      s.set("qlen", q.qlen);
      s.set("backlog", q.backlog);
    }
  } else if (const Attr* st = tb[TCA_STATS]) {
    tc_stats o{};
    if (st->as(o)) {
      s.set("bytes", static_cast<double>(o.bytes));
      s.set("packets", o.packets);
      s.set("drops", o.drops);
      s.set("overlimits", o.overlimits);
      s.set("qlen", o.qlen);
      s.set("backlog", o.backlog);
    }
  }
  return s;
}

void decodeHtbQdisc(const Attr& opts, Value& out) {
  AttrTable t(opts, TCA_HTB_MAX);
  tc_htb_glob g{};
  if (t[TCA_HTB_INIT] && t[TCA_HTB_INIT]->as(g)) {
    out.set("r2q", g.rate2quantum);
    out.set("default", "0x" + hex(g.defcls));
    out.set("directPacketsStat", g.direct_pkts);
  }
  if (t[TCA_HTB_DIRECT_QLEN] && t[TCA_HTB_DIRECT_QLEN]->len >= 4) out.set("directQlen", t[TCA_HTB_DIRECT_QLEN]->u32());
}

void decodeHtbClass(const Attr& opts, Value& out, const Clock& c) {
  AttrTable t(opts, TCA_HTB_MAX);
  tc_htb_opt o{};
  if (!t[TCA_HTB_PARMS] || !t[TCA_HTB_PARMS]->as(o)) return;
  uint64_t rate = o.rate.rate, ceil = o.ceil.rate;
  if (t[TCA_HTB_RATE64] && t[TCA_HTB_RATE64]->len >= 8) rate = t[TCA_HTB_RATE64]->u64();
  if (t[TCA_HTB_CEIL64] && t[TCA_HTB_CEIL64]->len >= 8) ceil = t[TCA_HTB_CEIL64]->u64();
  putRate(out, "rate", rate);
  putRate(out, "ceil", ceil);
  out.set("burst", static_cast<double>(xmitsize(c, rate, o.buffer)));
  out.set("cburst", static_cast<double>(xmitsize(c, ceil, o.cbuffer)));
  out.set("prio", o.prio);
  out.set("quantum", o.quantum);
  out.set("level", o.level);
}

void decodeTbf(const Attr& opts, Value& out, const Clock& c) {
  AttrTable t(opts, TCA_TBF_MAX);
  tc_tbf_qopt o{};
  if (!t[TCA_TBF_PARMS] || !t[TCA_TBF_PARMS]->as(o)) return;
  uint64_t rate = o.rate.rate, peak = o.peakrate.rate;
  if (t[TCA_TBF_RATE64] && t[TCA_TBF_RATE64]->len >= 8) rate = t[TCA_TBF_RATE64]->u64();
  if (t[TCA_TBF_PRATE64] && t[TCA_TBF_PRATE64]->len >= 8) peak = t[TCA_TBF_PRATE64]->u64();
  putRate(out, "rate", rate);
  out.set("burst", static_cast<double>(xmitsize(c, rate, o.buffer)));
  out.set("limit", o.limit);
  if (peak) {
    putRate(out, "peakrate", peak);
    out.set("mtu", static_cast<double>(xmitsize(c, peak, o.mtu)));
  }
}

void decodeNetem(const Attr& opts, Value& out, const Clock& c) {
  tc_netem_qopt o{};
  if (!opts.as(o)) return;
  out.set("limit", o.limit);
  double frac = 1.0 / UINT32_MAX;
  if (o.latency) out.set("delay", std::round(tick2time(c, o.latency)));
  if (o.jitter) out.set("jitter", std::round(tick2time(c, o.jitter)));
  if (o.loss) out.set("loss", o.loss * frac);
  if (o.duplicate) out.set("duplicate", o.duplicate * frac);
  if (o.gap) out.set("gap", o.gap);
  // Attributes follow the struct, aligned.
  size_t skip = nlAlign(sizeof o);
  if (opts.len <= skip) return;
  AttrTable t(opts.data + skip, opts.len - skip, TCA_NETEM_MAX);
  if (t[TCA_NETEM_LATENCY64] && t[TCA_NETEM_LATENCY64]->len >= 8) out.set("delay", std::round(static_cast<double>(t[TCA_NETEM_LATENCY64]->u64()) / 1000));
  if (t[TCA_NETEM_JITTER64] && t[TCA_NETEM_JITTER64]->len >= 8) out.set("jitter", std::round(static_cast<double>(t[TCA_NETEM_JITTER64]->u64()) / 1000));
  tc_netem_reorder r{};
  if (t[TCA_NETEM_REORDER] && t[TCA_NETEM_REORDER]->as(r) && r.probability) out.set("reorder", r.probability * frac);
  tc_netem_corrupt cr{};
  if (t[TCA_NETEM_CORRUPT] && t[TCA_NETEM_CORRUPT]->as(cr) && cr.probability) out.set("corrupt", cr.probability * frac);
  tc_netem_rate rt{};
  if (t[TCA_NETEM_RATE] && t[TCA_NETEM_RATE]->as(rt)) {
    uint64_t rate = rt.rate;
    if (t[TCA_NETEM_RATE64] && t[TCA_NETEM_RATE64]->len >= 8) rate = t[TCA_NETEM_RATE64]->u64();
    putRate(out, "rate", rate);
  }
}

void decodeFqCodel(const Attr& opts, Value& out) {
  AttrTable t(opts, TCA_FQ_CODEL_MAX);
  auto u = [&](uint16_t type, const char* key) {
    if (t[type] && t[type]->len >= 4) out.set(key, t[type]->u32());
  };
  u(TCA_FQ_CODEL_LIMIT, "limit");
  u(TCA_FQ_CODEL_FLOWS, "flows");
  u(TCA_FQ_CODEL_QUANTUM, "quantum");
  u(TCA_FQ_CODEL_TARGET, "target");
  u(TCA_FQ_CODEL_INTERVAL, "interval");
  u(TCA_FQ_CODEL_MEMORY_LIMIT, "memoryLimit");
  u(TCA_FQ_CODEL_DROP_BATCH_SIZE, "dropBatch");
  u(TCA_FQ_CODEL_CE_THRESHOLD, "ceThreshold");
  if (t[TCA_FQ_CODEL_ECN] && t[TCA_FQ_CODEL_ECN]->len >= 4) out.set("ecn", t[TCA_FQ_CODEL_ECN]->u32() != 0);
}

const char* controlName(int a) {
  switch (a) {
    case TC_ACT_UNSPEC: return "continue";  // TC_ACT_UNSPEC is printed as continue by tc
    case TC_ACT_OK: return "pass";
    case TC_ACT_RECLASSIFY: return "reclassify";
    case TC_ACT_SHOT: return "drop";
    case TC_ACT_PIPE: return "pipe";
    case TC_ACT_STOLEN: return "stolen";
    default: return "other";
  }
}

Value decodePoliceAttrs(const Attr& nest, const Clock& c) {
  Value v = Value::object();
  v.set("kind", "police");
  AttrTable t(nest, TCA_POLICE_MAX);
  tc_police p{};
  if (t[TCA_POLICE_TBF] && t[TCA_POLICE_TBF]->as(p)) {
    uint64_t rate = p.rate.rate;
    if (t[TCA_POLICE_RATE64] && t[TCA_POLICE_RATE64]->len >= 8) rate = t[TCA_POLICE_RATE64]->u64();
    putRate(v, "rate", rate);
    v.set("burst", static_cast<double>(xmitsize(c, rate, p.burst)));
    if (p.mtu) v.set("mtu", p.mtu);
    v.set("exceed", controlName(p.action));
    v.set("index", p.index);
  }
  if (t[TCA_POLICE_RESULT] && t[TCA_POLICE_RESULT]->len >= 4) v.set("conform", controlName(t[TCA_POLICE_RESULT]->s32()));
  return v;
}

Value decodeActions(const Attr& list, const Clock& c, const Names& names) {
  Value out = Value::array();
  AttrIter it(list);
  Attr a;
  while (it.next(a)) {
    AttrTable t(a, TCA_ACT_MAX);
    if (!t[TCA_ACT_KIND]) continue;
    std::string kind = t[TCA_ACT_KIND]->str();
    Value v = Value::object();
    const Attr* opts = t[TCA_ACT_OPTIONS];
    if (kind == "police" && opts) {
      v = decodePoliceAttrs(*opts, c);
    } else {
      v.set("kind", kind);
      if (opts && kind == "mirred") {
        AttrTable o(*opts, TCA_MIRRED_MAX);
        tc_mirred p{};
        if (o[TCA_MIRRED_PARMS] && o[TCA_MIRRED_PARMS]->as(p)) {
          bool egress = p.eaction == TCA_EGRESS_MIRROR || p.eaction == TCA_EGRESS_REDIR;
          bool redirect = p.eaction == TCA_EGRESS_REDIR || p.eaction == TCA_INGRESS_REDIR;
          v.set("direction", egress ? "egress" : "ingress");
          v.set("op", redirect ? "redirect" : "mirror");
          v.set("ifindex", p.ifindex);
          std::string n = names.name(p.ifindex);
          if (!n.empty()) v.set("dev", n);
          v.set("control", controlName(p.action));
          v.set("index", p.index);
        }
      } else if (opts && kind == "csum") {
        AttrTable o(*opts, TCA_CSUM_MAX);
        tc_csum p{};
        if (o[TCA_CSUM_PARMS] && o[TCA_CSUM_PARMS]->as(p)) {
          Value f = Value::array();
          static const std::pair<uint32_t, const char*> bits[] = {
              {TCA_CSUM_UPDATE_FLAG_IPV4HDR, "ip"},   {TCA_CSUM_UPDATE_FLAG_ICMP, "icmp"},
              {TCA_CSUM_UPDATE_FLAG_IGMP, "igmp"},    {TCA_CSUM_UPDATE_FLAG_TCP, "tcp"},
              {TCA_CSUM_UPDATE_FLAG_UDP, "udp"},      {TCA_CSUM_UPDATE_FLAG_UDPLITE, "udplite"},
              {TCA_CSUM_UPDATE_FLAG_SCTP, "sctp"}};
          for (auto& b : bits) if (p.update_flags & b.first) f.push(b.second);
          v.set("update", std::move(f));
          v.set("control", controlName(p.action));
          v.set("index", p.index);
        }
      } else if (opts && kind == "gact") {
        AttrTable o(*opts, TCA_GACT_MAX);
        tc_gact p{};
        if (o[TCA_GACT_PARMS] && o[TCA_GACT_PARMS]->as(p)) {
          v.set("control", controlName(p.action));
          v.set("index", p.index);
        }
      }
    }
    if (const Attr* st = t[TCA_ACT_STATS]) {
      AttrTable s(*st, TCA_STATS_MAX);
      gnet_stats_basic b{};
      if (s[TCA_STATS_BASIC] && s[TCA_STATS_BASIC]->as(b)) {
        Value sv = Value::object();
        sv.set("bytes", static_cast<double>(b.bytes));
        sv.set("packets", b.packets);
        v.set("stats", std::move(sv));
      }
    }
    out.push(std::move(v));
  }
  return out;
}

void decodeU32(const Attr& opts, Value& out, const Clock& c, const Names& names) {
  AttrTable t(opts, TCA_U32_MAX);
  if (const Attr* sel = t[TCA_U32_SEL]; sel && sel->len >= sizeof(tc_u32_sel)) {
    tc_u32_sel s;
    memcpy(&s, sel->data, sizeof s);
    size_t room = (sel->len - sizeof(tc_u32_sel)) / sizeof(tc_u32_key);
    size_t n = s.nkeys < room ? s.nkeys : room;  // never trust nkeys beyond the attribute
    Value keys = Value::array();
    for (size_t i = 0; i < n; i++) {
      tc_u32_key k;
      memcpy(&k, sel->data + sizeof(tc_u32_sel) + i * sizeof(tc_u32_key), sizeof k);
      Value kv = Value::object();
      kv.set("val", ntohl(k.val));
      kv.set("mask", ntohl(k.mask));
      kv.set("off", k.off);
      kv.set("offmask", k.offmask);
      keys.push(std::move(kv));
    }
    out.set("match", std::move(keys));
    out.set("terminal", (s.flags & TC_U32_TERMINAL) != 0);
  }
  if (t[TCA_U32_CLASSID] && t[TCA_U32_CLASSID]->len >= 4) out.set("flowid", handleString(t[TCA_U32_CLASSID]->u32()));
  if (t[TCA_U32_DIVISOR] && t[TCA_U32_DIVISOR]->len >= 4) out.set("divisor", t[TCA_U32_DIVISOR]->u32());
  if (t[TCA_U32_ACT]) out.set("actions", decodeActions(*t[TCA_U32_ACT], c, names));
  if (t[TCA_U32_POLICE]) out.set("police", decodePoliceAttrs(*t[TCA_U32_POLICE], c));
}

void decodeMatchall(const Attr& opts, Value& out, const Clock& c, const Names& names) {
  AttrTable t(opts, TCA_MATCHALL_MAX);
  if (t[TCA_MATCHALL_CLASSID] && t[TCA_MATCHALL_CLASSID]->len >= 4) out.set("flowid", handleString(t[TCA_MATCHALL_CLASSID]->u32()));
  if (t[TCA_MATCHALL_ACT]) out.set("actions", decodeActions(*t[TCA_MATCHALL_ACT], c, names));
}

// The attributes of a tc message, after its tcmsg.
AttrTable tcAttrs(const nlmsghdr* h) {
  const uint8_t* p;
  size_t len;
  if (!familyHeader<tcmsg>(h) || !payloadAfter(h, sizeof(tcmsg), p, len)) throw DecodeError("short tc message");
  return AttrTable(p, len, TCA_MAX);
}

// The parts every tc object shares: device, handle, parent, kind, statistics.
Value decodeCommon(const nlmsghdr* h, const AttrTable& tb, const Names& names) {
  const tcmsg* t = familyHeader<tcmsg>(h);
  Value v = Value::object();
  uint32_t ifi = static_cast<uint32_t>(t->tcm_ifindex);
  v.set("ifindex", ifi);
  std::string n = names.name(ifi);
  if (!n.empty()) v.set("dev", n);
  v.set("kind", tb[TCA_KIND] ? tb[TCA_KIND]->str() : std::string());
  // A qdisc's handle is a major number alone, printed "1:" (and "0:" for the default ones).
  v.set("handle", h->nlmsg_type == RTM_NEWQDISC ? hex(TC_H_MAJ(t->tcm_handle) >> 16) + ":" : handleString(t->tcm_handle));
  v.set("parent", handleString(t->tcm_parent));
  v.set("stats", decodeStats(tb));
  return v;
}

}  // namespace

bool Clock::parse(const std::string& text, Clock& out) {
  unsigned t2us, us2t, res, hz;
  if (sscanf(text.c_str(), "%08x%08x%08x%08x", &t2us, &us2t, &res, &hz) != 4 || !us2t || !res) return false;
  // iproute2's compatibility rule: a 1 GHz clock advertises a tick multiplier that is really 1.
  if (res == 1000000000) t2us = us2t;
  out.clockFactor = static_cast<double>(res) / kUsecPerSec;
  out.tickInUsec = static_cast<double>(t2us) / us2t * out.clockFactor;
  out.hz = res == 1000000 && hz ? hz : 100;
  return true;
}

std::string handleString(uint32_t h) {
  if (h == TC_H_ROOT) return "root";
  if (h == TC_H_UNSPEC) return "none";
  if (TC_H_MAJ(h) == 0) return ":" + hex(TC_H_MIN(h));
  std::string s = hex(TC_H_MAJ(h) >> 16) + ":";
  if (TC_H_MIN(h)) s += hex(TC_H_MIN(h));
  return s;
}

MsgBuilder buildQdisc(Cmd cmd, const Value& args, const Clock& clk, const Names& names) {
  MsgBuilder m = startMsg(cmd == Cmd::Del ? RTM_DELQDISC : RTM_NEWQDISC, cmd, args, names, u32Or(args, "handle", 0), 0);
  if (cmd == Cmd::Del || !args.has("kind")) return m;
  std::string kind = args.str("kind");
  const Value& o = optionsOf(args);
  if (kind == "htb") fillHtbQdisc(m, o);
  else if (kind == "tbf") fillTbf(m, o, clk);
  else if (kind == "netem") fillNetem(m, o, clk);
  else if (kind == "fq_codel") fillFqCodel(m, o);
  else if (kind == "clsact" || kind == "ingress") {}  // no options
  else throw std::invalid_argument("unknown qdisc kind '" + kind + "'");
  return m;
}

MsgBuilder buildClass(Cmd cmd, const Value& args, const Clock& clk, const Names& names) {
  MsgBuilder m = startMsg(cmd == Cmd::Del ? RTM_DELTCLASS : RTM_NEWTCLASS, cmd, args, names, u32Or(args, "classid", 0), 0);
  if (cmd == Cmd::Del || !args.has("kind")) return m;
  std::string kind = args.str("kind");
  if (kind == "htb") fillHtbClass(m, optionsOf(args), clk);
  else throw std::invalid_argument("unknown class kind '" + kind + "'");
  return m;
}

MsgBuilder buildFilter(Cmd cmd, const Value& args, const Clock& clk, const Names& names) {
  uint32_t prio = u32Or(args, "prio", 0);
  if (prio > 0xffff) throw std::invalid_argument("prio is out of range");
  uint32_t proto = u32Or(args, "protocol", 0);
  if (proto > 0xffff) throw std::invalid_argument("protocol is out of range");
  uint32_t info = TC_H_MAKE(prio << 16, htons(static_cast<uint16_t>(proto)));
  MsgBuilder m = startMsg(cmd == Cmd::Del ? RTM_DELTFILTER : RTM_NEWTFILTER, cmd, args, names, u32Or(args, "handle", 0), info);
  if (cmd == Cmd::Del || !args.has("kind")) return m;
  std::string kind = args.str("kind");
  const Value& o = optionsOf(args);
  if (kind == "u32") fillU32(m, o, clk, names);
  else if (kind == "matchall") fillMatchall(m, o, clk, names);
  else throw std::invalid_argument("unknown filter kind '" + kind + "'");
  return m;
}

MsgBuilder buildDump(uint16_t type, uint32_t ifindex, uint32_t parent) {
  MsgBuilder m(type, 0);
  tcmsg t{};
  t.tcm_family = AF_UNSPEC;
  t.tcm_ifindex = static_cast<int>(ifindex);
  t.tcm_parent = parent;
  m.putHeader(t);
  return m;
}

Value decodeQdisc(const nlmsghdr* h, const Clock& clk, const Names& names) {
  AttrTable tb = tcAttrs(h);
  Value v = decodeCommon(h, tb, names);
  std::string kind = v.str("kind", "");
  if (const Attr* o = tb[TCA_OPTIONS]) {
    if (kind == "htb") decodeHtbQdisc(*o, v);
    else if (kind == "tbf") decodeTbf(*o, v, clk);
    else if (kind == "netem") decodeNetem(*o, v, clk);
    else if (kind == "fq_codel") decodeFqCodel(*o, v);
  }
  return v;
}

Value decodeClass(const nlmsghdr* h, const Clock& clk, const Names& names) {
  AttrTable tb = tcAttrs(h);
  Value v = decodeCommon(h, tb, names);
  // A class's handle is its classid.
  if (const Attr* o = tb[TCA_OPTIONS]; o && v.str("kind", "") == "htb") decodeHtbClass(*o, v, clk);
  return v;
}

Value decodeFilter(const nlmsghdr* h, const Clock& clk, const Names& names) {
  AttrTable tb = tcAttrs(h);
  Value v = decodeCommon(h, tb, names);
  const tcmsg* t = familyHeader<tcmsg>(h);
  v.set("prio", TC_H_MAJ(t->tcm_info) >> 16);
  v.set("protocol", ntohs(static_cast<uint16_t>(TC_H_MIN(t->tcm_info))));
  char fh[16];
  snprintf(fh, sizeof fh, "0x%x", t->tcm_handle);
  v.set("handle", fh);
  if (tb[TCA_CHAIN] && tb[TCA_CHAIN]->len >= 4) v.set("chain", tb[TCA_CHAIN]->u32());
  std::string kind = v.str("kind", "");
  if (const Attr* o = tb[TCA_OPTIONS]) {
    if (kind == "u32") decodeU32(*o, v, clk, names);
    else if (kind == "matchall") decodeMatchall(*o, v, clk, names);
  }
  return v;
}

}  // namespace vnl::tc
