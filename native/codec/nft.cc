// nftables objects: tables, chains and rules as NFT_MSG_* messages, the batch that commits
// them as one transaction, and their decoding for listing. No I/O here.
#include <endian.h>
#include <linux/netfilter.h>
#include <sys/socket.h>

#include <stdexcept>

#include "codec/nft.h"

namespace vnl {
namespace nft {

MsgBuilder message(uint16_t type, uint16_t flags, uint8_t family, uint16_t resId) {
  MsgBuilder m(type, flags);
  nfgenmsg g{};
  g.nfgen_family = family;
  g.version = NFNETLINK_V0;
  g.res_id = htobe16(resId);
  m.putHeader(g);
  return m;
}

namespace {

uint8_t familyOf(const Value& c) { return static_cast<uint8_t>(c.u32("family")); }

}  // namespace

std::string udataComment(const std::string& comment) {
  // One TLV: type NFTNL_UDATA_RULE_COMMENT (0), length including the NUL, the string.
  if (comment.size() + 1 > 255) throw std::invalid_argument("comment is longer than 254 bytes");
  std::string u;
  u.push_back('\0');
  u.push_back(static_cast<char>(comment.size() + 1));
  u += comment;
  u.push_back('\0');
  return u;
}

std::string commentFromUdata(const Attr& a) {
  size_t off = 0;
  while (off + 2 <= a.len) {
    uint8_t type = a.data[off], len = a.data[off + 1];
    if (off + 2 + len > a.len) break;
    if (type == 0) {
      std::string s(reinterpret_cast<const char*>(a.data + off + 2), len);
      while (!s.empty() && s.back() == '\0') s.pop_back();
      return s;
    }
    off += 2 + len;
  }
  return "";
}

MsgBuilder command(const Value& c, uint16_t extraFlags) {
  std::string cmd = c.str("cmd");
  const uint16_t base = NLM_F_REQUEST | extraFlags;
  const uint8_t fam = familyOf(c);
  if (cmd == "addTable") {
    MsgBuilder m = message(msgType(NFT_MSG_NEWTABLE), base | NLM_F_CREATE | (c.flag("excl") ? NLM_F_EXCL : 0), fam);
    m.putStr(NFTA_TABLE_NAME, c.str("name"));
    m.putBe32(NFTA_TABLE_FLAGS, c.u32("flags", 0));
    return m;
  }
  if (cmd == "delTable") {
    MsgBuilder m = message(msgType(NFT_MSG_DELTABLE), base, fam);
    m.putStr(NFTA_TABLE_NAME, c.str("name"));
    return m;
  }
  if (cmd == "addChain") {
    MsgBuilder m = message(msgType(NFT_MSG_NEWCHAIN), base | NLM_F_CREATE | (c.flag("excl") ? NLM_F_EXCL : 0), fam);
    m.putStr(NFTA_CHAIN_TABLE, c.str("table"));
    m.putStr(NFTA_CHAIN_NAME, c.str("name"));
    if (c.has("hook")) {
      m.putStr(NFTA_CHAIN_TYPE, c.str("type", "filter"));
      m.putBe32(NFTA_CHAIN_POLICY, c.u32("policy", NF_ACCEPT));
      auto h = m.nest(NFTA_CHAIN_HOOK);
      m.putBe32(NFTA_HOOK_HOOKNUM, c.u32("hook"));
      m.putBe32(NFTA_HOOK_PRIORITY, static_cast<uint32_t>(static_cast<int32_t>(c.num("priority", 0))));
    }
    return m;
  }
  if (cmd == "delChain") {
    MsgBuilder m = message(msgType(NFT_MSG_DELCHAIN), base, fam);
    m.putStr(NFTA_CHAIN_TABLE, c.str("table"));
    m.putStr(NFTA_CHAIN_NAME, c.str("name"));
    return m;
  }
  if (cmd == "flushTable" || cmd == "flushChain") {
    // A DELRULE without a handle removes every rule of the chain (or of the whole table).
    MsgBuilder m = message(msgType(NFT_MSG_DELRULE), base, fam);
    m.putStr(NFTA_RULE_TABLE, c.str("table"));
    if (cmd == "flushChain") m.putStr(NFTA_RULE_CHAIN, c.str("chain"));
    return m;
  }
  if (cmd == "addRule") {
    // APPEND puts the rule last (or after `position`); without it, first (or before it).
    uint16_t f = base | NLM_F_CREATE | (c.flag("insert") ? 0 : NLM_F_APPEND);
    MsgBuilder m = message(msgType(NFT_MSG_NEWRULE), f, fam);
    m.putStr(NFTA_RULE_TABLE, c.str("table"));
    m.putStr(NFTA_RULE_CHAIN, c.str("chain"));
    if (const Value* p = c.get("position")) m.putBe64(NFTA_RULE_POSITION, static_cast<uint64_t>(p->number()));
    {
      auto ex = m.nest(NFTA_RULE_EXPRESSIONS);
      for (const Value& e : c.req("exprs").items()) putExpr(m, e);
    }
    if (const Value* cm = c.get("comment")) m.putBytes(NFTA_RULE_USERDATA, udataComment(cm->string()));
    return m;
  }
  if (cmd == "delRule") {
    MsgBuilder m = message(msgType(NFT_MSG_DELRULE), base, fam);
    m.putStr(NFTA_RULE_TABLE, c.str("table"));
    m.putStr(NFTA_RULE_CHAIN, c.str("chain"));
    m.putBe64(NFTA_RULE_HANDLE, static_cast<uint64_t>(c.num("handle")));
    return m;
  }
  throw std::invalid_argument("unknown nftables command '" + cmd + "'");
}

std::vector<uint8_t> batch(const Value& cmds, const std::function<uint32_t()>& nextSeq,
                           std::vector<uint32_t>& cmdSeqs, bool echo) {
  std::vector<uint8_t> out;
  auto append = [&](MsgBuilder& m) {
    m.setSeq(nextSeq());
    out.insert(out.end(), m.bytes().begin(), m.bytes().end());
    return m.seq();
  };
  MsgBuilder begin = message(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, AF_UNSPEC, NFNL_SUBSYS_NFTABLES);
  append(begin);
  const auto& items = cmds.items();
  for (size_t i = 0; i < items.size(); i++) {
    MsgBuilder m = command(items[i], static_cast<uint16_t>((echo ? NLM_F_ECHO : 0) | (i + 1 == items.size() ? NLM_F_ACK : 0)));
    cmdSeqs.push_back(append(m));
  }
  MsgBuilder end = message(NFNL_MSG_BATCH_END, NLM_F_REQUEST, AF_UNSPEC, NFNL_SUBSYS_NFTABLES);
  append(end);
  return out;
}

namespace {

bool body(const nlmsghdr* h, const nfgenmsg*& g, const uint8_t*& p, size_t& len) {
  g = familyHeader<nfgenmsg>(h);
  return g && payloadAfter(h, sizeof(nfgenmsg), p, len);
}

}  // namespace

Value decodeTable(const nlmsghdr* h) {
  const nfgenmsg* g; const uint8_t* p; size_t len;
  if (!body(h, g, p, len)) throw DecodeError("short NFT_MSG_NEWTABLE message");
  AttrTable t(p, len, NFTA_TABLE_MAX);
  Value out = Value::object();
  out.set("family", g->nfgen_family);
  if (t[NFTA_TABLE_NAME]) out.set("name", t[NFTA_TABLE_NAME]->str());
  if (t[NFTA_TABLE_HANDLE]) out.set("handle", static_cast<double>(t[NFTA_TABLE_HANDLE]->be64()));
  if (t[NFTA_TABLE_FLAGS]) out.set("flags", t[NFTA_TABLE_FLAGS]->be32());
  if (t[NFTA_TABLE_USE]) out.set("use", t[NFTA_TABLE_USE]->be32());
  return out;
}

Value decodeChain(const nlmsghdr* h) {
  const nfgenmsg* g; const uint8_t* p; size_t len;
  if (!body(h, g, p, len)) throw DecodeError("short NFT_MSG_NEWCHAIN message");
  AttrTable t(p, len, NFTA_CHAIN_MAX);
  Value out = Value::object();
  out.set("family", g->nfgen_family);
  if (t[NFTA_CHAIN_TABLE]) out.set("table", t[NFTA_CHAIN_TABLE]->str());
  if (t[NFTA_CHAIN_NAME]) out.set("name", t[NFTA_CHAIN_NAME]->str());
  if (t[NFTA_CHAIN_HANDLE]) out.set("handle", static_cast<double>(t[NFTA_CHAIN_HANDLE]->be64()));
  if (t[NFTA_CHAIN_TYPE]) out.set("type", t[NFTA_CHAIN_TYPE]->str());
  if (t[NFTA_CHAIN_POLICY]) out.set("policy", t[NFTA_CHAIN_POLICY]->be32());
  if (t[NFTA_CHAIN_USE]) out.set("use", t[NFTA_CHAIN_USE]->be32());
  if (t[NFTA_CHAIN_HOOK]) {
    AttrTable hk(*t[NFTA_CHAIN_HOOK], NFTA_HOOK_MAX);
    if (hk[NFTA_HOOK_HOOKNUM]) out.set("hook", hk[NFTA_HOOK_HOOKNUM]->be32());
    if (hk[NFTA_HOOK_PRIORITY]) out.set("priority", static_cast<int32_t>(hk[NFTA_HOOK_PRIORITY]->be32()));
  }
  return out;
}

Value decodeRule(const nlmsghdr* h) {
  const nfgenmsg* g; const uint8_t* p; size_t len;
  if (!body(h, g, p, len)) throw DecodeError("short NFT_MSG_NEWRULE message");
  AttrTable t(p, len, NFTA_RULE_MAX);
  Value out = Value::object();
  out.set("family", g->nfgen_family);
  if (t[NFTA_RULE_TABLE]) out.set("table", t[NFTA_RULE_TABLE]->str());
  if (t[NFTA_RULE_CHAIN]) out.set("chain", t[NFTA_RULE_CHAIN]->str());
  if (t[NFTA_RULE_HANDLE]) out.set("handle", static_cast<double>(t[NFTA_RULE_HANDLE]->be64()));
  if (t[NFTA_RULE_POSITION]) out.set("position", static_cast<double>(t[NFTA_RULE_POSITION]->be64()));
  Value exprs = Value::array();
  if (t[NFTA_RULE_EXPRESSIONS]) {
    AttrIter it(*t[NFTA_RULE_EXPRESSIONS]);
    Attr a;
    while (it.next(a))
      if (a.type == NFTA_LIST_ELEM) exprs.push(decodeExpr(a));
  }
  out.set("exprs", std::move(exprs));
  if (t[NFTA_RULE_USERDATA]) {
    std::string c = commentFromUdata(*t[NFTA_RULE_USERDATA]);
    if (!c.empty()) out.set("comment", c);
  }
  return out;
}

}  // namespace nft
}  // namespace vnl
