// The table-driven link kind codec (see kind_schema.h).
#include "codec/kind_schema.h"
#include "codec/format.h"

#include <arpa/inet.h>
#include <endian.h>
#include <linux/if_link.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <stdexcept>

namespace vnl {
namespace {

std::mutex gMu;
std::shared_ptr<const KindSchemas> gSchemas = std::make_shared<KindSchemas>();

const std::pair<const char*, KindField::T> kTypes[] = {
    {"u8", KindField::T::U8}, {"u16", KindField::T::U16}, {"u32", KindField::T::U32}, {"u64", KindField::T::U64},
    {"s32", KindField::T::S32}, {"be16", KindField::T::Be16}, {"be32", KindField::T::Be32},
    {"bool8", KindField::T::Bool8}, {"bool32", KindField::T::Bool32}, {"flag", KindField::T::Flag},
    {"bit", KindField::T::Bit}, {"ip", KindField::T::Ip}, {"ip4", KindField::T::Ip4}, {"ip6", KindField::T::Ip6},
    {"mac", KindField::T::Mac}, {"string", KindField::T::String}, {"ifindex", KindField::T::Ifindex},
    {"struct", KindField::T::Struct}, {"maclist", KindField::T::MacList}, {"bridgeId", KindField::T::BridgeId}};

KindField::T typeOf(const std::string& s, const std::string& where) {
  for (auto& t : kTypes)
    if (s == t.first) return t.second;
  throw std::invalid_argument(where + ": unknown wire type '" + s + "'");
}

bool isInt(KindField::T t) {
  using T = KindField::T;
  return t == T::U8 || t == T::U16 || t == T::U32 || t == T::U64 || t == T::S32 || t == T::Be16 || t == T::Be32;
}

size_t intSize(KindField::T t) {
  using T = KindField::T;
  switch (t) {
    case T::U8: return 1;
    case T::U16: case T::Be16: return 2;
    case T::U64: return 8;
    default: return 4;
  }
}

uint16_t attrOf(const Value& v, const char* key, const std::string& where) {
  double a = v.num(key, 0);
  if (!(a >= 1 && a <= 0x3fff) || a != std::floor(a)) throw std::invalid_argument(where + ": bad attribute type");
  return static_cast<uint16_t>(a);
}

std::vector<KindField> parseFields(const Value& arr, const std::string& kind, uint16_t& maxAttr) {
  std::vector<KindField> out;
  if (!arr.isArray()) throw std::invalid_argument(kind + ": fields must be an array");
  for (const Value& fv : arr.items()) {
    KindField f;
    f.key = fv.str("key");
    std::string where = kind + "." + f.key;
    f.infoKey = fv.str("infoKey", f.key);
    f.type = typeOf(fv.str("type"), where);
    f.attr = attrOf(fv, "attr", where);
    if (fv.has("attr6")) f.attr6 = attrOf(fv, "attr6", where);
    f.scale = fv.num("scale", 0);
    if (const Value* e = fv.get("enum"))
      for (const Value& n : e->items()) f.names.emplace_back(n.str("name"), static_cast<uint64_t>(n.num("value")));
    if (const Value* b = fv.get("bits")) {
      f.bits = true;
      for (const Value& n : b->items()) f.names.emplace_back(n.str("name"), static_cast<uint64_t>(n.num("value")));
    }
    f.bit = static_cast<uint32_t>(fv.num("bit", 0));
    if (const Value* m = fv.get("multicast")) f.multicast = m->boolean() ? 1 : 0;
    if (const Value* ms = fv.get("members"))
      for (const Value& t : ms->items()) {
        f.members.push_back(typeOf(t.string(), where));
        if (!isInt(f.members.back())) throw std::invalid_argument(where + ": struct members must be integers");
      }
    if (const Value* ik = fv.get("infoKeys"))
      for (const Value& k : ik->items()) f.infoKeys.push_back(k.string());
    if (!f.infoKeys.empty() && f.infoKeys.size() != f.members.size()) throw std::invalid_argument(where + ": infoKeys must match members");
    if (fv.has("itemAttr")) f.itemAttr = attrOf(fv, "itemAttr", where);
    if (const Value* l = fv.get("lead")) {
      if (l->size() != 2) throw std::invalid_argument(where + ": lead must be [attr, value]");
      f.lead = true;
      f.leadAttr = static_cast<uint16_t>(l->items()[0].number());
      f.leadValue = static_cast<uint32_t>(l->items()[1].number());
    }
    f.top = fv.flag("top", false);
    f.readOnly = fv.flag("readOnly", false);
    f.writeOnly = fv.flag("writeOnly", false);
    if (!f.top) maxAttr = std::max(maxAttr, std::max(f.attr, f.attr6));
    out.push_back(std::move(f));
  }
  return out;
}

void putInt(std::string& buf, KindField::T t, uint64_t v) {
  using T = KindField::T;
  uint8_t b[8];
  size_t n = intSize(t);
  if (t == T::Be16) { uint16_t x = htobe16(static_cast<uint16_t>(v)); memcpy(b, &x, 2); }
  else if (t == T::Be32) { uint32_t x = htobe32(static_cast<uint32_t>(v)); memcpy(b, &x, 4); }
  else if (n == 1) b[0] = static_cast<uint8_t>(v);
  else if (n == 2) { uint16_t x = static_cast<uint16_t>(v); memcpy(b, &x, 2); }
  else if (n == 4) { uint32_t x = static_cast<uint32_t>(v); memcpy(b, &x, 4); }
  else memcpy(b, &v, 8);
  buf.append(reinterpret_cast<const char*>(b), n);
}

// A value read off the wire: the caller checked there are intSize(t) bytes at p.
double readInt(KindField::T t, const uint8_t* p) {
  using T = KindField::T;
  switch (t) {
    case T::U8: return p[0];
    case T::U16: { uint16_t x; memcpy(&x, p, 2); return x; }
    case T::Be16: { uint16_t x; memcpy(&x, p, 2); return be16toh(x); }
    case T::Be32: { uint32_t x; memcpy(&x, p, 4); return be32toh(x); }
    case T::S32: { int32_t x; memcpy(&x, p, 4); return x; }
    case T::U64: { uint64_t x; memcpy(&x, p, 8); return static_cast<double>(x); }
    default: { uint32_t x; memcpy(&x, p, 4); return x; }
  }
}

bool allZero(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i]) return false;
  return true;
}

