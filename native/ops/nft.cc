// nftables operations on the handle's namespace thread: one atomic batch per commit, and
// listing of tables, chains and rules.
#include <linux/netfilter.h>

#include <string>

#include "codec/nft.h"
#include "ops/ops.h"

namespace vnl {
namespace {

std::string describe(const Value& c) {
  std::string s = c.str("cmd");
  if (c.has("table")) s += " " + c.str("table");
  else if (c.has("name")) s += " " + c.str("name");
  if (c.has("chain")) s += " " + c.str("chain");
  else if (c.has("table") && c.has("name")) s += " " + c.str("name");
  return s;
}

Value nftCommit(Ctx& ctx, const Value& args) {
  const Value& cmds = args.req("cmds");
  bool echo = args.flag("echo");
  NlSocket& sock = ctx.nfnl();
  std::vector<uint32_t> acks;
  std::vector<uint8_t> bytes = nft::batch(cmds, [&] { return sock.nextSeq(); }, acks, echo);
  Value created = Value::array();
  if (acks.empty()) {  // nothing to commit
    Value none = Value::object();
    none.set("created", Value::array());
    return none;
  }
  // Every created object comes back as a message of about its own size (plus skb overhead):
  // room for all of them, or a big echoing batch would overrun and report an unknown outcome.
  if (echo) sock.growRcvbuf(bytes.size() * 2 + acks.size() * 1024 + (64 << 10));
  AckResult r = sock.sendRawAndAck(bytes, {acks.back()}, [&](const nlmsghdr* h) {
    switch (nft::nftMsgOf(h->nlmsg_type)) {
      case NFT_MSG_NEWTABLE: { Value v = nft::decodeTable(h); v.set("kind", "table"); created.push(std::move(v)); break; }
      case NFT_MSG_NEWCHAIN: { Value v = nft::decodeChain(h); v.set("kind", "chain"); created.push(std::move(v)); break; }
      case NFT_MSG_NEWRULE: { Value v = nft::decodeRule(h); v.set("kind", "rule"); created.push(std::move(v)); break; }
      default: break;
    }
  });
  if (r.err) {
    std::string where = "nft.commit";
    for (size_t i = 0; i < acks.size(); i++)
      if (acks[i] == r.seq) where += ": command " + std::to_string(i + 1) + " (" + describe(cmds.items()[i]) + ")";
    throw SysError(r.err, where, r.extack);
  }
  Value out = Value::object();
  out.set("created", std::move(created));
  return out;
}

// The batch exactly as commit would send it, with seqs from 0: for golden-byte tests.
Value nftEncode(Ctx&, const Value& args) {
  uint32_t seq = 0;
  std::vector<uint32_t> acks;
  std::vector<uint8_t> bytes = nft::batch(args.req("cmds"), [&] { return seq++; }, acks, args.flag("echo"));
  return Value::bytes(bytes.data(), bytes.size());
}

// Sends caller-made batch bytes (seqs renumbered) and reports what the transport saw: for
// tests of the batch handling itself, e.g. an error the kernel addresses to BATCH_BEGIN.
Value nftSendRaw(Ctx& ctx, const Value& args) {
  std::string in = args.bytesOf("bytes");
  std::vector<uint8_t> bytes(in.begin(), in.end());
  NlSocket& sock = ctx.nfnl();
  std::vector<uint32_t> acks, seqs;
  size_t off = 0;
  while (off + NLMSG_HDRLEN <= bytes.size()) {
    auto* h = reinterpret_cast<nlmsghdr*>(bytes.data() + off);
    if (h->nlmsg_len < NLMSG_HDRLEN || off + h->nlmsg_len > bytes.size()) break;
    h->nlmsg_seq = sock.nextSeq();
    seqs.push_back(h->nlmsg_seq);
    if (h->nlmsg_flags & NLM_F_ACK) acks.push_back(h->nlmsg_seq);
    off += NLMSG_ALIGN(h->nlmsg_len);
  }
  AckResult r = sock.sendRawAndAck(bytes, acks);
  Value out = Value::object();
  out.set("errno", r.err);
  if (!r.extack.empty()) out.set("extack", r.extack);
  for (size_t i = 0; i < seqs.size(); i++)
    if (r.err && seqs[i] == r.seq) out.set("message", static_cast<double>(i));
  return out;
}

uint8_t familyArg(const Value& args) { return static_cast<uint8_t>(args.u32("family", NFPROTO_UNSPEC)); }

// Fails with ENOENT (as nft does) when the table is missing.
void requireTable(Ctx& ctx, uint8_t fam, const std::string& table, const char* op) {
  MsgBuilder m = nft::message(nft::msgType(NFT_MSG_GETTABLE), 0, fam);
  m.putStr(NFTA_TABLE_NAME, table);
  ctx.nfnl().request(m, op);
}

Value nftListTables(Ctx& ctx, const Value& args) {
  MsgBuilder m = nft::message(nft::msgType(NFT_MSG_GETTABLE), 0, familyArg(args));
  Value out = Value::array();
  ctx.nfnl().dump(m, "nft.listTables", [&](const nlmsghdr* h) {
    if (nft::nftMsgOf(h->nlmsg_type) == NFT_MSG_NEWTABLE) out.push(nft::decodeTable(h));
  });
  return out;
}

Value nftListChains(Ctx& ctx, const Value& args) {
  uint8_t fam = familyArg(args);
  std::string table = args.str("table", "");
  if (!table.empty()) requireTable(ctx, fam, table, "nft.listChains");
  MsgBuilder m = nft::message(nft::msgType(NFT_MSG_GETCHAIN), 0, fam);
  Value out = Value::array();
  ctx.nfnl().dump(m, "nft.listChains", [&](const nlmsghdr* h) {
    if (nft::nftMsgOf(h->nlmsg_type) != NFT_MSG_NEWCHAIN) return;
    Value c = nft::decodeChain(h);
    if (!table.empty() && c.str("table", "") != table) return;
    out.push(std::move(c));
  });
  return out;
}

Value nftListRules(Ctx& ctx, const Value& args) {
  uint8_t fam = familyArg(args);
  std::string table = args.str("table");
  std::string chain = args.str("chain", "");
  requireTable(ctx, fam, table, "nft.listRules");
  MsgBuilder m = nft::message(nft::msgType(NFT_MSG_GETRULE), 0, fam);
  m.putStr(NFTA_RULE_TABLE, table);
  if (!chain.empty()) m.putStr(NFTA_RULE_CHAIN, chain);
  Value out = Value::array();
  ctx.nfnl().dump(m, "nft.listRules", [&](const nlmsghdr* h) {
    if (nft::nftMsgOf(h->nlmsg_type) != NFT_MSG_NEWRULE) return;
    Value r = nft::decodeRule(h);
    if (r.str("table", "") != table || (!chain.empty() && r.str("chain", "") != chain)) return;
    out.push(std::move(r));
  });
  return out;
}

}  // namespace

VNL_OP("nft.commit", nftCommit);
VNL_OP("nft.encode", nftEncode);
VNL_OP("nft.sendRaw", nftSendRaw);
VNL_OP("nft.listTables", nftListTables);
VNL_OP("nft.listChains", nftListChains);
VNL_OP("nft.listRules", nftListRules);

}  // namespace vnl
