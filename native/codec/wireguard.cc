#include "codec/wireguard.h"

#include <endian.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "codec/genl.h"

namespace vnl::wg {

namespace {

size_t attrSize(size_t payload) { return nlAlign(NLA_HDRLEN + payload); }
size_t addrLen(uint8_t family) { return family == AF_INET ? 4 : 16; }
size_t sockaddrLen(uint8_t family) { return family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6); }

size_t allowedIpSize(const AllowedIp& a) {
  return NLA_HDRLEN + attrSize(2) + attrSize(addrLen(a.family)) + attrSize(1);
}

uint32_t peerFlags(const PeerConfig& p) {
  return (p.remove ? uint32_t(WGPEER_F_REMOVE_ME) : 0u) | (p.replaceAllowedIps ? uint32_t(WGPEER_F_REPLACE_ALLOWEDIPS) : 0u);
}

// A peer entry's bytes before its allowed IPs; a continuation carries only the public key.
size_t peerHeadSize(const PeerConfig& p, bool continuation) {
  size_t n = NLA_HDRLEN + attrSize(WG_KEY_LEN);
  if (!continuation) {
    if (peerFlags(p)) n += attrSize(4);
    if (p.presharedKey) n += attrSize(WG_KEY_LEN);
    if (p.endpoint) n += attrSize(sockaddrLen(p.endpoint->family));
    if (p.keepalive) n += attrSize(2);
  }
  if (!p.allowedIps.empty()) n += NLA_HDRLEN;
  return n;
}

void putKey(MsgBuilder& m, uint16_t type, const std::string& key, const char* field) {
  // The value is never put in the message: it may be a private key.
  if (key.size() != WG_KEY_LEN) throw std::invalid_argument(std::string(field) + " must be " + std::to_string(WG_KEY_LEN) + " bytes");
  m.put(type, key.data(), key.size());
}

void putEndpoint(MsgBuilder& m, const Endpoint& e) {
  if (e.family == AF_INET) {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htobe16(e.port);
    memcpy(&sa.sin_addr, e.addr, 4);
    m.put(WGPEER_A_ENDPOINT, &sa, sizeof sa);
  } else if (e.family == AF_INET6) {
    sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    sa.sin6_port = htobe16(e.port);
    memcpy(&sa.sin6_addr, e.addr, 16);
    sa.sin6_scope_id = e.scopeId;
    m.put(WGPEER_A_ENDPOINT, &sa, sizeof sa);
  } else {
    throw std::invalid_argument("endpoint family must be AF_INET or AF_INET6");
  }
}

void putAllowedIp(MsgBuilder& m, const AllowedIp& a) {
  if (a.family != AF_INET && a.family != AF_INET6) throw std::invalid_argument("allowed IP family must be AF_INET or AF_INET6");
  if (a.cidr > (a.family == AF_INET ? 32 : 128)) throw std::invalid_argument("allowed IP prefix length out of range");
  auto entry = m.nest(0);
  m.putU16(WGALLOWEDIP_A_FAMILY, a.family);
  m.put(WGALLOWEDIP_A_IPADDR, a.addr, addrLen(a.family));
  m.putU8(WGALLOWEDIP_A_CIDR_MASK, a.cidr);
}

bool decodeEndpoint(const Attr& a, Endpoint& e) {
  uint16_t fam;
  if (a.len < 2) return false;
  memcpy(&fam, a.data, 2);
  if (fam == AF_INET && a.len >= sizeof(sockaddr_in)) {
    sockaddr_in sa;
    memcpy(&sa, a.data, sizeof sa);
    e.family = AF_INET;
    e.port = be16toh(sa.sin_port);
    memcpy(e.addr, &sa.sin_addr, 4);
    return true;
  }
  if (fam == AF_INET6 && a.len >= sizeof(sockaddr_in6)) {
    sockaddr_in6 sa;
    memcpy(&sa, a.data, sizeof sa);
    e.family = AF_INET6;
    e.port = be16toh(sa.sin6_port);
    memcpy(e.addr, &sa.sin6_addr, 16);
    e.scopeId = sa.sin6_scope_id;
    return true;
  }
  return false;
}

void decodeAllowedIps(const Attr& list, std::vector<AllowedIp>& out) {
  forEachNested(list, WGALLOWEDIP_A_CIDR_MASK, [&](const AttrTable& t) {
    const Attr* fam = t[WGALLOWEDIP_A_FAMILY];
    const Attr* addr = t[WGALLOWEDIP_A_IPADDR];
    const Attr* cidr = t[WGALLOWEDIP_A_CIDR_MASK];
    if (!fam || !addr || !cidr) return;
    AllowedIp a;
    uint16_t f = fam->u16();
    if ((f != AF_INET && f != AF_INET6) || addr->len < addrLen(static_cast<uint8_t>(f))) return;
    a.family = static_cast<uint8_t>(f);
    memcpy(a.addr, addr->data, addrLen(a.family));
    a.cidr = cidr->u8();
    if (a.cidr > (a.family == AF_INET ? 32 : 128)) return;
    out.push_back(a);
  });
}

}  // namespace

