// An exclusive advisory lock on a file (flock(2)), held for as long as the returned fd is
// open, so a process that dies releases it with no stale state. Node has no flock; the lock
// belongs to whoever owns the fd (the TypeScript caller, which closes it to unlock).
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ops/ops.h"
#include "transport/error.h"

namespace vnl {
namespace {

// fs.flock { path } -> { fd }. Never blocks: a lock someone holds is EWOULDBLOCK at once.
// The file is created 0600 if absent and must be a regular file owned by us (O_NOFOLLOW: a
// symlink is refused). A holder may unlink the file while we wait to lock it, leaving us a
// lock on an orphaned inode: the lock counts only if the path still names the inode we hold.
Value fsFlock(Ctx&, const Value& args) {
  std::string path = args.str("path");
  if (path.empty() || path.find('\0') != std::string::npos) throw std::invalid_argument("path must be a non-empty string");
  for (int attempt = 0; attempt < 8; attempt++) {
    Fd fd(open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600));
    if (!fd) throwErrno("fs.flock: " + path);
    struct stat st;
    if (fstat(fd.get(), &st) < 0) throwErrno("fs.flock: " + path);
    if (!S_ISREG(st.st_mode) || st.st_uid != geteuid()) throw SysError(EPERM, "fs.flock: " + path + " is not a regular file of ours");
    while (flock(fd.get(), LOCK_EX | LOCK_NB) < 0) {
      if (errno == EINTR) continue;
      throwErrno("fs.flock: " + path);
    }
    struct stat now;
    if (stat(path.c_str(), &now) == 0 && now.st_dev == st.st_dev && now.st_ino == st.st_ino) {
      Value out = Value::object();
      out.set("fd", fd.release());
      return out;
    }
    // Unlinked (or replaced) between open and lock: the fd closes, try the path again.
  }
  throw SysError(EAGAIN, "fs.flock: " + path + " kept being replaced");
}

}  // namespace

VNL_OP("fs.flock", fsFlock);

}  // namespace vnl
