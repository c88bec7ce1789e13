// The guest side of a macvtap: its character device, opened once per queue on the handle's
// thread. /dev/tap<ifindex> cannot be trusted (ifindexes repeat across namespaces, nodes go
// stale or are missing without udev), so the device number is read from this namespace's
// sysfs and opened through a node we make ourselves, on a detached tmpfs no path reaches.
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/mount.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "ops/link.h"
#include "sys/tunfd.h"

namespace vnl {
namespace {

const char* kOp = "macvtap.open";

std::string readSmallFile(int dirfd, const std::string& path) {
  Fd fd(openat(dirfd, path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw SysError(errno, std::string(kOp) + ": " + path);
  char buf[64];
  ssize_t n;
  do n = read(fd.get(), buf, sizeof buf - 1); while (n < 0 && errno == EINTR);
  if (n < 0) throw SysError(errno, std::string(kOp) + ": " + path);
  return std::string(buf, static_cast<size_t>(n));
}

// The device number of the macvtap or ipvtap NAME (ifindex IDX) as this namespace's sysfs
// shows it: both drivers name their character device tapIDX under a class named after the kind.
dev_t macvtapDevt(Ctx& ctx, const std::string& kind, const std::string& name, uint32_t idx) {
  std::string path = "class/net/" + name + "/" + kind + "/tap" + std::to_string(idx) + "/dev";
  std::string s = readSmallFile(ctx.sysfs(), path);
  unsigned maj, min;
  if (sscanf(s.c_str(), "%u:%u", &maj, &min) != 2)
    throw SysError(EIO, std::string(kOp) + ": " + path + " holds no major:minor ('" + s + "')");
  return makedev(maj, min);
}

// A detached tmpfs, made once per handle: nodes made in it are reachable only through this fd,
// so nothing is ever left in /dev or /tmp, even if the process dies mid-way.
struct NodeFs {
  Fd mnt;
};

int nodeFs(Ctx& ctx) {
  auto it = ctx.state.find("macvtap.nodefs");
  if (it != ctx.state.end()) return static_cast<NodeFs*>(it->second.get())->mnt.get();
  int fs = static_cast<int>(syscall(SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC));
  if (fs < 0) return -1;
  Fd fsfd(fs);
  if (syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "mode", "0700", 0) < 0) return -1;
  if (syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "size", "64k", 0) < 0) return -1;
  if (syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) < 0) return -1;
  int mnt = static_cast<int>(syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOEXEC | MOUNT_ATTR_NOSUID));
  if (mnt < 0) return -1;
  auto nf = std::make_shared<NodeFs>();
  nf->mnt = Fd(mnt);
  ctx.state["macvtap.nodefs"] = nf;
  return mnt;
}

