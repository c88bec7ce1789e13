// nftables expressions: each is NFTA_LIST_ELEM { NFTA_EXPR_NAME, NFTA_EXPR_DATA { ... } } with
// big-endian integers, data in NFTA_DATA_VALUE and verdicts in NFTA_DATA_VERDICT.
#include <stdexcept>

#include "codec/nft.h"

namespace vnl {
namespace nft {
namespace {

const std::string& bytesArg(const Value& e, const char* key) { return e.bytesOf(key); }

void putData(MsgBuilder& m, uint16_t type, const std::string& bytes) {
  if (bytes.empty() || bytes.size() > NFT_REG_SIZE * 4)
    throw std::invalid_argument(std::string("expression data must be 1-64 bytes (got ") + std::to_string(bytes.size()) + ")");
  auto d = m.nest(type);
  m.putBytes(NFTA_DATA_VALUE, bytes);
}

// Optional big-endian u32 attribute, emitted only when the key is set.
void optBe32(MsgBuilder& m, uint16_t type, const Value& e, const char* key) {
  if (const Value* v = e.get(key)) m.putBe32(type, static_cast<uint32_t>(static_cast<int64_t>(v->number())));
}

void putVerdict(MsgBuilder& m, const Value& e) {
  auto d = m.nest(NFTA_IMMEDIATE_DATA);
  auto v = m.nest(NFTA_DATA_VERDICT);
  m.putBe32(NFTA_VERDICT_CODE, static_cast<uint32_t>(static_cast<int32_t>(e.num("verdict"))));
  if (const Value* c = e.get("chain")) m.putStr(NFTA_VERDICT_CHAIN, c->string());
}

void putBody(MsgBuilder& m, const std::string& name, const Value& e) {
  if (name == "payload") {
    optBe32(m, NFTA_PAYLOAD_DREG, e, "dreg");
    m.putBe32(NFTA_PAYLOAD_BASE, e.u32("base"));
    m.putBe32(NFTA_PAYLOAD_OFFSET, e.u32("offset"));
    m.putBe32(NFTA_PAYLOAD_LEN, e.u32("len"));
    optBe32(m, NFTA_PAYLOAD_SREG, e, "sreg");
    optBe32(m, NFTA_PAYLOAD_CSUM_TYPE, e, "csumType");
    optBe32(m, NFTA_PAYLOAD_CSUM_OFFSET, e, "csumOffset");
    optBe32(m, NFTA_PAYLOAD_CSUM_FLAGS, e, "csumFlags");
  } else if (name == "cmp") {
    m.putBe32(NFTA_CMP_SREG, e.u32("sreg"));
    m.putBe32(NFTA_CMP_OP, e.u32("op"));
    putData(m, NFTA_CMP_DATA, bytesArg(e, "data"));
  } else if (name == "bitwise") {
    m.putBe32(NFTA_BITWISE_SREG, e.u32("sreg"));
    m.putBe32(NFTA_BITWISE_DREG, e.u32("dreg"));
    m.putBe32(NFTA_BITWISE_LEN, e.u32("len"));
    putData(m, NFTA_BITWISE_MASK, bytesArg(e, "mask"));
    putData(m, NFTA_BITWISE_XOR, bytesArg(e, "xor"));
  } else if (name == "meta") {
    m.putBe32(NFTA_META_KEY, e.u32("key"));
    optBe32(m, NFTA_META_DREG, e, "dreg");
    optBe32(m, NFTA_META_SREG, e, "sreg");
  } else if (name == "ct") {
    m.putBe32(NFTA_CT_KEY, e.u32("key"));
    optBe32(m, NFTA_CT_DREG, e, "dreg");
    if (const Value* d = e.get("direction")) m.putU8(NFTA_CT_DIRECTION, static_cast<uint8_t>(d->number()));
    optBe32(m, NFTA_CT_SREG, e, "sreg");
  } else if (name == "immediate") {
    m.putBe32(NFTA_IMMEDIATE_DREG, e.u32("dreg"));
    if (e.has("verdict")) {
      putVerdict(m, e);
    } else {
      putData(m, NFTA_IMMEDIATE_DATA, bytesArg(e, "data"));
    }
  } else if (name == "masq") {
    optBe32(m, NFTA_MASQ_FLAGS, e, "flags");
    optBe32(m, NFTA_MASQ_REG_PROTO_MIN, e, "protoMin");
    optBe32(m, NFTA_MASQ_REG_PROTO_MAX, e, "protoMax");
  } else if (name == "nat") {
    m.putBe32(NFTA_NAT_TYPE, e.u32("type"));
    m.putBe32(NFTA_NAT_FAMILY, e.u32("family"));
    optBe32(m, NFTA_NAT_REG_ADDR_MIN, e, "addrMin");
    optBe32(m, NFTA_NAT_REG_ADDR_MAX, e, "addrMax");
    optBe32(m, NFTA_NAT_REG_PROTO_MIN, e, "protoMin");
    optBe32(m, NFTA_NAT_REG_PROTO_MAX, e, "protoMax");
    optBe32(m, NFTA_NAT_FLAGS, e, "flags");
  } else if (name == "counter") {
    // nft sends an empty body for a fresh counter; values are only given to restore them.
    if (e.has("bytes") || e.has("packets")) {
      m.putBe64(NFTA_COUNTER_BYTES, static_cast<uint64_t>(e.num("bytes", 0)));
      m.putBe64(NFTA_COUNTER_PACKETS, static_cast<uint64_t>(e.num("packets", 0)));
    }
  } else if (name == "fib") {
    m.putBe32(NFTA_FIB_DREG, e.u32("dreg"));
    m.putBe32(NFTA_FIB_RESULT, e.u32("result"));
    m.putBe32(NFTA_FIB_FLAGS, e.u32("flags"));
  } else if (name == "reject") {
    m.putBe32(NFTA_REJECT_TYPE, e.u32("type"));
    if (const Value* c = e.get("code")) m.putU8(NFTA_REJECT_ICMP_CODE, static_cast<uint8_t>(c->number()));
  } else {
    throw std::invalid_argument("unknown nftables expression '" + name + "'");
  }
}

Value dataValue(const Attr& nest) {
  AttrTable t(nest, NFTA_DATA_MAX);
  if (t[NFTA_DATA_VALUE]) return Value::bytes(t[NFTA_DATA_VALUE]->data, t[NFTA_DATA_VALUE]->len);
  return Value();
}

void setBe32(Value& out, const char* key, const AttrTable& t, uint16_t type) {
  if (t[type]) out.set(key, t[type]->be32());
}

}  // namespace

void putExpr(MsgBuilder& m, const Value& e) {
  std::string name = e.str("name");
  auto elem = m.nest(NFTA_LIST_ELEM);
  m.putStr(NFTA_EXPR_NAME, name);
  auto data = m.nest(NFTA_EXPR_DATA);
  putBody(m, name, e);
}

Value decodeExpr(const Attr& elem) {
  AttrTable ta(elem, NFTA_EXPR_MAX);
  Value out = Value::object();
  std::string name = ta[NFTA_EXPR_NAME] ? ta[NFTA_EXPR_NAME]->str() : "";
  out.set("name", name);
  if (!ta[NFTA_EXPR_DATA]) return out;
  const Attr& d = *ta[NFTA_EXPR_DATA];
  if (name == "payload") {
    AttrTable t(d, NFTA_PAYLOAD_MAX);
    setBe32(out, "dreg", t, NFTA_PAYLOAD_DREG);
    setBe32(out, "sreg", t, NFTA_PAYLOAD_SREG);
    setBe32(out, "base", t, NFTA_PAYLOAD_BASE);
    setBe32(out, "offset", t, NFTA_PAYLOAD_OFFSET);
    setBe32(out, "len", t, NFTA_PAYLOAD_LEN);
    setBe32(out, "csumType", t, NFTA_PAYLOAD_CSUM_TYPE);
    setBe32(out, "csumOffset", t, NFTA_PAYLOAD_CSUM_OFFSET);
    setBe32(out, "csumFlags", t, NFTA_PAYLOAD_CSUM_FLAGS);
  } else if (name == "cmp") {
    AttrTable t(d, NFTA_CMP_MAX);
    setBe32(out, "sreg", t, NFTA_CMP_SREG);
    setBe32(out, "op", t, NFTA_CMP_OP);
    if (t[NFTA_CMP_DATA]) out.set("data", dataValue(*t[NFTA_CMP_DATA]));
  } else if (name == "bitwise") {
    AttrTable t(d, NFTA_BITWISE_MAX);
    setBe32(out, "sreg", t, NFTA_BITWISE_SREG);
    setBe32(out, "dreg", t, NFTA_BITWISE_DREG);
    setBe32(out, "len", t, NFTA_BITWISE_LEN);
    setBe32(out, "op", t, NFTA_BITWISE_OP);
    if (t[NFTA_BITWISE_MASK]) out.set("mask", dataValue(*t[NFTA_BITWISE_MASK]));
    if (t[NFTA_BITWISE_XOR]) out.set("xor", dataValue(*t[NFTA_BITWISE_XOR]));
  } else if (name == "meta") {
    AttrTable t(d, NFTA_META_MAX);
    setBe32(out, "dreg", t, NFTA_META_DREG);
    setBe32(out, "key", t, NFTA_META_KEY);
    setBe32(out, "sreg", t, NFTA_META_SREG);
  } else if (name == "ct") {
    AttrTable t(d, NFTA_CT_MAX);
    setBe32(out, "dreg", t, NFTA_CT_DREG);
    setBe32(out, "key", t, NFTA_CT_KEY);
    if (t[NFTA_CT_DIRECTION]) out.set("direction", t[NFTA_CT_DIRECTION]->u8());
    setBe32(out, "sreg", t, NFTA_CT_SREG);
  } else if (name == "immediate") {
    AttrTable t(d, NFTA_IMMEDIATE_MAX);
    setBe32(out, "dreg", t, NFTA_IMMEDIATE_DREG);
    if (t[NFTA_IMMEDIATE_DATA]) {
      AttrTable dt(*t[NFTA_IMMEDIATE_DATA], NFTA_DATA_MAX);
      if (dt[NFTA_DATA_VALUE]) {
        out.set("data", Value::bytes(dt[NFTA_DATA_VALUE]->data, dt[NFTA_DATA_VALUE]->len));
      } else if (dt[NFTA_DATA_VERDICT]) {
        AttrTable vt(*dt[NFTA_DATA_VERDICT], NFTA_VERDICT_MAX);
        if (vt[NFTA_VERDICT_CODE]) out.set("verdict", static_cast<int32_t>(vt[NFTA_VERDICT_CODE]->be32()));
        if (vt[NFTA_VERDICT_CHAIN]) out.set("chain", vt[NFTA_VERDICT_CHAIN]->str());
      }
    }
  } else if (name == "fib") {
    AttrTable t(d, NFTA_FIB_MAX);
    setBe32(out, "dreg", t, NFTA_FIB_DREG);
    setBe32(out, "result", t, NFTA_FIB_RESULT);
    setBe32(out, "flags", t, NFTA_FIB_FLAGS);
  } else if (name == "masq") {
    AttrTable t(d, NFTA_MASQ_MAX);
    setBe32(out, "flags", t, NFTA_MASQ_FLAGS);
    setBe32(out, "protoMin", t, NFTA_MASQ_REG_PROTO_MIN);
    setBe32(out, "protoMax", t, NFTA_MASQ_REG_PROTO_MAX);
  } else if (name == "nat") {
    AttrTable t(d, NFTA_NAT_MAX);
    setBe32(out, "type", t, NFTA_NAT_TYPE);
    setBe32(out, "family", t, NFTA_NAT_FAMILY);
    setBe32(out, "addrMin", t, NFTA_NAT_REG_ADDR_MIN);
    setBe32(out, "addrMax", t, NFTA_NAT_REG_ADDR_MAX);
    setBe32(out, "protoMin", t, NFTA_NAT_REG_PROTO_MIN);
    setBe32(out, "protoMax", t, NFTA_NAT_REG_PROTO_MAX);
    setBe32(out, "flags", t, NFTA_NAT_FLAGS);
  } else if (name == "counter") {
    AttrTable t(d, NFTA_COUNTER_MAX);
    if (t[NFTA_COUNTER_PACKETS]) out.set("packets", static_cast<double>(t[NFTA_COUNTER_PACKETS]->be64()));
    if (t[NFTA_COUNTER_BYTES]) out.set("bytes", static_cast<double>(t[NFTA_COUNTER_BYTES]->be64()));
  } else if (name == "reject") {
    AttrTable t(d, NFTA_REJECT_MAX);
    setBe32(out, "type", t, NFTA_REJECT_TYPE);
    if (t[NFTA_REJECT_ICMP_CODE]) out.set("code", t[NFTA_REJECT_ICMP_CODE]->u8());
  } else {
    out.set("raw", Value::bytes(d.data, d.len));
  }
  return out;
}

}  // namespace nft
}  // namespace vnl
