// rtnetlink links: the shared decoder (also used by monitors), and native fill hooks for the
// few kinds whose IFLA_INFO_DATA a table cannot describe (veth's peer: an ifinfomsg followed by
// link attributes). Every other kind is its table (lib/kinds/, codec/kind_schema.h).
#pragma once
#include <linux/if_link.h>
#include <linux/rtnetlink.h>

#include <map>
#include <string>

#include "codec/nlmsg.h"
#include "codec/rtnl.h"
#include "codec/value.h"
#include "ops/ops.h"

namespace vnl {

// A fill hook, named by a kind's table (`nativeHook`).
struct LinkKind {
  const char* kind;
  // Appends to IFLA_INFO_DATA for link.add (after the table's fields) from the kind's checked
  // data. Fds the request refers to go in `keep`, which outlives the send.
  void (*fillAdd)(Ctx&, MsgBuilder&, const Value& data, const char* op, std::vector<Fd>& keep);
  // True when fillAdd has something to write for `data`.
  bool (*hasData)(const Value& data);
  bool wants(const Value& data) const { return hasData && hasData(data); }
};

struct LinkKinds {
  static std::map<std::string, const LinkKind*>& all();
  static const LinkKind* find(const std::string& hook);
};

struct LinkKindRegistrar {
  explicit LinkKindRegistrar(const LinkKind* k) { LinkKinds::all()[k->kind] = k; }
};
#define VNL_LINK_KIND(obj) static ::vnl::LinkKindRegistrar VNL_OP_CAT(vnl_kind_reg_, __LINE__)(&obj)

// decodeLink (RTM_NEWLINK/RTM_DELLINK -> Link) is declared in ops/rtnl_decode.h.

// Fills the attributes shared by add and set (mtu, mac, txqueuelen, group, master, alias,
// netns, ...) from a normalized spec.
void fillLinkCommon(Ctx& ctx, MsgBuilder& m, const Value& spec, const char* op, bool create);

// Builds an RTM_NEWLINK create request for one spec (used by add and addMany).
MsgBuilder buildLinkAdd(Ctx& ctx, const Value& spec, const char* op, std::vector<Fd>& keep);

}  // namespace vnl