const std::vector<std::vector<int>>& secretPaths() {
  static const std::vector<std::vector<int>> paths = {
      {WGDEVICE_A_PRIVATE_KEY},
      {WGDEVICE_A_PEERS, -1, WGPEER_A_PRESHARED_KEY},
  };
  return paths;
}

std::vector<MsgBuilder> encodeSet(uint16_t familyId, const DeviceConfig& c, size_t budget) {
  if (c.ifname.empty() || c.ifname.size() >= 16) throw std::invalid_argument("dev must be 1-15 bytes");
  std::vector<MsgBuilder> out;
  size_t pi = 0, ai = 0;  // the next peer, and the next allowed IP of that peer
  bool first = true;
  do {
    MsgBuilder m = genl::message(familyId, WG_CMD_SET_DEVICE, WG_GENL_VERSION, 0);
    // Attributes in the header's numbering order.
    m.putStr(WGDEVICE_A_IFNAME, c.ifname);
    if (first) {
      if (c.privateKey) putKey(m, WGDEVICE_A_PRIVATE_KEY, *c.privateKey, "privateKey");
      if (c.replacePeers) m.putU32(WGDEVICE_A_FLAGS, WGDEVICE_F_REPLACE_PEERS);
      if (c.listenPort) m.putU16(WGDEVICE_A_LISTEN_PORT, *c.listenPort);
      if (c.fwmark) m.putU32(WGDEVICE_A_FWMARK, *c.fwmark);
    }
    if (pi < c.peers.size()) {
      auto peers = m.nest(WGDEVICE_A_PEERS);
      size_t inThis = 0;
      while (pi < c.peers.size()) {
        const PeerConfig& p = c.peers[pi];
        const bool cont = ai > 0;
        size_t need = peerHeadSize(p, cont) + (ai < p.allowedIps.size() ? allowedIpSize(p.allowedIps[ai]) : 0);
        if (inThis > 0 && m.size() + need > budget) break;
        {
          auto entry = m.nest(0);
          putKey(m, WGPEER_A_PUBLIC_KEY, p.publicKey, "publicKey");
          if (!cont) {
            if (p.presharedKey) putKey(m, WGPEER_A_PRESHARED_KEY, *p.presharedKey, "presharedKey");
            if (uint32_t f = peerFlags(p)) m.putU32(WGPEER_A_FLAGS, f);
            if (p.endpoint) putEndpoint(m, *p.endpoint);
            if (p.keepalive) m.putU16(WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, *p.keepalive);
          }
          if (ai < p.allowedIps.size()) {
            auto list = m.nest(WGPEER_A_ALLOWEDIPS);
            size_t inList = 0;
            while (ai < p.allowedIps.size()) {
              if (inList > 0 && m.size() + allowedIpSize(p.allowedIps[ai]) > budget) break;
              putAllowedIp(m, p.allowedIps[ai]);
              ai++;
              inList++;
            }
          }
        }
        inThis++;
        if (ai < p.allowedIps.size()) break;  // this peer goes on in the next message
        pi++;
        ai = 0;
      }
    }
    out.push_back(std::move(m));
    first = false;
  } while (pi < c.peers.size());
  return out;
}

