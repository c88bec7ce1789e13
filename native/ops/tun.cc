// tun/tap devices: /dev/net/tun + TUNSETIFF, opened on the handle's namespace thread so the
// device is born in that namespace (the kernel uses the opener's namespace). Link settings
// (mac, mtu, master, up) then go through rtnetlink like any other link.
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <unistd.h>

#include <cstring>

#include "codec/format.h"
#include "ops/link.h"
#include "sys/tunfd.h"

namespace vnl {
namespace {

constexpr unsigned kModeBits = IFF_TUN | IFF_TAP;

std::string flagWords(unsigned f) {
  std::string s = (f & IFF_TAP) ? "tap" : (f & IFF_TUN) ? "tun" : "?";
  if (f & IFF_MULTI_QUEUE) s += " multi_queue";
  if (f & IFF_VNET_HDR) s += " vnet_hdr";
  if (f & IFF_NO_PI) s += " no_pi";
  if (f & IFF_PERSIST) s += " persist";
  return s;
}

// tun_flags of an existing device in this namespace, or -1 when there is no such link;
// throws EEXIST when the name belongs to something that is not a tun/tap.
long existingTunFlags(Ctx& ctx, const std::string& name, const std::string& op) {
  if (name.find('%') != std::string::npos || !if_nametoindex(name.c_str())) return -1;
  std::string path = "class/net/" + name + "/tun_flags";
  Fd f(openat(ctx.sysfs(), path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!f) throw SysError(EEXIST, op + ": a link named '" + name + "' exists and is not a tun/tap device");
  char buf[32] = {0};
  ssize_t n = read(f.get(), buf, sizeof buf - 1);
  if (n <= 0) throw SysError(n < 0 ? errno : EIO, op + ": reading " + path);
  return strtol(buf, nullptr, 16);
}

// An existing device's `owner` or `group` from sysfs: a uid/gid, or -1 for none.
long readOwnerFile(Ctx& ctx, const std::string& name, const char* file, const std::string& op) {
  std::string path = "class/net/" + name + "/" + file;
  Fd f(openat(ctx.sysfs(), path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!f) throw SysError(errno, op + ": open " + path);
  char buf[32] = {0};
  ssize_t n = read(f.get(), buf, sizeof buf - 1);
  if (n <= 0) throw SysError(n < 0 ? errno : EIO, op + ": reading " + path);
  return strtol(buf, nullptr, 10);
}

// One queue: a fresh /dev/net/tun fd (non-blocking and close-on-exec from open, so no fcntl)
// attached to `name` with `flags`. Returns the fd, or an empty Fd when `excl` was asked and
// the name is taken (EBUSY: some device has it); writes the kernel's name for the device (a
// %d pattern resolved) to `real`.
Fd openQueue(const std::string& name, unsigned flags, std::string& real, const std::string& op, bool excl = false) {
  Fd fd(open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK));
  if (!fd) throw SysError(errno, op + ": open /dev/net/tun");
  ifreq ifr{};
  strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  ifr.ifr_flags = static_cast<short>(flags | (excl ? IFF_TUN_EXCL : 0));
  if (ioctl(fd.get(), TUNSETIFF, &ifr) < 0) {
    if (excl && errno == EBUSY) return Fd();
    throw SysError(errno, op + ": TUNSETIFF " + name);
  }
  real.assign(ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ));
  return fd;
}

std::string randomGuestMac() {
  uint8_t b[6];
  if (getrandom(b + 1, 5, 0) != 5) throw SysError(errno, "getrandom");
  b[0] = 0xfe;  // libvirt's rule: a tap's MAC never wins the bridge address (lowest MAC)
  return std::string(reinterpret_cast<char*>(b), 6);
}

// Device-wide settings go through one rtnetlink message once the device exists. A MAC alone
// is set with SIOCSIFHWADDR on the queue fd instead (the tun driver takes it there): no
// netlink round trip for the common `tap.create({ name })`.
void setLinkAttrs(Ctx& ctx, int fd0, uint32_t index, const Value& a, const std::string* mac, const std::string& op) {
  bool other = a.has("mtu") || a.has("txqueuelen") || a.has("group") || a.has("master") || a.has("up");
  if (!other) {
    if (!mac) return;
    ifreq ifr{};
    ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
    memcpy(ifr.ifr_hwaddr.sa_data, mac->data(), 6);
    if (ioctl(fd0, SIOCSIFHWADDR, &ifr) < 0) throw SysError(errno, op + ": SIOCSIFHWADDR");
    return;
  }
  MsgBuilder m(RTM_NEWLINK, 0);
  ifinfomsg ifi{};
  ifi.ifi_index = static_cast<int>(index);
  size_t hoff = m.putHeader(ifi);
  if (const Value* up = a.get("up")) {
    auto* h = m.headerAt<ifinfomsg>(hoff);
    h->ifi_change = IFF_UP;
    if (up->boolean()) h->ifi_flags = IFF_UP;
  }
  if (mac) m.putBytes(IFLA_ADDRESS, *mac);
  Value common = Value::object();
  for (const char* k : {"mtu", "txqueuelen", "group", "master"})
    if (const Value* v = a.get(k)) common.set(k, *v);
  fillLinkCommon(ctx, m, common, op.c_str(), false);
  ctx.rtnl().request(m, op.c_str());
}

// A master must exist and be able to take ports; checked before anything is created.
void checkMaster(Ctx& ctx, const std::string& master, const std::string& op) {
  MsgBuilder m(RTM_GETLINK, 0);
  ifinfomsg ifi{};
  ifi.ifi_index = static_cast<int>(ctx.ifindex(master, op.c_str()));
  m.putHeader(ifi);
  std::string kind;
  ctx.rtnl().request(m, op.c_str(), [&](const nlmsghdr* h) {
    if (h->nlmsg_type == RTM_NEWLINK) kind = decodeLink(h, ctx.names()).str("kind", "");
  });
  static const char* masters[] = {"bridge", "bond", "team", "vrf", "openvswitch"};
  for (const char* k : masters)
    if (kind == k) return;
  throw SysError(EINVAL, op + ": master '" + master + "' is " + (kind.empty() ? "a device without a kind" : "a " + kind) +
                             ", not a bridge");
}

Value fdsValue(const std::vector<Fd>& fds) {
  Value a = Value::array();
  for (auto& f : fds) a.push(f.get());
  return a;
}

Value tapCreate(Ctx& ctx, const Value& args) {
  const std::string op = "tap.create";
  std::string name = args.str("name");
  bool tun = args.str("mode", "tap") == "tun";
  unsigned queues = args.u32("queues", 1);
  // fds[0] is used below: never let an empty set of queues through.
  if (queues < 1 || queues > 256) throw std::invalid_argument("queues must be 1-256");
  bool vnetHdr = args.flag("vnetHdr");
  unsigned flags = (tun ? IFF_TUN : IFF_TAP) | IFF_NO_PI;
  if (vnetHdr) flags |= IFF_VNET_HDR;
  if (queues > 1 || args.flag("multiQueue")) flags |= IFF_MULTI_QUEUE;

  const Value* master = args.get("master");
  if (master) ctx.ifindex(master->string(), op.c_str());  // ENODEV before anything exists

  std::vector<Fd> fds;
  std::string real = name;
  // The first queue asks for a new device (IFF_TUN_EXCL): the common case costs no lookup.
  // EBUSY means the name is taken: then it must be a tap we may attach to (checked first).
  long existing = -1;
  {
    std::string got;
    Fd first = openQueue(name, flags, got, op, true);
    if (!first) {
      existing = existingTunFlags(ctx, name, op);
      if (existing < 0) throw SysError(EEXIST, op + ": a link named '" + name + "' exists");
      // Attaching to a device that already exists (a persistent tap, as QEMU does): the
      // kernel would silently rewrite vnet_hdr for every user, so demand the same flags.
      unsigned want = flags & (kModeBits | IFF_MULTI_QUEUE | IFF_VNET_HDR | IFF_NO_PI);
      unsigned have = static_cast<unsigned>(existing) & (kModeBits | IFF_MULTI_QUEUE | IFF_VNET_HDR | IFF_NO_PI);
      if (want != have)
        throw SysError(EINVAL, op + ": '" + name + "' exists with flags [" + flagWords(static_cast<unsigned>(existing)) +
                                   "] but [" + flagWords(flags) + "] was asked for");
      // Nothing of a live device is changed before its new master is known to take ports.
      if (master) checkMaster(ctx, master->string(), op);
      first = openQueue(name, flags, got, op);
    }
    fds.push_back(std::move(first));
    real = got;
  }
  bool created = existing < 0;

  bool persistSet = false;
  bool persistCleared = false;  // an existing persistent device we made non-persistent
  bool uidSet = false, gidSet = false;
  long oldUid = -1, oldGid = -1;  // an existing device's owner/group before we changed them
  try {
    for (unsigned i = 1; i < queues; i++) {
      std::string got;
      fds.push_back(openQueue(real, flags, got, op));
    }
    int fd0 = fds[0].get();
    if (const Value* sz = args.get("vnetHdrSize")) tunSetVnetHdrSize(fd0, static_cast<int>(sz->number()), op);
    // A device the kernel just made has no offloads: TUNSETOFFLOAD 0 would change nothing.
    // An existing one keeps its last user's, so it is always set there.
    unsigned off = tunOffloadBits(args.get("offloads"));
    if (off || !created) off = tunApplyOffloads(fd0, off, op);
    std::string mac;
    const std::string* macp = nullptr;
    if (const Value* v = args.get("mac")) { mac = parseMac(v->string(), "mac"); macp = &mac; }
    else if (!tun && created) { mac = randomGuestMac(); macp = &mac; }
    uint32_t index = ctx.ifindex(real, op.c_str());
    try {
      setLinkAttrs(ctx, fd0, index, args, macp, op);
    } catch (const SysError&) {
      // The kernel refused (a new tap's master was checked only now): say why in our words
      // when the master is no bridge; the device goes with the rollback below.
      if (master && created) checkMaster(ctx, master->string(), op);
      throw;
    }
    // Owner and group come after the link settings (the step that fails in practice): the
    // kernel cannot clear them again (TUNSETOWNER/TUNSETGROUP refuse -1), only restore a value.
    if (const Value* u = args.get("uid")) {
      if (!created) oldUid = readOwnerFile(ctx, real, "owner", op);
      if (ioctl(fd0, TUNSETOWNER, static_cast<unsigned long>(u->number())) < 0) throw SysError(errno, op + ": TUNSETOWNER");
      uidSet = true;
    }
    if (const Value* g = args.get("gid")) {
      if (!created) oldGid = readOwnerFile(ctx, real, "group", op);
      if (ioctl(fd0, TUNSETGROUP, static_cast<unsigned long>(g->number())) < 0) throw SysError(errno, op + ": TUNSETGROUP");
      gidSet = true;
    }
    if (const Value* p = args.get("persist")) {
      if (ioctl(fd0, TUNSETPERSIST, p->boolean() ? 1UL : 0UL) < 0) throw SysError(errno, op + ": TUNSETPERSIST");
      persistSet = p->boolean();
      persistCleared = !p->boolean() && (static_cast<unsigned long>(existing) & IFF_PERSIST);
    }

    int vsz = 0;
    if (const Value* sz = args.get("vnetHdrSize")) vsz = static_cast<int>(sz->number());
    else if (vnetHdr && ioctl(fd0, TUNGETVNETHDRSZ, &vsz) < 0) vsz = 0;
    Value out = Value::object();
    out.set("name", real);
    out.set("index", index);
    out.set("mode", tun ? "tun" : "tap");
    out.set("flags", static_cast<unsigned>(flags));
    out.set("vnetHdr", vnetHdr);
    out.set("vnetHdrSize", vsz);
    out.set("offloads", tunOffloadsValue(off));
    out.set("created", created);
    out.set("fds", fdsValue(fds));
    for (auto& f : fds) f.release();  // now owned by the JS Tap object
    return out;
  } catch (...) {
    // Roll back: a device we made must not outlive a failed create.
    if (created && persistSet && !fds.empty()) ioctl(fds[0].get(), TUNSETPERSIST, 0UL);
    // ...and one we only attached to must survive it: closing our fds would destroy it.
    if (persistCleared) ioctl(fds[0].get(), TUNSETPERSIST, 1UL);
    // ...with the owner and group it had (-1, none, cannot be set back: see above).
    if (uidSet && oldUid >= 0) ioctl(fds[0].get(), TUNSETOWNER, static_cast<unsigned long>(oldUid));
    if (gidSet && oldGid >= 0) ioctl(fds[0].get(), TUNSETGROUP, static_cast<unsigned long>(oldGid));
    throw;
  }
}

// More queues on a live multi-queue device (QEMU's queue hot-plug).
Value tapAddQueues(Ctx& ctx, const Value& args) {
  const std::string op = "tap.addQueues";
  std::string name = args.str("name");
  unsigned flags = args.u32("flags");
  unsigned count = args.u32("count");
  long existing = existingTunFlags(ctx, name, op);
  if (existing < 0) throw SysError(ENODEV, op + ": no tap named '" + name + "'");
  std::vector<Fd> fds;
  for (unsigned i = 0; i < count; i++) {
    std::string got;
    fds.push_back(openQueue(name, flags, got, op));
  }
  Value out = fdsValue(fds);
  for (auto& f : fds) f.release();
  return out;
}

// TUNSETQUEUE: a detached queue gets no frames and its writes are refused until re-attached.
Value tapSetQueue(Ctx&, const Value& args) {
  ifreq ifr{};
  ifr.ifr_flags = static_cast<short>(args.flag("enable") ? IFF_ATTACH_QUEUE : IFF_DETACH_QUEUE);
  if (ioctl(static_cast<int>(args.num("fd")), TUNSETQUEUE, &ifr) < 0) throw SysError(errno, "tap.setQueue: TUNSETQUEUE");
  return Value();
}


}  // namespace

VNL_OP("tap.create", tapCreate);
VNL_OP("tap.addQueues", tapAddQueues);
VNL_OP("tap.setQueue", tapSetQueue);

}  // namespace vnl
