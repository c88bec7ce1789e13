// WireGuard configuration over its generic netlink family: wireguard.set / .get / .encode,
// and genl.family (the resolver itself, for callers and tests). Arguments arrive normalized
// by lib/wireguard.ts: keys as 32-byte buffers, addresses as strings with their family.
#include <arpa/inet.h>
#include <netinet/in.h>

#include <functional>

#include "codec/genl.h"
#include "codec/wireguard.h"
#include "ops/ops.h"

namespace vnl {
namespace {

uint8_t familyOf(const Value& v, const std::string& field) {
  std::string f = v.str("family");
  if (f == "inet") return AF_INET;
  if (f == "inet6") return AF_INET6;
  throw std::invalid_argument(field + ".family must be 'inet' or 'inet6'");
}

void parseAddr(uint8_t fam, const std::string& s, uint8_t* out, const std::string& field) {
  if (inet_pton(fam, s.c_str(), out) != 1) throw std::invalid_argument(field + " is not an address of its family");
}

std::string keyOf(const Value& v, const std::string& key) {
  const std::string& k = v.bytesOf(key);
  if (k.size() != WG_KEY_LEN) throw std::invalid_argument(key + " must be " + std::to_string(WG_KEY_LEN) + " bytes");
  return k;
}

wg::DeviceConfig configOf(const Value& args) {
  wg::DeviceConfig c;
  c.ifname = args.str("dev");
  if (args.has("privateKey")) c.privateKey = keyOf(args, "privateKey");
  if (args.has("listenPort")) c.listenPort = static_cast<uint16_t>(args.u32("listenPort"));
  if (args.has("fwmark")) c.fwmark = args.u32("fwmark");
  c.replacePeers = args.flag("replacePeers");
  if (const Value* peers = args.get("peers")) {
    size_t i = 0;
    for (const Value& pv : peers->items()) {
      const std::string field = "peers[" + std::to_string(i++) + "]";
      wg::PeerConfig p;
      p.publicKey = keyOf(pv, "publicKey");
      if (pv.has("presharedKey")) p.presharedKey = keyOf(pv, "presharedKey");
      if (const Value* e = pv.get("endpoint")) {
        wg::Endpoint ep;
        ep.family = familyOf(*e, field + ".endpoint");
        parseAddr(ep.family, e->str("address"), ep.addr, field + ".endpoint");
        ep.port = static_cast<uint16_t>(e->u32("port"));
        ep.scopeId = e->u32("scopeId", 0);
        p.endpoint = ep;
      }
      if (pv.has("persistentKeepalive")) p.keepalive = static_cast<uint16_t>(pv.u32("persistentKeepalive"));
      p.remove = pv.flag("remove");
      p.replaceAllowedIps = pv.flag("replaceAllowedIps");
      if (const Value* ips = pv.get("allowedIps")) {
        for (const Value& a : ips->items()) {
          wg::AllowedIp ip;
          ip.family = familyOf(a, field + ".allowedIps");
          parseAddr(ip.family, a.str("address"), ip.addr, field + ".allowedIps");
          ip.cidr = static_cast<uint8_t>(a.u32("prefixLen"));
          p.allowedIps.push_back(ip);
        }
      }
      c.peers.push_back(std::move(p));
    }
  }
  return c;
}

std::string addrString(uint8_t fam, const uint8_t* a) {
  char buf[INET6_ADDRSTRLEN] = {0};
  inet_ntop(fam, a, buf, sizeof buf);
  return buf;
}

Value endpointValue(const wg::Endpoint& e) {
  Value v = Value::object();
  v.set("family", e.family == AF_INET ? "inet" : "inet6");
  v.set("address", addrString(e.family, e.addr));
  v.set("port", e.port);
  if (e.scopeId) v.set("scopeId", e.scopeId);
  return v;
}

Value deviceValue(const wg::Device& d, bool secrets) {
  Value v = Value::object();
  v.set("index", d.ifindex);
  v.set("name", d.ifname);
  if (!d.publicKey.empty()) v.set("publicKey", Value::bytes(d.publicKey.data(), d.publicKey.size()));
  v.set("hasPrivateKey", !d.privateKey.empty());
  if (secrets && !d.privateKey.empty()) v.set("privateKey", Value::bytes(d.privateKey.data(), d.privateKey.size()));
  v.set("listenPort", d.listenPort);
  v.set("fwmark", d.fwmark);
  Value peers = Value::array();
  for (const auto& p : d.peers) {
    Value pv = Value::object();
    pv.set("publicKey", Value::bytes(p.publicKey.data(), p.publicKey.size()));
    // The kernel always sends the preshared key to an admin: all zeros means none.
    bool psk = !p.presharedKey.empty() && p.presharedKey != std::string(WG_KEY_LEN, '\0');
    pv.set("hasPresharedKey", psk);
    if (secrets && psk) pv.set("presharedKey", Value::bytes(p.presharedKey.data(), p.presharedKey.size()));
    if (p.endpoint) pv.set("endpoint", endpointValue(*p.endpoint));
    pv.set("persistentKeepalive", p.keepalive);
    pv.set("lastHandshakeSec", static_cast<double>(p.handshakeSec));
    pv.set("lastHandshakeNsec", static_cast<double>(p.handshakeNsec));
    pv.set("rxBytes", static_cast<double>(p.rxBytes));
    pv.set("txBytes", static_cast<double>(p.txBytes));
    pv.set("protocolVersion", p.protocolVersion);
    Value ips = Value::array();
    for (const auto& a : p.allowedIps) {
      Value iv = Value::object();
      iv.set("family", a.family == AF_INET ? "inet" : "inet6");
      iv.set("address", addrString(a.family, a.addr));
      iv.set("prefixLen", a.cidr);
      ips.push(std::move(iv));
    }
    pv.set("allowedIps", std::move(ips));
    peers.push(std::move(pv));
  }
  v.set("peers", std::move(peers));
  return v;
}

const std::vector<TraceAttrPath>& wgSecrets() { return wg::secretPaths(); }

wg::Device getDevice(Ctx& ctx, const std::string& dev, const char* op) {
  return ctx.genl().withFamily(WG_GENL_NAME, op, wgSecrets(), [&](const genl::Family& f) {
    wg::Device d;
    MsgBuilder m = wg::encodeGet(f.id, dev);
    ctx.genl().sock().dump(m, op, [&](const nlmsghdr* h) {
      if (h->nlmsg_type == f.id) wg::decodeGetPart(h, d);
    });
    return d;
  });
}

// A configuration that puts `d` back as it was (for undoing a set cut into several requests).
wg::DeviceConfig restoreConfig(const wg::Device& d) {
  wg::DeviceConfig c;
  c.ifname = d.ifname;
  c.privateKey = d.privateKey.empty() ? std::string(WG_KEY_LEN, '\0') : d.privateKey;
  c.listenPort = d.listenPort;
  c.fwmark = d.fwmark;
  c.replacePeers = true;
  for (const auto& p : d.peers) {
    wg::PeerConfig pc;
    pc.publicKey = p.publicKey;
    pc.presharedKey = p.presharedKey.empty() ? std::string(WG_KEY_LEN, '\0') : p.presharedKey;
    pc.endpoint = p.endpoint;
    pc.keepalive = p.keepalive;
    pc.replaceAllowedIps = true;
    pc.allowedIps = p.allowedIps;
    c.peers.push_back(std::move(pc));
  }
  return c;
}

// Applies `msgs` (one configuration, cut into requests) so that, seen from the caller, it is
// all or nothing: the kernel applies each WG_CMD_SET_DEVICE in steps (fwmark, port, peers
// removed, private key, then peer by peer) and stops at the first that fails, so even a single
// request can leave the device half-changed. The device is read first, and should any request
// fail it is put back as read (a failure of that is not what the caller needs to see: the
// original error is rethrown).
void setAllOrNothing(uint16_t familyId, std::vector<MsgBuilder>& msgs, const std::function<wg::Device()>& get,
                     const std::function<void(MsgBuilder&)>& send) {
  const wg::Device before = get();
  for (auto& m : msgs) {
    try {
      send(m);
    } catch (const SysError&) {
      try {
        for (auto& r : wg::encodeSet(familyId, restoreConfig(before))) send(r);
      } catch (...) {
      }
      throw;
    }
  }
}

// args: { dev, privateKey?, listenPort?, fwmark?, replacePeers?, peers?: [...] }
Value wireguardSet(Ctx& ctx, const Value& args) {
  const char* op = "wireguard.set";
  wg::DeviceConfig c = configOf(args);
  // Keys go only to today's wireguard family: a cached id a module reload handed to another
  // family that happens to take command 1 would take them and answer success, which the
  // stale-id retry cannot see. One CTRL_CMD_GETFAMILY per set is cheap next to the set.
  ctx.genl().refresh(WG_GENL_NAME, op);
  ctx.genl().withFamily(WG_GENL_NAME, op, wgSecrets(), [&](const genl::Family& f) {
    std::vector<MsgBuilder> msgs = wg::encodeSet(f.id, c);
    setAllOrNothing(f.id, msgs, [&] { return getDevice(ctx, c.ifname, op); },
                    [&](MsgBuilder& m) { ctx.genl().sock().request(m, op); });
    return 0;
  });
  return Value();
}

// args: set's, plus { familyId, before: GET_DEVICE reply bytes, failAt, errno }: tests only.
// Runs set's all-or-nothing logic against a fake kernel whose device is `before` and whose
// request number `failAt` (from 0) fails with `errno`; returns every request sent (seq 0).
Value wireguardTestSet(Ctx&, const Value& args) {
  const uint16_t id = static_cast<uint16_t>(args.u32("familyId"));
  const std::string& raw = args.bytesOf("before");
  std::vector<uint8_t> buf(raw.begin(), raw.end());
  wg::Device before;
  MsgIter it(buf.data(), buf.size());
  while (const nlmsghdr* h = it.next()) wg::decodeGetPart(h, before);
  const uint32_t failAt = args.u32("failAt");
  const int err = static_cast<int>(args.u32("errno"));
  std::vector<MsgBuilder> msgs = wg::encodeSet(id, configOf(args));
  Value sent = Value::array();
  uint32_t n = 0;
  Value out = Value::object();
  try {
    setAllOrNothing(id, msgs, [&] { return before; }, [&](MsgBuilder& m) {
      m.addFlags(NLM_F_REQUEST | NLM_F_ACK);
      m.setSeq(0);
      sent.push(Value::bytes(m.data(), m.size()));
      if (n++ == failAt) throw SysError(err, "wireguard.testSet: the fake kernel refused request " + std::to_string(failAt));
    });
  } catch (const SysError& e) {
    out.set("errno", e.err());
  }
  out.set("sent", std::move(sent));
  return out;
}

// args: { dev, secrets? }
Value wireguardGet(Ctx& ctx, const Value& args) {
  return deviceValue(getDevice(ctx, args.str("dev"), "wireguard.get"), args.flag("secrets"));
}

// args: set's, plus { familyId? }: the requests set would send (seq 0), resolving the family
// only when no id is given.
Value wireguardEncode(Ctx& ctx, const Value& args) {
  uint16_t id = args.has("familyId") ? static_cast<uint16_t>(args.u32("familyId"))
                                     : ctx.genl().family(WG_GENL_NAME, "wireguard.encode", wgSecrets()).id;
  Value out = Value::array();
  for (auto& m : wg::encodeSet(id, configOf(args))) {
    m.addFlags(NLM_F_REQUEST | NLM_F_ACK);
    out.push(Value::bytes(m.data(), m.size()));
  }
  return out;
}

// args: { bytes }: decodes GET_DEVICE reply messages (all of one dump) as wireguard.get would.
Value wireguardDecode(Ctx&, const Value& args) {
  const std::string& raw = args.bytesOf("bytes");
  std::vector<uint8_t> buf(raw.begin(), raw.end());
  wg::Device d;
  MsgIter it(buf.data(), buf.size());
  while (const nlmsghdr* h = it.next())
    if (h->nlmsg_type >= NLMSG_MIN_TYPE) wg::decodeGetPart(h, d);
  return deviceValue(d, args.flag("secrets"));
}

Value familyValue(const genl::Family& f) {
  Value v = Value::object();
  v.set("name", f.name);
  v.set("id", f.id);
  v.set("version", f.version);
  v.set("hdrSize", f.hdrSize);
  v.set("maxAttr", f.maxAttr);
  Value g = Value::object();
  for (const auto& [name, id] : f.mcastGroups) g.set(name, id);
  v.set("mcastGroups", std::move(g));
  return v;
}

// args: { name }. Always asks the controller: a caller asking for the id wants today's, and a
// cached one may be stale (the module reloaded since); the answer refreshes the cache.
Value genlFamily(Ctx& ctx, const Value& args) {
  return familyValue(ctx.genl().refresh(args.str("name"), "genl.family"));
}

// args: { name, id }: tests only, makes the handle's cache hold a stale id for `name`.
Value genlPoisonCache(Ctx& ctx, const Value& args) {
  ctx.genl().setCachedIdForTest(args.str("name"), static_cast<uint16_t>(args.u32("id")));
  return Value();
}

// args: { name }: the CTRL_CMD_GETFAMILY request genl.family sends (seq 0).
Value genlEncode(Ctx&, const Value& args) {
  MsgBuilder m = genl::getFamily(args.str("name"));
  m.addFlags(NLM_F_REQUEST | NLM_F_ACK);
  return Value::bytes(m.data(), m.size());
}

// args: { bytes }: decodes controller replies.
Value genlDecode(Ctx&, const Value& args) {
  const std::string& raw = args.bytesOf("bytes");
  std::vector<uint8_t> buf(raw.begin(), raw.end());
  Value out = Value::array();
  MsgIter it(buf.data(), buf.size());
  while (const nlmsghdr* h = it.next()) {
    genl::Family f;
    if (genl::decodeFamily(h, f)) out.push(familyValue(f));
  }
  return out;
}

}  // namespace

VNL_OP("wireguard.set", wireguardSet);
VNL_OP("wireguard.get", wireguardGet);
VNL_OP("wireguard.encode", wireguardEncode);
VNL_OP("wireguard.decode", wireguardDecode);
VNL_OP("wireguard.testSet", wireguardTestSet);
VNL_OP("genl.family", genlFamily);
VNL_OP("genl.encode", genlEncode);
VNL_OP("genl.testPoisonCache", genlPoisonCache);
VNL_OP("genl.decode", genlDecode);

}  // namespace vnl