bool multicastAddr(const uint8_t* p, size_t n) { return n == 4 ? (p[0] & 0xf0) == 0xe0 : p[0] == 0xff; }

}  // namespace

void setKindSchemas(const Value& tables) {
  if (!tables.isArray()) throw std::invalid_argument("link kind tables must be an array");
  auto next = std::make_shared<KindSchemas>();
  for (const Value& t : tables.items()) {
    KindSchema k;
    k.kind = t.str("kind");
    k.fields = parseFields(t.req("fields"), k.kind, k.maxAttr);
    if (const Value* p = t.get("port")) k.port = parseFields(*p, k.kind + ".port", k.maxPortAttr);
    k.hook = t.str("hook", "");
    std::string name = k.kind;
    (*next)[name] = std::move(k);
  }
  std::lock_guard<std::mutex> g(gMu);
  gSchemas = std::move(next);
}

std::shared_ptr<const KindSchemas> kindSchemas() {
  std::lock_guard<std::mutex> g(gMu);
  return gSchemas;
}

const KindSchema* findKindSchema(const KindSchemas& all, const std::string& kind) {
  auto it = all.find(kind);
  return it == all.end() ? nullptr : &it->second;
}

bool hasKindData(const std::vector<KindField>& fields, const Value& data) {
  for (const KindField& f : fields)
    if (!f.top && !f.readOnly && data.has(f.key)) return true;
  return false;
}

void encodeKindFields(MsgBuilder& m, const std::vector<KindField>& fields, const Value& data,
                      const NameResolver& ifindex, bool top) {
  using T = KindField::T;
  std::vector<uint16_t> bitAttrsDone;
  for (const KindField& f : fields) {
    if (f.top != top || f.readOnly) continue;
    const Value* v = data.get(f.key);
    if (f.type == T::Bit) {
      // All bits of one {flags, mask} attribute go out together, where its first bit is.
      bool done = false;
      for (uint16_t a : bitAttrsDone) done = done || a == f.attr;
      if (done) continue;
      uint32_t fl[2] = {0, 0};
      for (const KindField& g : fields) {
        if (g.type != T::Bit || g.attr != f.attr) continue;
        if (const Value* gv = data.get(g.key)) {
          fl[1] |= g.bit;
          if (gv->boolean()) fl[0] |= g.bit;
        }
      }
      if (fl[1]) {
        m.put(f.attr, fl, sizeof fl);
        bitAttrsDone.push_back(f.attr);
      }
      continue;
    }
    if (!v) continue;
    if (isInt(f.type)) {
      std::string b;
      putInt(b, f.type, static_cast<uint64_t>(static_cast<int64_t>(v->number())));
      m.put(f.attr, b.data(), b.size());
      continue;
    }
    switch (f.type) {
      case T::Bool8: m.putU8(f.attr, v->boolean() ? 1 : 0); break;
      case T::Bool32: m.putU32(f.attr, v->boolean() ? 1 : 0); break;
      case T::Flag: if (v->boolean()) m.putFlag(f.attr); break;
      case T::Ip: case T::Ip4: case T::Ip6: {
        uint8_t a[16];
        if (inet_pton(AF_INET, v->string().c_str(), a) == 1 && f.type != T::Ip6) m.put(f.attr, a, 4);
        else if (inet_pton(AF_INET6, v->string().c_str(), a) == 1 && f.type != T::Ip4) m.put(f.type == T::Ip ? f.attr6 : f.attr, a, 16);
        else throw std::invalid_argument(f.key + " is not an address of the right family: " + v->string());
        break;
      }
      case T::Mac: m.putBytes(f.attr, parseMac(v->string(), f.key.c_str())); break;
      case T::String: m.putStr(f.attr, v->string()); break;
      case T::Ifindex: m.putU32(f.attr, ifindex(v->string())); break;
      case T::Struct: {
        if (v->size() != f.members.size()) throw std::invalid_argument(f.key + ": wrong number of members");
        std::string b;
        for (size_t i = 0; i < f.members.size(); i++) putInt(b, f.members[i], static_cast<uint64_t>(v->items()[i].number()));
        m.put(f.attr, b.data(), b.size());
        break;
      }
      case T::MacList: {
        if (f.lead) m.putU32(f.leadAttr, f.leadValue);
        auto n = m.nestAs(f.attr);  // a plain nest, as iproute2 sends it
        for (const Value& mac : v->items()) m.putBytes(f.itemAttr, parseMac(mac.string(), f.key.c_str()));
        break;
      }
      default: break;
    }
  }
}

