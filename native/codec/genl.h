// Generic netlink (linux/genetlink.h): a genlmsghdr (command, version) follows the nlmsghdr,
// and families get their message type from the controller, found by name. Building and
// parsing only, no I/O: the transport asks, this file says what to send and what came back.
#pragma once
#include <linux/genetlink.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "codec/nlmsg.h"

namespace vnl::genl {

// One family as the controller describes it (CTRL_CMD_NEWFAMILY).
struct Family {
  std::string name;
  uint16_t id = 0;          // the nlmsg_type of its messages
  uint32_t version = 0;
  uint32_t hdrSize = 0;     // bytes of family header after the genlmsghdr
  uint32_t maxAttr = 0;
  std::vector<std::pair<std::string, uint32_t>> mcastGroups;  // name -> group id
};

// A message to family `id`: nlmsghdr + genlmsghdr{cmd, version}.
MsgBuilder message(uint16_t id, uint8_t cmd, uint8_t version, uint16_t flags);

// CTRL_CMD_GETFAMILY by name, as libmnl-based tools send it (controller version 1). The
// transport adds NLM_F_REQUEST|NLM_F_ACK.
MsgBuilder getFamily(const std::string& name);

// The genlmsghdr of a message and the attributes after it (and after `hdrSize` more bytes of
// family header). False when the message is too short to hold them.
bool payload(const nlmsghdr* h, genlmsghdr& g, const uint8_t*& attrs, size_t& len, size_t hdrSize = 0);

// Decodes a controller reply. False when it is not a NEWFAMILY message or lacks the id/name.
bool decodeFamily(const nlmsghdr* h, Family& out);

}  // namespace vnl::genl
