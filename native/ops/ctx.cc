#include <fcntl.h>
#include <linux/mount.h>
#include <net/if.h>
#include <sys/ioctl.h>

#include <cstring>
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

// SIOCGIFINDEX/SIOCGIFNAME on the handle's rtnetlink socket: any socket answers for the
// namespace it was made in, so this is one ioctl (if_nametoindex opens and closes a socket
// around it each time).
uint32_t Ctx::ifindex(const std::string& name, const char* op) {
  ifreq ifr{};
  if (name.empty() || name.size() >= IFNAMSIZ) throw SysError(ENODEV, std::string(op) + ": no link named '" + name + "'");
  memcpy(ifr.ifr_name, name.data(), name.size());
  if (ioctl(rtnl().fd(), SIOCGIFINDEX, &ifr) < 0 || ifr.ifr_ifindex <= 0)
    throw SysError(errno == ENXIO || errno == 0 ? ENODEV : errno, std::string(op) + ": no link named '" + name + "'");
  return static_cast<uint32_t>(ifr.ifr_ifindex);
}

std::string Ctx::ifname(uint32_t index) {
  ifreq ifr{};
  ifr.ifr_ifindex = static_cast<int>(index);
  if (ioctl(rtnl().fd(), SIOCGIFNAME, &ifr) < 0) return "";
  return std::string(ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ));
}

std::map<std::string, OpFn>& OpRegistry::all() {
  static std::map<std::string, OpFn> m;
  return m;
}

Value runChange(Ctx& ctx, const Value& args, BuildFn build, Send how, const char* op) {
  MsgBuilder m = build(ctx, args, op);
  return submit([&]() -> NlSocket& { return ctx.rtnl(); }, m, how, op);
}

Value runChange(Ctx& ctx, const Value& args, BuildKeepFn build, Send how, const char* op) {
  std::vector<Fd> keep;  // closed after the ack (or once the bytes are copied)
  MsgBuilder m = build(ctx, args, op, keep);
  return submit([&]() -> NlSocket& { return ctx.rtnl(); }, m, how, op);
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
