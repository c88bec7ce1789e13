// nftables over nfnetlink (NFNL_SUBSYS_NFTABLES): the codec for tables, chains, rules and the
// expressions vnetlink writes, with no I/O. Arguments arrive normalized from TypeScript as
// numbers (kernel enum values), strings and bytes; decoding returns the same shapes.
#pragma once
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "codec/nlmsg.h"
#include "codec/value.h"

namespace vnl {
namespace nft {

inline uint16_t msgType(uint8_t nftMsg) { return static_cast<uint16_t>((NFNL_SUBSYS_NFTABLES << 8) | nftMsg); }
inline uint8_t nftMsgOf(uint16_t type) { return static_cast<uint8_t>(type & 0xff); }

// A message with its nfgenmsg header (family, NFNETLINK_V0, res_id).
MsgBuilder message(uint16_t type, uint16_t flags, uint8_t family, uint16_t resId = 0);

// Appends one expression ({name, ...attributes}) as an NFTA_LIST_ELEM.
void putExpr(MsgBuilder& m, const Value& e);
// Decodes one NFTA_LIST_ELEM; unknown expressions keep their raw attribute bytes.
Value decodeExpr(const Attr& elem);

// One batch command ({cmd: 'addTable'|'delTable'|'addChain'|'delChain'|'flushChain'|
// 'flushTable'|'addRule'|'delRule', family, ...}) as its message.
MsgBuilder command(const Value& c, uint16_t extraFlags);

// The whole NFNL_MSG_BATCH_BEGIN ... END transaction, seqs drawn from nextSeq; `cmdSeqs`
// receives the seqs of the commands in order. Only the last command carries NLM_F_ACK: the
// kernel reports every failing command anyway and sends the acks at the end of the batch,
// so one ack proves success and a batch of thousands of rules cannot overrun our receive
// buffer with acks (as nft itself does).
std::vector<uint8_t> batch(const Value& cmds, const std::function<uint32_t()>& nextSeq,
                           std::vector<uint32_t>& cmdSeqs, bool echo);

Value decodeTable(const nlmsghdr* h);
Value decodeChain(const nlmsghdr* h);
Value decodeRule(const nlmsghdr* h);

// nft's rule userdata is a TLV list; type 0 is the comment `nft list` prints.
std::string udataComment(const std::string& comment);
std::string commentFromUdata(const Attr& a);

}  // namespace nft
}  // namespace vnl
