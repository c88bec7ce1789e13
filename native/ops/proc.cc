// Starting a helper daemon inside the handle's namespace. A process inherits the network
// namespace of the thread that creates it, so posix_spawn on the handle's thread puts the
// daemon in the right namespace with no setns and no `ip netns exec`. The launcher is then
// waited for on a waiter thread of the handle (daemons such as dnsmasq exit 0 once the forked
// daemon is ready, or print why not), so neither the event loop nor the handle's other calls
// wait, and nothing is left for libuv to reap.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "ops/offthread.h"
#include "ops/ops.h"

namespace vnl {
namespace {

// SO_NETNS_COOKIE (include/uapi/asm-generic/socket.h); older libc headers lack it.
constexpr int kSoNetnsCookie = 71;

struct SpawnAttr {
  posix_spawnattr_t a;
  posix_spawn_file_actions_t fa;
  SpawnAttr() { posix_spawnattr_init(&a); posix_spawn_file_actions_init(&fa); }
  ~SpawnAttr() { posix_spawnattr_destroy(&a); posix_spawn_file_actions_destroy(&fa); }
};

int64_t nowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

struct Launch {
  pid_t pid = -1;
  Fd rd;      // the launcher's stderr
  Fd pidfd;   // -1 on kernels without pidfd_open
  std::string name;
  int timeoutMs = 10000;
};

// Waits for the launcher to exit, collecting what it writes to stderr meanwhile. A daemon may
// keep the pipe open after the launcher exits, so EOF is not awaited. Killed on timeout and
// when cancelFd fires, so a launch never outlives its handle.
Value waitLauncher(Launch& l, int cancelFd) {
  std::string err;
  int64_t deadline = nowMs() + l.timeoutMs;
  bool exited = false, rdOpen = true, cancelled = false;
  int status = 0;
  while (!exited) {
    if (waitpid(l.pid, &status, WNOHANG) == l.pid) { exited = true; break; }
    int left = static_cast<int>(deadline - nowMs());
    if (left <= 0) break;
    pollfd fds[3] = {{rdOpen ? l.rd.get() : -1, POLLIN, 0}, {l.pidfd.get(), POLLIN, 0}, {cancelFd, POLLIN, 0}};
    // Without a pidfd (old kernels) fall back to polling waitpid every 20 ms.
    int n = poll(fds, 3, l.pidfd ? left : std::min(left, 20));
    if (n < 0 && errno != EINTR) throwErrno("proc.spawn: poll");
    if (n > 0 && fds[2].revents) { cancelled = true; break; }
    if (n > 0 && (fds[0].revents & (POLLIN | POLLHUP))) {
      char buf[4096];
      ssize_t r = read(l.rd.get(), buf, sizeof buf);
      if (r > 0 && err.size() < 65536) err.append(buf, static_cast<size_t>(r));
      else if (r == 0) rdOpen = false;
    }
  }
  if (!exited) {
    kill(l.pid, SIGKILL);
    waitpid(l.pid, &status, 0);
    if (cancelled) throw SysError(ECANCELED, "proc.spawn: " + l.name + " was stopped while starting (the handle closed)");
    throw SysError(ETIMEDOUT, "proc.spawn: " + l.name + " did not finish starting within " + std::to_string(l.timeoutMs) + " ms");
  }
  fcntl(l.rd.get(), F_SETFL, O_NONBLOCK);
  for (;;) {
    char buf[4096];
    ssize_t r = read(l.rd.get(), buf, sizeof buf);
    if (r <= 0 || err.size() >= 65536) break;
    err.append(buf, static_cast<size_t>(r));
  }
  Value out = Value::object();
  out.set("pid", static_cast<int>(l.pid));
  if (WIFEXITED(status)) out.set("code", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) out.set("signal", WTERMSIG(status));
  out.set("stderr", err);
  return out;
}

// proc.spawn { argv: string[], env?: string[], timeoutMs? } -> { pid, code?, signal?, stderr }
Value procSpawn(Ctx&, const Value& args) {
  std::vector<std::string> argv, env;
  for (auto& x : args.req("argv").items()) argv.push_back(x.string());
  if (argv.empty()) throw std::invalid_argument("argv must not be empty");
  if (const Value* e = args.get("env")) for (auto& x : e->items()) env.push_back(x.string());
  int timeoutMs = static_cast<int>(args.num("timeoutMs", 10000));
  std::vector<char*> av, ev;
  for (auto& s : argv) av.push_back(const_cast<char*>(s.c_str()));
  av.push_back(nullptr);
  for (auto& s : env) ev.push_back(const_cast<char*>(s.c_str()));
  ev.push_back(nullptr);

  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) throwErrno("proc.spawn: pipe");
  Fd rd(p[0]), wr(p[1]);
  SpawnAttr sa;
  // This thread blocks every signal and Node ignores some (SIGPIPE): the child must start
  // with an empty mask and default dispositions, or it could never be stopped by SIGTERM.
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&sa.a, &none);
  posix_spawnattr_setsigdefault(&sa.a, &all);
  posix_spawnattr_setflags(&sa.a, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSID);
  posix_spawn_file_actions_addopen(&sa.fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&sa.fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&sa.fa, wr.get(), 2);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
  posix_spawn_file_actions_addclosefrom_np(&sa.fa, 3);  // nothing of ours leaks into the daemon
#endif

  pid_t pid;
  int rc = posix_spawn(&pid, av[0], &sa.fa, &sa.a, av.data(), ev.data());
  if (rc != 0) throw SysError(rc, "proc.spawn: " + argv[0]);
  wr = Fd();  // our copy of the write end; the child holds its own

  // Everything after this needs no namespace: the wait for the launcher leaves the handle's thread.
  auto launch = std::make_shared<Launch>();
  launch->pid = pid;
  launch->rd = std::move(rd);
  launch->pidfd = Fd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  launch->name = argv[0];
  launch->timeoutMs = timeoutMs;
  finishOffThread([launch](int cancelFd) { return waitLauncher(*launch, cancelFd); });
  return Value();
}

// The identity of the handle's namespace (device and inode of its nsfs file), to keep
// per-namespace state apart.
Value procNetnsId(Ctx&, const Value&) {
  struct stat st;
  if (stat("/proc/thread-self/ns/net", &st) < 0) throwErrno("proc.netnsId: stat(/proc/thread-self/ns/net)");
  Value out = Value::object();
  out.set("dev", static_cast<double>(st.st_dev));
  out.set("ino", static_cast<double>(st.st_ino));
  // The namespace's cookie: unlike its inode, never reused while the machine runs, so state
  // left by a namespace that is gone is told apart from a new one that got the same inode.
  // A socket made on this thread lives in the thread's namespace. Linux >= 5.14; absent before.
  Fd s(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  uint64_t cookie = 0;
  socklen_t len = sizeof cookie;
  if (s && getsockopt(s.get(), SOL_SOCKET, kSoNetnsCookie, &cookie, &len) == 0 && len == sizeof cookie)
    out.set("cookie", std::to_string(cookie));
  return out;
}

}  // namespace

VNL_OP("proc.spawn", procSpawn);
VNL_OP("proc.netnsId", procNetnsId);

}  // namespace vnl