void decodeKindFields(const Attr& nest, const std::vector<KindField>& fields, uint16_t maxAttr, Value& out) {
  using T = KindField::T;
  AttrTable tb(nest, maxAttr);
  for (const KindField& f : fields) {
    if (f.top || f.writeOnly) continue;
    const Attr* a = tb[f.attr];
    if (isInt(f.type)) {
      if (!a || a->len < intSize(f.type)) continue;
      double x = readInt(f.type, a->data);
      if (f.bits) {
        Value names = Value::array();
        for (auto& n : f.names)
          if (static_cast<uint64_t>(x) & n.second) names.push(n.first);
        out.set(f.infoKey, std::move(names));
      } else if (!f.names.empty()) {
        Value named;
        for (auto& n : f.names)
          if (static_cast<double>(n.second) == x) named = Value(n.first);
        out.set(f.infoKey, named.isUndefined() ? Value(x) : std::move(named));
      } else {
        out.set(f.infoKey, f.scale ? x / f.scale : x);
      }
      continue;
    }
    switch (f.type) {
      case T::Bool8: if (a && a->len >= 1) out.set(f.infoKey, a->data[0] != 0); break;
      case T::Bool32: if (a && a->len >= 4) out.set(f.infoKey, a->u32() != 0); break;
      case T::Flag: out.set(f.infoKey, a != nullptr); break;
      case T::Bit: {
        // {flags, mask}: a bit outside the mask says nothing (the kernel reports mask ~0).
        uint32_t fl[2];
        if (a && a->as(fl) && (fl[1] & f.bit)) out.set(f.infoKey, (fl[0] & f.bit) != 0);
        break;
      }
      case T::Ip: case T::Ip4: case T::Ip6: {
        const Attr* cand[2] = {f.type == T::Ip6 ? nullptr : a, f.type == T::Ip ? tb[f.attr6] : f.type == T::Ip6 ? a : nullptr};
        for (int i = 0; i < 2; i++) {
          const Attr* c = cand[i];
          size_t n = i == 0 ? 4 : 16;
          if (!c || c->len != n || allZero(c->data, n)) continue;
          if (f.multicast >= 0 && multicastAddr(c->data, n) != (f.multicast == 1)) continue;
          char b[INET6_ADDRSTRLEN] = {0};
          inet_ntop(n == 4 ? AF_INET : AF_INET6, c->data, b, sizeof b);
          out.set(f.infoKey, std::string(b));
        }
        break;
      }
      case T::Mac: if (a && a->len > 0 && a->len <= 32) out.set(f.infoKey, macToString(a->data, a->len)); break;
      case T::String: if (a) out.set(f.infoKey, a->str()); break;
      case T::Ifindex: if (a && a->len >= 4 && a->u32()) out.set(f.infoKey, a->u32()); break;
      case T::Struct: {
        size_t need = 0;
        for (T t : f.members) need += intSize(t);
        if (!a || a->len < need) break;
        Value arr = Value::array();
        size_t off = 0;
        for (size_t i = 0; i < f.members.size(); i++) {
          double x = readInt(f.members[i], a->data + off);
          off += intSize(f.members[i]);
          if (f.infoKeys.empty()) arr.push(x);
          else out.set(f.infoKeys[i], x);
        }
        if (f.infoKeys.empty()) out.set(f.infoKey, std::move(arr));
        break;
      }
      case T::MacList: {
        if (!a) break;
        Value macs = Value::array();
        AttrIter it(*a);
        Attr item;
        for (size_t n = 0; it.next(item) && n < 65536; n++)
          if (item.type == f.itemAttr && item.len >= 6) macs.push(macToString(item.data, 6));
        out.set(f.infoKey, std::move(macs));
        break;
      }
      case T::BridgeId: {
        ifla_bridge_id id{};
        if (!a || !a->as(id)) break;
        char b[32];
        snprintf(b, sizeof b, "%02x%02x.%02x%02x%02x%02x%02x%02x", id.prio[0], id.prio[1], id.addr[0], id.addr[1],
                 id.addr[2], id.addr[3], id.addr[4], id.addr[5]);
        out.set(f.infoKey, std::string(b));
        break;
      }
      default: break;
    }
  }
}

}  // namespace vnl
