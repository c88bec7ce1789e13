#include <fcntl.h>
#include <linux/mount.h>
#include <net/if.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ops/ops.h"

namespace vnl {

Fd::~Fd() { if (fd_ >= 0) close(fd_); }
Fd& Fd::operator=(Fd&& o) noexcept {
  if (this != &o) { if (fd_ >= 0) close(fd_); fd_ = o.release(); }
  return *this;
}

Ctx::~Ctx() {
  if (sysfs_ >= 0) close(sysfs_);
}

NlSocket& Ctx::rtnl() {
  if (!rtnl_) rtnl_ = std::make_unique<NlSocket>(NETLINK_ROUTE);
  return *rtnl_;
}

NlSocket& Ctx::nfnl() {
  if (!nfnl_) nfnl_ = std::make_unique<NlSocket>(NETLINK_NETFILTER);
  return *nfnl_;
}

GenlSocket& Ctx::genl() { return genl_; }

int Ctx::sysfs() {
  if (sysfs_ >= 0) return sysfs_;
  int fs = static_cast<int>(syscall(SYS_fsopen, "sysfs", FSOPEN_CLOEXEC));
  if (fs < 0) throwErrno("fsopen(sysfs)");
  Fd fsfd(fs);
  if (syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) < 0) throwErrno("fsconfig(sysfs)");
  int mnt = static_cast<int>(syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOEXEC | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV));
  if (mnt < 0) throwErrno("fsmount(sysfs)");
  sysfs_ = mnt;
  return sysfs_;
}

uint32_t Ctx::ifindex(const std::string& name, const char* op) {
  unsigned idx = if_nametoindex(name.c_str());
  if (!idx) throw SysError(errno == ENXIO ? ENODEV : (errno ? errno : ENODEV), std::string(op) + ": no link named '" + name + "'");
  return idx;
}

std::string Ctx::ifname(uint32_t index) {
  char buf[IF_NAMESIZE] = {0};
  if (!if_indextoname(index, buf)) return "";
  return buf;
}

std::map<std::string, OpFn>& OpRegistry::all() {
  static std::map<std::string, OpFn> m;
  return m;
}

OpFn OpRegistry::find(const std::string& name) {
  auto& m = all();
  auto it = m.find(name);
  return it == m.end() ? nullptr : it->second;
}

int openNetnsArg(const Value& v, const char* op) {
  if (const Value* p = v.get("netnsPath")) {
    int fd = open(p->string().c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw SysError(errno, std::string(op) + ": cannot open namespace '" + p->string() + "'");
    return fd;
  }
  if (const Value* f = v.get("netnsFd")) {
    int fd = fcntl(static_cast<int>(f->number()), F_DUPFD_CLOEXEC, 3);
    if (fd < 0) throw SysError(errno, std::string(op) + ": bad namespace fd");
    return fd;
  }
  return -1;
}

}  // namespace vnl
