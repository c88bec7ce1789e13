// Generic netlink transport: one NETLINK_GENERIC socket per handle and the families it has
// resolved by name (CTRL_CMD_GETFAMILY), cached for the handle's life. Family ids are the
// kernel's to hand out when a module registers; a cached id the kernel no longer knows, or
// that now names another family (the module was reloaded), is resolved again once.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "codec/genl.h"
#include "transport/nlsock.h"
#include "transport/trace.h"

namespace vnl {

class GenlSocket {
 public:
  NlSocket& sock();

  // The family `name`, from the cache or the controller. `secrets` are attribute paths of the
  // family's messages that traces must never print (see traceGenlFamily). A family the kernel
  // does not have throws SysError(ENOENT) whose text names it and the module that provides it.
  const genl::Family& family(const std::string& name, const char* op, const std::vector<TraceAttrPath>& secrets = {});

  // The family `name` as the controller describes it now (the cache is refreshed with it).
  const genl::Family& refresh(const std::string& name, const char* op) {
    cache_.erase(name);
    return family(name, op);
  }

  // Runs fn(family) and, when it fails the way a stale id does and the family now resolves to
  // another id (so the error was about the stale id, not the request), once more with the new
  // one. A stale id is either free (the controller answers ENOENT) or another family's, which
  // has no such command (EOPNOTSUPP).
  template <class F>
  auto withFamily(const std::string& name, const char* op, const std::vector<TraceAttrPath>& secrets, F&& fn) {
    // A copy: a nested call on this socket may erase and refill the cache entry.
    const genl::Family f = family(name, op, secrets);
    uint16_t id = f.id;
    try {
      return fn(f);
    } catch (const SysError& e) {
      if (e.err() != ENOENT && e.err() != EOPNOTSUPP) throw;
      cache_.erase(name);
      const genl::Family again = family(name, op, secrets);
      if (again.id == id) throw;
      return fn(again);
    }
  }

  // Tests only: makes the cache hold `id` for `name`, as a module reload would leave it.
  void setCachedIdForTest(const std::string& name, uint16_t id) {
    genl::Family f;
    f.name = name;
    f.id = id;
    cache_[name] = f;
  }

 private:
  std::unique_ptr<NlSocket> sock_;
  std::map<std::string, genl::Family> cache_;
};

}  // namespace vnl
