#include "transport/genl.h"

#include <linux/netlink.h>

namespace vnl {

NlSocket& GenlSocket::sock() {
  if (!sock_) sock_ = std::make_unique<NlSocket>(NETLINK_GENERIC);
  return *sock_;
}

const genl::Family& GenlSocket::family(const std::string& name, const char* op, const std::vector<TraceAttrPath>& secrets) {
  auto it = cache_.find(name);
  if (it != cache_.end()) {
    // A cached family may have been looked up by a caller that knew no secrets to hide.
    if (!secrets.empty()) traceGenlFamily(it->second.id, it->second.name, secrets);
    return it->second;
  }
  genl::Family f;
  bool found = false;
  MsgBuilder m = genl::getFamily(name);
  try {
    sock().request(m, op, [&](const nlmsghdr* h) {
      genl::Family got;
      if (genl::decodeFamily(h, got) && got.name == name) { f = std::move(got); found = true; }
    });
  } catch (const SysError& e) {
    // The controller's ENOENT says only "no such family" (after trying to load its module).
    if (e.err() == ENOENT)
      throw SysError(ENOENT, std::string(op) + ": the kernel has no generic netlink family \"" + name +
                                 "\" (no module that provides it is loaded or loadable)", e.extack());
    throw;
  }
  if (!found) throw DecodeError("the controller's reply for \"" + name + "\" had no family id");
  traceGenlFamily(f.id, f.name, secrets);
  return cache_.emplace(name, std::move(f)).first->second;
}

}  // namespace vnl
