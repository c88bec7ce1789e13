#include "codec/rtnl_event.h"

#include <linux/neighbour.h>
#include <linux/rtnetlink.h>

#include <utility>

#include "codec/rtnl.h"

namespace vnl {

MsgBuilder RtnlEvents::dumpRequest(uint16_t type, uint8_t family) {
  MsgBuilder m(type, NLM_F_REQUEST | NLM_F_DUMP);
  if (type == RTM_GETLINK) { ifinfomsg h{}; h.ifi_family = family; m.putHeader(h); }
  else if (type == RTM_GETADDR) { ifaddrmsg h{}; h.ifa_family = family; m.putHeader(h); }
  else if (type == RTM_GETROUTE) { rtmsg h{}; h.rtm_family = family; m.putHeader(h); }
  else { ndmsg h{}; h.ndm_family = family; m.putHeader(h); }
  return m;
}

void RtnlEvents::decodeDumped(const nlmsghdr* h, std::vector<Value>& out) const {
  try {
    switch (h->nlmsg_type) {
      case RTM_NEWLINK: {
        const ifinfomsg* ifi = familyHeader<ifinfomsg>(h);
        if (ifi && ifi->ifi_family == AF_UNSPEC) out.push_back(decodeLink(h, resolve_));
        break;
      }
      case RTM_NEWADDR: {
        const ifaddrmsg* a = familyHeader<ifaddrmsg>(h);
        if (a && f_.familyOk(a->ifa_family)) out.push_back(decodeAddr(h, resolve_));
        break;
      }
      case RTM_NEWROUTE: {
        const rtmsg* r = familyHeader<rtmsg>(h);
        if (r && f_.familyOk(r->rtm_family)) out.push_back(decodeRoute(h, resolve_));
        break;
      }
      case RTM_NEWNEIGH: {
        const ndmsg* nd = familyHeader<ndmsg>(h);
        if (nd && f_.familyOk(nd->ndm_family)) out.push_back(decodeNeigh(h, resolve_));
        break;
      }
    }
  } catch (const CodecError&) {
    // a malformed message is skipped, never fatal
  }
}

// An interface index as the kernel's replies carry it (ifi_index is a signed int): a value
// outside uint32 (a malformed reply) names no link, rather than being cast (undefined).
static bool asIndex(double d, uint32_t& out) {
  if (!(d >= 0 && d <= 4294967295.0)) return false;
  out = static_cast<uint32_t>(d);
  return true;
}

void RtnlEvents::learnLinks(std::vector<Value>& links) {
  names_.clear();
  for (auto& l : links) {
    // A dump holding another table's message (a hostile reply) has no index: not a link.
    const Value* v = l.get("index");
    uint32_t ix;
    if (v && v->isNumber() && asIndex(v->number(), ix)) names_[ix] = l.str("name", "");
  }
  // A Value cannot be decoded again, so fill in the names the first pass could not know.
  for (auto& l : links) {
    uint32_t ix;
    if (const Value* mi = l.get("masterIndex"); mi && mi->isNumber() && !l.has("master") && asIndex(mi->number(), ix)) {
      auto it = names_.find(ix);
      if (it != names_.end()) l.set("master", it->second);
    }
    if (const Value* pi = l.get("linkIndex"); pi && pi->isNumber() && !l.has("link") && !l.has("linkNetnsId") && asIndex(pi->number(), ix)) {
      auto it = names_.find(ix);
      if (it != names_.end()) l.set("link", it->second);
    }
  }
}

Value RtnlEvents::snapshot(const char* type, bool existing, std::vector<Value>& links, std::vector<Value>& addrs,
                           std::vector<Value>& routes, std::vector<Value>& neighs) const {
  Value s = Value::object();
  s.set("type", type);
  if (existing) s.set("existing", true);
  auto arr = [](std::vector<Value>& v) { Value a = Value::array(); for (auto& x : v) a.push(std::move(x)); return a; };
  if (f_.link) s.set("links", arr(links));
  if (f_.addr) s.set("addrs", arr(addrs));
  if (f_.route) s.set("routes", arr(routes));
  if (f_.neigh) s.set("neighs", arr(neighs));
  return s;
}

void RtnlEvents::decodeEvent(const nlmsghdr* h, std::vector<Value>& batch) {
  const char* type = nullptr;
  const char* key = nullptr;
  Value obj;
  switch (h->nlmsg_type) {
    case RTM_NEWLINK:
    case RTM_DELLINK: {
      const ifinfomsg* ifi = familyHeader<ifinfomsg>(h);
      // Bridge port notifications (AF_BRIDGE) share the group; `ip monitor link` shows them
      // apart, and they are not Link objects.
      if (!ifi || ifi->ifi_family != AF_UNSPEC) return;
      bool del = h->nlmsg_type == RTM_DELLINK;
      uint32_t idx = static_cast<uint32_t>(ifi->ifi_index);
      // The name map follows link events even when links are not wanted: addr, route and
      // neigh events of links made later are named from it (monitor.open subscribes for it).
      if (!del) {
        const uint8_t* p;
        size_t len;
        if (payloadAfter(h, sizeof(ifinfomsg), p, len)) {
          AttrTable tb(p, len, IFLA_IFNAME);
          if (tb[IFLA_IFNAME]) names_[idx] = tb[IFLA_IFNAME]->str();
        }
      }
      if (!f_.link) {
        if (del) names_.erase(idx);
        return;
      }
      obj = decodeLink(h, resolve_);
      if (del) names_.erase(idx);
      type = del ? "dellink" : "newlink";
      key = "link";
      break;
    }
    case RTM_NEWADDR:
    case RTM_DELADDR: {
      const ifaddrmsg* a = familyHeader<ifaddrmsg>(h);
      if (!a || !f_.familyOk(a->ifa_family) || !f_.addr) return;
      obj = decodeAddr(h, resolve_);
      type = h->nlmsg_type == RTM_NEWADDR ? "newaddr" : "deladdr";
      key = "addr";
      break;
    }
    case RTM_NEWROUTE:
    case RTM_DELROUTE: {
      const rtmsg* r = familyHeader<rtmsg>(h);
      if (!r || !f_.familyOk(r->rtm_family) || !f_.route) return;
      obj = decodeRoute(h, resolve_);
      type = h->nlmsg_type == RTM_NEWROUTE ? "newroute" : "delroute";
      key = "route";
      break;
    }
    case RTM_NEWNEIGH:
    case RTM_DELNEIGH: {
      const ndmsg* nd = familyHeader<ndmsg>(h);
      if (!nd || !f_.familyOk(nd->ndm_family) || !f_.neigh) return;
      obj = decodeNeigh(h, resolve_);
      type = h->nlmsg_type == RTM_NEWNEIGH ? "newneigh" : "delneigh";
      key = "neigh";
      break;
    }
    default:
      return;
  }
  Value ev = Value::object();
  ev.set("type", type);
  ev.set(key, std::move(obj));
  batch.push_back(std::move(ev));
}

void RtnlEvents::decodeDatagram(const uint8_t* p, size_t n, std::vector<Value>& batch) {
  MsgIter it(p, n);
  while (const nlmsghdr* h = it.next()) {
    if (h->nlmsg_pid == portid_ && h->nlmsg_pid != 0) continue;  // a stale dump reply
    try {
      decodeEvent(h, batch);
    } catch (const CodecError&) {
    }
  }
}

void RtnlEvents::existingEvents(const Value& s, std::vector<Value>& batch) {
  auto emit = [&](const char* k, const char* t, const char* key) {
    if (const Value* arr = s.get(k))
      for (const Value& o : arr->items()) {
        Value ev = Value::object();
        ev.set("type", t);
        ev.set("existing", true);
        ev.set(key, o);
        batch.push_back(std::move(ev));
      }
  };
  emit("links", "newlink", "link");
  emit("addrs", "newaddr", "addr");
  emit("routes", "newroute", "route");
  emit("neighs", "newneigh", "neigh");
  Value ev = Value::object();
  ev.set("type", "synced");
  batch.push_back(std::move(ev));
}

Value RtnlEvents::resync(Value r) {
  r.set("reason", "ENOBUFS");
  r.set("message", "the kernel dropped events (receive buffer full); this is the fresh state, re-dumped");
  return r;
}

Value RtnlEvents::errorEvent(int err, const std::string& where) {
  Value ev = Value::object();
  ev.set("type", "error");
  ev.set("errno", err);
  ev.set("where", where);
  return ev;
}

}  // namespace vnl