// A private character node for `devt`, removed (with its directory) when this goes out of scope.
class PrivateNode {
 public:
  PrivateNode(Ctx& ctx, dev_t devt) {
    static std::atomic<unsigned> seq{0};
    name_ = "tap-" + std::to_string(getpid()) + "-" + std::to_string(seq++);
    dirfd_ = nodeFs(ctx);
    if (dirfd_ >= 0) {
      if (mknodat(dirfd_, name_.c_str(), S_IFCHR | 0600, devt) == 0) { made_ = true; return; }
      dirfd_ = -1;  // fall back to a temp dir below
    }
    // No detached mounts (old kernel, seccomp): a mode-0700 temp dir under /dev, which is
    // devtmpfs and so never mounted nodev.
    char tmpl[] = "/dev/.vnetlink-XXXXXX";
    if (!mkdtemp(tmpl)) throw SysError(errno, std::string(kOp) + ": mkdtemp(/dev/.vnetlink-XXXXXX)");
    dir_ = tmpl;
    own_ = Fd(::open(tmpl, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!own_) { int e = errno; rmdir(tmpl); throw SysError(e, std::string(kOp) + ": open " + dir_); }
    dirfd_ = own_.get();
    if (mknodat(dirfd_, name_.c_str(), S_IFCHR | 0600, devt) < 0) {
      int e = errno;
      own_ = Fd();
      rmdir(tmpl);
      throw SysError(e, std::string(kOp) + ": mknod");
    }
    made_ = true;
  }
  ~PrivateNode() {
    if (made_) unlinkat(dirfd_, name_.c_str(), 0);
    if (!dir_.empty()) { own_ = Fd(); rmdir(dir_.c_str()); }
  }
  PrivateNode(const PrivateNode&) = delete;
  PrivateNode& operator=(const PrivateNode&) = delete;

  Fd open() const {
    Fd fd(openat(dirfd_, name_.c_str(), O_RDWR | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
    if (!fd) throw SysError(errno, std::string(kOp) + ": open macvtap device");
    return fd;
  }

 private:
  std::string name_;
  std::string dir_;
  Fd own_;
  int dirfd_ = -1;
  bool made_ = false;
};

Value getLink(Ctx& ctx, const std::string& name) {
  MsgBuilder m(RTM_GETLINK, 0);
  ifinfomsg ifi{};
  m.putHeader(ifi);
  m.putStr(IFLA_IFNAME, name);
  Value out;
  ctx.rtnl().request(m, kOp, [&](const nlmsghdr* h) {
    if (h->nlmsg_type == RTM_NEWLINK) out = decodeLink(h, ctx.names());
  });
  if (out.isUndefined()) throw SysError(ENODEV, std::string(kOp) + ": no link named '" + name + "'");
  return out;
}

Value macvtapOpen(Ctx& ctx, const Value& args) {
  const std::string name = args.str("name");
  const int queues = static_cast<int>(args.num("queues", 1));
  // fds[0] is used below: never let an empty set of queues through.
  if (queues < 1 || queues > 256) throw std::invalid_argument("queues must be 1-256");
  const bool vnetHdr = args.flag("vnetHdr", true);
  const bool multiQueue = args.flag("multiQueue", queues > 1);

  Value link = getLink(ctx, name);
  std::string kind = link.str("kind", "");
  // An ipvtap's queues are the same tap character device (drivers/net/tap.c) as a macvtap's.
  if (kind != "macvtap" && kind != "ipvtap")
    throw SysError(EINVAL, std::string(kOp) + ": '" + name + "' is " + (kind.empty() ? "a link without a kind" : "a " + kind) +
                               ", not a macvtap or ipvtap");
  uint32_t idx = link.u32("index");
  dev_t devt = macvtapDevt(ctx, kind, name, idx);

  std::vector<Fd> fds;
  {
    PrivateNode node(ctx, devt);
    for (int i = 0; i < queues; i++) fds.push_back(node.open());
  }
  // The device could have been replaced between the sysfs read and the open: check that the
  // fds belong to the link we looked at.
  ifreq ifr{};
  if (ioctl(fds[0].get(), TUNGETIFF, &ifr) < 0) throw SysError(errno, std::string(kOp) + ": TUNGETIFF");
  if (name != ifr.ifr_name || macvtapDevt(ctx, kind, name, idx) != devt)
    throw SysError(ENODEV, std::string(kOp) + ": '" + name + "' changed while it was being opened");

  unsigned offBits = tunOffloadBits(args.get("offloads"));
  unsigned applied = 0;
  int hdrSize = 0;
  for (auto& fd : fds) {
    // Sets or clears the features the fd starts with (a fresh macvtap fd has IFF_VNET_HDR on).
    ifreq req{};
    req.ifr_flags = static_cast<short>(IFF_TAP | IFF_NO_PI | (vnetHdr ? IFF_VNET_HDR : 0) | (multiQueue ? IFF_MULTI_QUEUE : 0));
    if (ioctl(fd.get(), TUNSETIFF, &req) < 0) throw SysError(errno, std::string(kOp) + ": TUNSETIFF");
    if (vnetHdr && args.has("vnetHdrSize")) tunSetVnetHdrSize(fd.get(), static_cast<int>(args.num("vnetHdrSize")), kOp);
    fdNonblockCloexec(fd.get(), kOp);
  }
  // Offloads belong to the device, not the queue: one TUNSETOFFLOAD does.
  if (args.has("offloads")) applied = tunApplyOffloads(fds[0].get(), offBits, kOp);
  if (vnetHdr && ioctl(fds[0].get(), TUNGETVNETHDRSZ, &hdrSize) < 0) throw SysError(errno, std::string(kOp) + ": TUNGETVNETHDRSZ");

  Value out = Value::object();
  out.set("name", name);
  out.set("index", idx);
  // The guest NIC must use this address: a macvtap passes only frames for its own MAC.
  out.set("mac", link.str("mac", ""));
  out.set("device", std::to_string(major(devt)) + ":" + std::to_string(minor(devt)));
  out.set("vnetHdr", vnetHdr);
  if (vnetHdr) out.set("vnetHdrSize", hdrSize);
  out.set("multiQueue", multiQueue);
  out.set("offloads", tunOffloadsValue(applied));
  Value arr = Value::array();
  for (auto& fd : fds) arr.push(fd.release());
  out.set("fds", std::move(arr));
  return out;
}

}  // namespace

VNL_OP("macvtap.open", macvtapOpen);

}  // namespace vnl
