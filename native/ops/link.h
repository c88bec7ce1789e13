// rtnetlink links: the shared decoder (also used by monitors) and the per-kind plug-ins
// that fill and decode IFLA_INFO_DATA. Each kind lives in its own file and registers itself.
#pragma once
#include <linux/if_link.h>
#include <linux/rtnetlink.h>

#include <map>
#include <string>

#include "codec/nlmsg.h"
#include "codec/value.h"
#include "ops/ops.h"
#include "ops/rtnl_decode.h"

namespace vnl {

struct LinkKind {
  const char* kind;
  // Fills IFLA_INFO_DATA for link.add from the normalized spec (called inside IFLA_LINKINFO,
  // after IFLA_INFO_KIND). Fds the request refers to go in `keep`, which outlives the send.
  // May be null when the kind takes no data.
  void (*fillAdd)(Ctx&, MsgBuilder&, const Value& spec, const char* op, std::vector<Fd>& keep);
  // Fills IFLA_INFO_DATA for link.set; `changes` holds only kind-specific fields. May be null.
  void (*fillChange)(Ctx&, MsgBuilder&, const Value& changes, const char* op);
  // Decodes IFLA_INFO_DATA into `info`. May be null.
  void (*decode)(const Attr& data, Value& info);
};

// Decodes the port side (IFLA_INFO_SLAVE_DATA) for a master kind, e.g. bridge ports.
struct SlaveKind {
  const char* kind;
  void (*decode)(const Attr& data, Value& port);
};

struct LinkKinds {
  static std::map<std::string, const LinkKind*>& all();
  static std::map<std::string, const SlaveKind*>& slaves();
  static const LinkKind* find(const std::string& kind);
};

struct LinkKindRegistrar {
  explicit LinkKindRegistrar(const LinkKind* k) { LinkKinds::all()[k->kind] = k; }
  explicit LinkKindRegistrar(const SlaveKind* k) { LinkKinds::slaves()[k->kind] = k; }
};
#define VNL_LINK_KIND(obj) static ::vnl::LinkKindRegistrar VNL_OP_CAT(vnl_kind_reg_, __LINE__)(&obj)

// decodeLink (RTM_NEWLINK/RTM_DELLINK -> Link) is declared in ops/rtnl_decode.h.

// Fills the attributes shared by add and set (mtu, mac, txqueuelen, group, master, alias,
// netns, ...) from a normalized spec.
void fillLinkCommon(Ctx& ctx, MsgBuilder& m, const Value& spec, const char* op, bool create);

// Builds an RTM_NEWLINK create request for one spec (used by add and addMany).
MsgBuilder buildLinkAdd(Ctx& ctx, const Value& spec, const char* op, std::vector<Fd>& keep);

}  // namespace vnl
