// Decodes netlink messages for NODE_DEBUG=vnetlink: header, family header, attributes (nested
// ones when the payload parses as attributes), and for errors the errno and extended ack.
#include "transport/trace.h"

#include <linux/genetlink.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <algorithm>
#include <cctype>
#include <cstring>
#include <map>
#include <mutex>
#include <string>

namespace vnl {

std::atomic<bool> gTrace{false};

namespace {

struct GenlTraceInfo {
  std::string name;
  std::vector<TraceAttrPath> secrets;
};

std::mutex& genlMu() { static std::mutex m; return m; }
// Never freed: a handle thread may trace while the process exits.
std::map<uint16_t, GenlTraceInfo>& genlFamilies() { static auto* m = new std::map<uint16_t, GenlTraceInfo>(); return *m; }

// A copy, so printing runs without the lock.
bool genlInfo(uint16_t id, GenlTraceInfo& out) {
  std::lock_guard<std::mutex> lk(genlMu());
  auto it = genlFamilies().find(id);
  if (it == genlFamilies().end()) return false;
  out = it->second;
  return true;
}

// 0: not on any secret's path; 1: a secret itself; 2: a nest that holds one further down.
int secretness(const std::vector<TraceAttrPath>* secrets, const std::vector<uint16_t>& path) {
  if (!secrets) return 0;
  int best = 0;
  for (const auto& sp : *secrets) {
    if (sp.size() < path.size()) continue;
    bool match = true;
    for (size_t i = 0; i < path.size() && match; i++) match = sp[i] == kTraceAnyAttr || sp[i] == path[i];
    if (!match) continue;
    if (sp.size() == path.size()) return 1;
    best = 2;
  }
  return best;
}

const char* rtmName(uint16_t t) {
  static const char* names[] = {"NEWLINK", "DELLINK", "GETLINK", "SETLINK", "NEWADDR", "DELADDR", "GETADDR", nullptr,
                                "NEWROUTE", "DELROUTE", "GETROUTE", nullptr, "NEWNEIGH", "DELNEIGH", "GETNEIGH", nullptr,
                                "NEWRULE", "DELRULE", "GETRULE", nullptr, "NEWQDISC", "DELQDISC", "GETQDISC", nullptr,
                                "NEWTCLASS", "DELTCLASS", "GETTCLASS", nullptr, "NEWTFILTER", "DELTFILTER", "GETTFILTER"};
  if (t >= RTM_BASE && t - RTM_BASE < sizeof names / sizeof names[0]) return names[t - RTM_BASE];
  return nullptr;
}

const char* nftName(uint16_t m) {
  static const char* names[] = {"NEWTABLE", "GETTABLE", "DELTABLE", "NEWCHAIN", "GETCHAIN", "DELCHAIN", "NEWRULE",
                                "GETRULE", "DELRULE", "NEWSET", "GETSET", "DELSET", "NEWSETELEM", "GETSETELEM",
                                "DELSETELEM", "NEWGEN", "GETGEN", "TRACE", "NEWOBJ", "GETOBJ", "DELOBJ"};
  return m < sizeof names / sizeof names[0] ? names[m] : nullptr;
}

std::string typeName(int proto, uint16_t t) {
  switch (t) {
    case NLMSG_NOOP: return "NLMSG_NOOP";
    case NLMSG_ERROR: return "NLMSG_ERROR";
    case NLMSG_DONE: return "NLMSG_DONE";
    case NLMSG_OVERRUN: return "NLMSG_OVERRUN";
  }
  if (proto == NETLINK_ROUTE) {
    if (const char* n = rtmName(t)) return std::string("RTM_") + n;
  } else if (proto == NETLINK_NETFILTER) {
    if (t == NFNL_MSG_BATCH_BEGIN) return "NFNL_MSG_BATCH_BEGIN";
    if (t == NFNL_MSG_BATCH_END) return "NFNL_MSG_BATCH_END";
    if ((t >> 8) == NFNL_SUBSYS_NFTABLES)
      if (const char* n = nftName(t & 0xff)) return std::string("NFT_MSG_") + n;
    return "NFNL(subsys=" + std::to_string(t >> 8) + " msg=" + std::to_string(t & 0xff) + ")";
  } else if (proto == NETLINK_GENERIC) {
    if (t == GENL_ID_CTRL) return "GENL_CTRL";
    GenlTraceInfo gi;
    if (genlInfo(t, gi)) return "GENL(" + gi.name + ")";
    return "GENL(id=" + std::to_string(t) + ")";
  }
  return "type=" + std::to_string(t);
}

std::string flagNames(uint16_t f, uint16_t type) {
  std::string s;
  auto add = [&](uint16_t bit, const char* name) {
    if (f & bit) { if (!s.empty()) s += ','; s += name; f &= ~bit; }
  };
  add(NLM_F_REQUEST, "REQUEST"); add(NLM_F_MULTI, "MULTI"); add(NLM_F_ACK, "ACK"); add(NLM_F_ECHO, "ECHO");
  add(NLM_F_DUMP_INTR, "DUMP_INTR");
  if (type == NLMSG_ERROR) { add(NLM_F_CAPPED, "CAPPED"); add(NLM_F_ACK_TLVS, "ACK_TLVS"); }
  else if (f & NLM_F_REQUEST || (f & (NLM_F_ROOT | NLM_F_MATCH | NLM_F_REPLACE | NLM_F_EXCL | NLM_F_CREATE | NLM_F_APPEND))) {
    // GET requests use ROOT/MATCH, NEW requests REPLACE/EXCL/CREATE/APPEND on the same bits.
    if (type % 4 == 2 && type >= RTM_BASE) { add(NLM_F_ROOT, "ROOT"); add(NLM_F_MATCH, "MATCH"); }
    else { add(NLM_F_REPLACE, "REPLACE"); add(NLM_F_EXCL, "EXCL"); add(NLM_F_CREATE, "CREATE"); add(NLM_F_APPEND, "APPEND"); }
  }
  if (f) { if (!s.empty()) s += ','; s += "0x" + std::to_string(f); }
  return s.empty() ? "0" : s;
}

// Attributes as type=value: strings when printable and NUL-terminated, small integers, nests
// when NLA_F_NESTED is set or the payload parses exactly as attributes; other bytes in hex.
bool looksLikeAttrs(const uint8_t* p, size_t len) {
  if (len < 4) return false;
  size_t off = 0;
  while (off + 4 <= len) {
    uint16_t l; std::memcpy(&l, p + off, 2);
    if (l < 4 || off + l > len) return false;
    off += NLA_ALIGN(l);
  }
  return off == NLA_ALIGN(len);
}

void attrs(std::string& s, const uint8_t* p, size_t len, int depth, const std::vector<TraceAttrPath>* secrets,
           std::vector<uint16_t>& path) {
  size_t off = 0;
  int count = 0;
  while (off + 4 <= len) {
    uint16_t l, t;
    std::memcpy(&l, p + off, 2);
    std::memcpy(&t, p + off + 2, 2);
    if (l < 4 || off + l > len) { s += " <bad attr>"; return; }
    if (++count > 64) { s += " ..."; return; }
    const uint8_t* d = p + off + 4;
    size_t dl = l - 4;
    s += ' ';
    s += std::to_string(t & NLA_TYPE_MASK);
    path.push_back(t & NLA_TYPE_MASK);
    struct Pop { std::vector<uint16_t>& p; ~Pop() { p.pop_back(); } } pop{path};
    const int secret = secretness(secrets, path);
    // IFLA_LINKINFO's IFLA_INFO_KIND / IFLA_INFO_SLAVE_KIND: iproute2 sends them without a NUL.
    const bool kindName = !secrets && path.size() == 2 && path[0] == IFLA_LINKINFO && (path[1] == IFLA_INFO_KIND || path[1] == IFLA_INFO_SLAVE_KIND) &&
                          dl > 0 && std::all_of(d, d + dl, [](uint8_t c) { return (c >= 0x20 && c < 0x7f) || c == 0; });
    if (secret == 1) {
      s += "=<secret, " + std::to_string(dl) + " bytes>";
      off += NLA_ALIGN(l);
      continue;
    }
    bool nested = (t & NLA_F_NESTED) || (depth < 4 && dl >= 8 && looksLikeAttrs(d, dl) && !(dl && d[dl - 1] == 0 && std::isprint(d[0])));
    auto printable = [](uint8_t c) { return c >= 0x20 && c < 0x7f; };
    bool str = dl >= 2 && d[dl - 1] == 0 && std::all_of(d, d + dl - 1, printable);
    // IFLA_LINKINFO/IFLA_INFO_KIND goes without its NUL (as iproute2 sends it): still a name,
    // never the number its 4 bytes would make ("veth").
    if (!str && path.size() == 2 && path[0] == IFLA_LINKINFO && path[1] == IFLA_INFO_KIND && dl > 0 && dl < 32 && std::all_of(d, d + dl, printable)) {
      s += "=\""; s.append(reinterpret_cast<const char*>(d), dl); s += '"';
      off += NLA_ALIGN(l);
      continue;
    }
    if (secret == 2 && !(nested && depth < 4)) s += "=<" + std::to_string(dl) + " bytes, holds secrets>";
    else if (kindName) { s += "=\""; s.append(reinterpret_cast<const char*>(d), strnlen(reinterpret_cast<const char*>(d), dl)); s += '"'; }
    else if (str) { s += "=\""; s.append(reinterpret_cast<const char*>(d), dl - 1); s += '"'; }
    else if (nested && depth < 4) { s += '{'; attrs(s, d, dl, depth + 1, secrets, path); s += " }"; }
    else if (dl == 1) s += "=" + std::to_string(d[0]);
    else if (dl == 2) { uint16_t v; std::memcpy(&v, d, 2); s += "=" + std::to_string(v); }
    else if (dl == 4) { uint32_t v; std::memcpy(&v, d, 4); s += "=" + std::to_string(v); }
    else {
      static const char hex[] = "0123456789abcdef";
      s += "=0x";
      for (size_t i = 0; i < dl && i < 32; i++) { s += hex[d[i] >> 4]; s += hex[d[i] & 15]; }
      if (dl > 32) s += "...(" + std::to_string(dl) + " bytes)";
    }
    off += NLA_ALIGN(l);
  }
}

// Bytes of the family header before the attributes.
size_t familyHeader(int proto, uint16_t t) {
  if (proto == NETLINK_NETFILTER) return sizeof(nfgenmsg);
  if (proto == NETLINK_GENERIC) return GENL_HDRLEN;
  if (proto != NETLINK_ROUTE) return 0;
  switch (t) {
    case RTM_NEWLINK: case RTM_DELLINK: case RTM_GETLINK: case RTM_SETLINK: return sizeof(ifinfomsg);
    case RTM_NEWADDR: case RTM_DELADDR: case RTM_GETADDR: return sizeof(ifaddrmsg);
    case RTM_NEWROUTE: case RTM_DELROUTE: case RTM_GETROUTE: case RTM_NEWRULE: case RTM_DELRULE: case RTM_GETRULE: return sizeof(rtmsg);
    case RTM_NEWNEIGH: case RTM_DELNEIGH: case RTM_GETNEIGH: return sizeof(ndmsg);
    case RTM_NEWQDISC: case RTM_DELQDISC: case RTM_GETQDISC: case RTM_NEWTCLASS: case RTM_DELTCLASS: case RTM_GETTCLASS:
    case RTM_NEWTFILTER: case RTM_DELTFILTER: case RTM_GETTFILTER: return sizeof(tcmsg);
  }
  return 0;
}

void one(int proto, const nlmsghdr* h, bool out) {
  std::string s = "VNETLINK " + std::to_string(getpid()) + ": " + (out ? "> " : "< ");
  s += typeName(proto, h->nlmsg_type);
  s += " flags=" + flagNames(h->nlmsg_flags, h->nlmsg_type);
  s += " seq=" + std::to_string(h->nlmsg_seq) + " len=" + std::to_string(h->nlmsg_len);
  const uint8_t* body = reinterpret_cast<const uint8_t*>(h) + NLMSG_HDRLEN;
  size_t blen = h->nlmsg_len - NLMSG_HDRLEN;
  if (h->nlmsg_type == NLMSG_ERROR && blen >= sizeof(int)) {
    int e; std::memcpy(&e, body, sizeof e);
    // As int64: a hostile INT_MIN negated as int overflows.
    const int64_t en = -static_cast<int64_t>(e);
    if (e == 0) s += " ack";
    else {
      s += " errno=" + std::to_string(en);
      const char* m = en > 0 && en < 4096 ? strerrordesc_np(static_cast<int>(en)) : nullptr;
      if (m) s += std::string(" (") + m + ")";
    }
    size_t off = sizeof(int) + ((h->nlmsg_flags & NLM_F_CAPPED) || blen < sizeof(nlmsgerr) ? sizeof(nlmsghdr)
                                                                                              : NLMSG_ALIGN(reinterpret_cast<const nlmsgerr*>(body)->msg.nlmsg_len));
    if ((h->nlmsg_flags & NLM_F_ACK_TLVS) && off < blen) {
      const uint8_t* p = body + off;
      size_t len = blen - off, o = 0;
      while (o + 4 <= len) {
        uint16_t l, t; std::memcpy(&l, p + o, 2); std::memcpy(&t, p + o + 2, 2);
        if (l < 4 || o + l > len) break;
        if (t == NLMSGERR_ATTR_MSG && l > 5) { s += " extack=\""; s.append(reinterpret_cast<const char*>(p + o + 4), strnlen(reinterpret_cast<const char*>(p + o + 4), l - 4)); s += '"'; }
        if (t == NLMSGERR_ATTR_OFFS && l == 8) { uint32_t v; std::memcpy(&v, p + o + 4, 4); s += " extack-offset=" + std::to_string(v); }
        o += NLA_ALIGN(l);
      }
    }
  } else if (h->nlmsg_type == NLMSG_DONE && blen >= sizeof(int)) {
    int e; std::memcpy(&e, body, sizeof e);
    if (e) s += " errno=" + std::to_string(-static_cast<int64_t>(e));
  } else if (h->nlmsg_type >= NLMSG_MIN_TYPE) {
    size_t fh = familyHeader(proto, h->nlmsg_type);
    if (proto == NETLINK_ROUTE && fh == sizeof(ifinfomsg) && blen >= fh) {
      const auto* ifi = reinterpret_cast<const ifinfomsg*>(body);
      s += " ifinfomsg{family=" + std::to_string(ifi->ifi_family) + " index=" + std::to_string(ifi->ifi_index) +
           " flags=" + std::to_string(ifi->ifi_flags) + " change=" + std::to_string(ifi->ifi_change) + "}";
    } else if (proto == NETLINK_NETFILTER && blen >= fh) {
      const auto* g = reinterpret_cast<const nfgenmsg*>(body);
      s += " nfgenmsg{family=" + std::to_string(g->nfgen_family) + " res_id=" + std::to_string(ntohs(g->res_id)) + "}";
    } else if (proto == NETLINK_GENERIC && blen >= fh) {
      const auto* g = reinterpret_cast<const genlmsghdr*>(body);
      s += " genl{cmd=" + std::to_string(g->cmd) + " version=" + std::to_string(g->version) + "}";
    } else if (fh && blen >= fh) {
      s += " hdr(" + std::to_string(fh) + " bytes)";
    }
    GenlTraceInfo gi;
    const bool known = proto == NETLINK_GENERIC && genlInfo(h->nlmsg_type, gi);
    std::vector<uint16_t> path;
    if (blen >= NLMSG_ALIGN(fh) && blen > NLMSG_ALIGN(fh)) {
      s += " attrs:";
      attrs(s, body + NLMSG_ALIGN(fh), blen - NLMSG_ALIGN(fh), 0, known ? &gi.secrets : nullptr, path);
    }
  }
  s += '\n';
  (void)!write(STDERR_FILENO, s.data(), s.size());
}

}  // namespace

void traceGenlFamily(uint16_t id, const std::string& name, const std::vector<TraceAttrPath>& secrets) noexcept {
  try {
    std::lock_guard<std::mutex> lk(genlMu());
    // The table is process-wide and several callers register one family (a bare genl.family
    // lookup knows no secrets, wireguard does): paths only ever accumulate for a family name, so
    // no later registration can uncover a key another one hid.
    auto& fams = genlFamilies();
    auto it = fams.find(id);
    if (it == fams.end() || it->second.name != name) {
      fams[id] = GenlTraceInfo{name, secrets};
      return;
    }
    for (const auto& sp : secrets)
      if (std::find(it->second.secrets.begin(), it->second.secrets.end(), sp) == it->second.secrets.end()) it->second.secrets.push_back(sp);
  } catch (...) {
    // Out of memory: the family's messages then trace as GENL(id=N) with no names.
  }
}

void traceDatagramSlow(int fd, const uint8_t* p, size_t len, bool out) noexcept {
  try {
    int proto = -1;
    socklen_t sl = sizeof proto;
    if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &sl) != 0) proto = -1;
    size_t off = 0;
    for (int n = 0; off + NLMSG_HDRLEN <= len && n < 10000; n++) {
      const auto* h = reinterpret_cast<const nlmsghdr*>(p + off);
      if (h->nlmsg_len < NLMSG_HDRLEN || off + h->nlmsg_len > len) break;
      one(proto, h, out);
      off += NLMSG_ALIGN(h->nlmsg_len);
    }
  } catch (...) {
    // Tracing never changes what the call does.
  }
}

}  // namespace vnl
