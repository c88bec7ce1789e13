// Link kinds described by tables: the one generic encoder and decoder of a kind's
// IFLA_INFO_DATA (and of a port's IFLA_INFO_SLAVE_DATA). The tables are written once, in
// TypeScript (lib/kinds/*.ts), and installed here when the addon loads; every path that
// builds or reads a link (add, set, addMany, encode, get, list, monitor) goes through them.
// No I/O: interface names are resolved through the caller's resolver.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "codec/nlmsg.h"
#include "codec/value.h"

namespace vnl {

struct KindField {
  enum class T { U8, U16, U32, U64, S32, Be16, Be32, Bool8, Bool32, Flag, Bit, Ip, Ip4, Ip6, Mac, String, Ifindex, Struct, MacList, BridgeId };
  std::string key;
  std::string infoKey;            // the decoded key (key unless renamed)
  T type = T::U32;
  uint16_t attr = 0, attr6 = 0;   // attr6: the IPv6 attribute of an `ip` field
  double scale = 0;               // wire units per user unit; decode divides
  std::vector<std::pair<std::string, uint64_t>> names;  // enum values, or bit names when `bits`
  bool bits = false;
  uint32_t bit = 0;               // a `bit` field's bit in its {flags, mask} struct
  int multicast = -1;             // -1: any address; 0/1: decode only (non-)multicast ones
  std::vector<T> members;         // a struct's integers, packed
  std::vector<std::string> infoKeys;
  uint16_t itemAttr = 0;          // maclist: each item's attribute
  bool lead = false;              // maclist: a u32 attribute sent just before the nest
  uint16_t leadAttr = 0;
  uint32_t leadValue = 0;
  bool top = false, readOnly = false, writeOnly = false;
};

struct KindSchema {
  std::string kind;
  std::vector<KindField> fields;
  std::vector<KindField> port;    // IFLA_INFO_SLAVE_DATA of links enslaved to this kind
  std::string hook;               // a native fill hook for what the table cannot say (veth)
  uint16_t maxAttr = 0, maxPortAttr = 0;
};

using KindSchemas = std::map<std::string, KindSchema>;

// Installs the tables (an array of {kind, fields, port?, hook?}), replacing any before.
// Throws std::invalid_argument naming what is malformed.
void setKindSchemas(const Value& tables);
// The installed tables (empty before setKindSchemas); safe from any thread.
std::shared_ptr<const KindSchemas> kindSchemas();
const KindSchema* findKindSchema(const KindSchemas& all, const std::string& kind);

using NameResolver = std::function<uint32_t(const std::string& name)>;

// Appends the fields present in `data` (values checked and converted in TypeScript: enums and
// bits as numbers, scaled integers already scaled) in table order: with `top`, only the
// top-level ones; without, the IFLA_INFO_DATA ones.
void encodeKindFields(MsgBuilder& m, const std::vector<KindField>& fields, const Value& data,
                      const NameResolver& ifindex, bool top);
// True when `data` holds a value for some non-top field (so IFLA_INFO_DATA is worth a nest).
bool hasKindData(const std::vector<KindField>& fields, const Value& data);
// Decodes a nest by the table into `out` (top-level and write-only fields are skipped).
void decodeKindFields(const Attr& nest, const std::vector<KindField>& fields, uint16_t maxAttr, Value& out);

}  // namespace vnl
