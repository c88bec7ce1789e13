// The WireGuard generic netlink family (linux/wireguard.h, WG_GENL_VERSION 1): device
// configuration in (WG_CMD_SET_DEVICE), state out (WG_CMD_GET_DEVICE dumps). Building and
// parsing only; the family id comes from the transport's resolver.
#pragma once
#include <linux/wireguard.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "codec/nlmsg.h"

namespace vnl::wg {

// An address and port as the kernel carries them (struct sockaddr_in or sockaddr_in6).
struct Endpoint {
  uint8_t family = 0;  // AF_INET or AF_INET6
  uint8_t addr[16]{};  // 4 bytes used for AF_INET
  uint16_t port = 0;
  uint32_t scopeId = 0;
};

struct AllowedIp {
  uint8_t family = 0;
  uint8_t addr[16]{};
  uint8_t cidr = 0;
};

struct PeerConfig {
  std::string publicKey;                    // WG_KEY_LEN bytes
  std::optional<std::string> presharedKey;  // all zeros removes it
  std::optional<Endpoint> endpoint;
  std::optional<uint16_t> keepalive;        // seconds, 0 disables
  bool remove = false;
  bool replaceAllowedIps = false;
  std::vector<AllowedIp> allowedIps;
};

struct DeviceConfig {
  std::string ifname;
  std::optional<std::string> privateKey;    // all zeros removes it
  std::optional<uint16_t> listenPort;       // 0: the kernel picks one
  std::optional<uint32_t> fwmark;           // 0 disables
  bool replacePeers = false;
  std::vector<PeerConfig> peers;
};

struct PeerState {
  std::string publicKey, presharedKey;      // presharedKey: empty when the kernel sent none
  std::optional<Endpoint> endpoint;
  uint16_t keepalive = 0;
  int64_t handshakeSec = 0, handshakeNsec = 0;  // 0: never
  uint64_t rxBytes = 0, txBytes = 0;
  uint32_t protocolVersion = 0;
  std::vector<AllowedIp> allowedIps;
};

struct Device {
  uint32_t ifindex = 0;
  std::string ifname, privateKey, publicKey;  // keys empty when not sent (no key set)
  uint16_t listenPort = 0;
  uint32_t fwmark = 0;
  std::vector<PeerState> peers;
};

// Attribute paths of secrets (private and preshared keys), for traces; the same in both
// directions. Each is a list of attribute types from the top, -1 for "any list entry".
const std::vector<std::vector<int>>& secretPaths();

// The requests that apply `c`, in order. One message unless the peers and allowed IPs need
// more than `budget` bytes: then later messages carry only WGDEVICE_A_IFNAME and the peers
// that follow (a peer cut in two repeats its public key, without flags, so its allowed IPs
// are appended), as the uapi header prescribes. nlmsg flags and seq are the transport's.
constexpr size_t kSetBudget = 32 * 1024;
std::vector<MsgBuilder> encodeSet(uint16_t familyId, const DeviceConfig& c, size_t budget = kSetBudget);

// The WG_CMD_GET_DEVICE dump request for one device by name.
MsgBuilder encodeGet(uint16_t familyId, const std::string& ifname);

// Adds one message of a GET_DEVICE dump to `dev`: device attributes where present, peers
// appended, a peer repeated right after itself (the kernel continues a long allowed-IP list
// in the next message) coalesced. Throws CodecError on a malformed message.
void decodeGetPart(const nlmsghdr* h, Device& dev);

}  // namespace vnl::wg
