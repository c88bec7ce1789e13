// Named network namespaces, the iproute2 way: a file under /run/netns bind-mounted over a
// thread's /proc/thread-self/ns/net. The unshare happens on a short-lived thread of its own,
// so no thread that does other work ever changes namespace.
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <thread>

#include "ops/ops.h"

namespace vnl {
namespace {

const char* kRunDir = "/run/netns";

// /run/netns must be a shared mount point so the bind mounts propagate (as `ip netns add`).
void prepareRunDir() {
  mkdir("/run", 0755);
  if (mkdir(kRunDir, 0755) < 0 && errno != EEXIST) throwErrno("netns.add: mkdir /run/netns");
  for (int tries = 0; tries < 2; tries++) {
    if (mount("", kRunDir, "none", MS_SHARED | MS_REC, nullptr) == 0) return;
    if (errno != EINVAL || tries) throwErrno("netns.add: mount --make-shared /run/netns");
    if (mount(kRunDir, kRunDir, "none", MS_BIND | MS_REC, nullptr) < 0) throwErrno("netns.add: bind /run/netns");
  }
}

Value netnsAdd(Ctx&, const Value& args) {
  std::string name = args.str("name");
  prepareRunDir();
  std::string path = std::string(kRunDir) + "/" + name;
  int fd = open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
  if (fd < 0) throw SysError(errno, "netns.add: " + path);
  close(fd);
  int err = 0;
  std::string where;
  std::thread t([&] {
    if (unshare(CLONE_NEWNET) < 0) { err = errno; where = "netns.add: unshare(CLONE_NEWNET)"; return; }
    if (mount("/proc/thread-self/ns/net", path.c_str(), "none", MS_BIND, nullptr) < 0) {
      err = errno; where = "netns.add: bind mount " + path;
    }
  });
  t.join();
  if (err) {
    unlink(path.c_str());
    throw SysError(err, where);
  }
  return path;
}

Value netnsDel(Ctx&, const Value& args) {
  std::string path = std::string(kRunDir) + "/" + args.str("name");
  if (umount2(path.c_str(), MNT_DETACH) < 0 && errno != EINVAL) throw SysError(errno, "netns.delete: umount " + path);
  if (unlink(path.c_str()) < 0) throw SysError(errno, "netns.delete: " + path);
  return Value();
}

Value netnsList(Ctx&, const Value&) {
  Value out = Value::array();
  DIR* d = opendir(kRunDir);
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    out.push(std::string(e->d_name));
  }
  closedir(d);
  return out;
}

}  // namespace

VNL_OP("netns.add", netnsAdd);
VNL_OP("netns.delete", netnsDel);
VNL_OP("netns.list", netnsList);

}  // namespace vnl