MsgBuilder encodeGet(uint16_t familyId, const std::string& ifname) {
  MsgBuilder m = genl::message(familyId, WG_CMD_GET_DEVICE, WG_GENL_VERSION, 0);
  m.putStr(WGDEVICE_A_IFNAME, ifname);
  return m;
}

void decodeGetPart(const nlmsghdr* h, Device& dev) {
  genlmsghdr g;
  const uint8_t* p;
  size_t len;
  if (!genl::payload(h, g, p, len)) throw DecodeError("wireguard reply shorter than its headers");
  AttrTable tb(p, len, WGDEVICE_A_PEERS);
  if (const Attr* a = tb[WGDEVICE_A_IFINDEX]) dev.ifindex = a->u32();
  if (const Attr* a = tb[WGDEVICE_A_IFNAME]) dev.ifname = a->str();
  if (const Attr* a = tb[WGDEVICE_A_PRIVATE_KEY]; a && a->len == WG_KEY_LEN) dev.privateKey = a->bytes();
  if (const Attr* a = tb[WGDEVICE_A_PUBLIC_KEY]; a && a->len == WG_KEY_LEN) dev.publicKey = a->bytes();
  if (const Attr* a = tb[WGDEVICE_A_LISTEN_PORT]) dev.listenPort = a->u16();
  if (const Attr* a = tb[WGDEVICE_A_FWMARK]) dev.fwmark = a->u32();
  const Attr* peers = tb[WGDEVICE_A_PEERS];
  if (!peers) return;
  forEachNested(*peers, WGPEER_A_MAX, [&](const AttrTable& pt) {
    const Attr* key = pt[WGPEER_A_PUBLIC_KEY];
    if (!key || key->len != WG_KEY_LEN) return;  // a peer without a key cannot be named
    std::string k = key->bytes();
    // The kernel repeats a peer whose allowed IPs did not fit, right after itself.
    if (dev.peers.empty() || dev.peers.back().publicKey != k) {
      dev.peers.emplace_back();
      dev.peers.back().publicKey = k;
    }
    PeerState& ps = dev.peers.back();
    if (const Attr* a = pt[WGPEER_A_PRESHARED_KEY]; a && a->len == WG_KEY_LEN) ps.presharedKey = a->bytes();
    if (const Attr* a = pt[WGPEER_A_ENDPOINT]) {
      Endpoint e;
      if (decodeEndpoint(*a, e)) ps.endpoint = e;
    }
    if (const Attr* a = pt[WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL]) ps.keepalive = a->u16();
    if (const Attr* a = pt[WGPEER_A_LAST_HANDSHAKE_TIME]; a && a->len >= 16) {
      int64_t ts[2];
      memcpy(ts, a->data, sizeof ts);
      ps.handshakeSec = ts[0];
      ps.handshakeNsec = ts[1];
    }
    if (const Attr* a = pt[WGPEER_A_RX_BYTES]) ps.rxBytes = a->u64();
    if (const Attr* a = pt[WGPEER_A_TX_BYTES]) ps.txBytes = a->u64();
    if (const Attr* a = pt[WGPEER_A_PROTOCOL_VERSION]) ps.protocolVersion = a->u32();
    if (const Attr* a = pt[WGPEER_A_ALLOWEDIPS]) decodeAllowedIps(*a, ps.allowedIps);
  });
}

}  // namespace vnl::wg
