// Connection tracking operations on the handle's namespace thread: list the table, delete
// entries by their original tuple (what `conntrack -L` / `conntrack -D` do, without the tool).
#include <sys/socket.h>

#include "codec/ct.h"
#include "ops/ops.h"
#include "transport/error.h"

namespace vnl {
namespace {

uint8_t familyArg(const Value& args) {
  uint32_t f = args.u32("family");
  if (f != AF_INET && f != AF_INET6) throw std::invalid_argument("family must be AF_INET or AF_INET6");
  return static_cast<uint8_t>(f);
}

// ct.list { family } -> entries (see ct::decodeEntry). Entries that fail to decode are skipped:
// one odd entry must not hide the rest.
Value ctList(Ctx& ctx, const Value& args) {
  MsgBuilder m = ct::dumpRequest(familyArg(args));
  Value out = Value::array();
  ctx.nfnl().dump(m, "ct.list", [&](const nlmsghdr* h) {
    if ((h->nlmsg_type & 0xff) != IPCTNL_MSG_CT_NEW) return;
    try { out.push(ct::decodeEntry(h)); } catch (const CodecError&) { /* skipped */ }
  });
  return out;
}

// ct.delete { family, tuples: [{proto, src, dst, sport?, dport?, id?}], zone? } -> { deleted }.
// An entry already gone (ENOENT: it expired, or another delete won) is not an error.
Value ctDelete(Ctx& ctx, const Value& args) {
  uint8_t fam = familyArg(args);
  uint16_t zone = static_cast<uint16_t>(args.u32("zone", 0));
  int deleted = 0;
  for (const Value& t : args.req("tuples").items()) {
    MsgBuilder m = ct::deleteRequest(fam, t, t.get("id"), zone);
    try {
      ctx.nfnl().request(m, "ct.delete");
      deleted++;
    } catch (const SysError& e) {
      if (e.err() != ENOENT) throw;
    }
  }
  Value out = Value::object();
  out.set("deleted", deleted);
  return out;
}

}  // namespace

VNL_OP("ct.list", ctList);
VNL_OP("ct.delete", ctDelete);

}  // namespace vnl
