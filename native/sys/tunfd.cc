#include "sys/tunfd.h"

#include <fcntl.h>
#include <sys/ioctl.h>

#include "transport/error.h"

namespace vnl {

static const struct { const char* name; unsigned bit; } kOffloads[] = {
    {"csum", TUN_F_CSUM}, {"tso4", TUN_F_TSO4}, {"tso6", TUN_F_TSO6},
    {"tsoEcn", TUN_F_TSO_ECN}, {"uso4", TUN_F_USO4}, {"uso6", TUN_F_USO6}};

unsigned tunOffloadBits(const Value* offloads) {
  unsigned bits = 0;
  if (!offloads) return 0;
  for (auto& o : kOffloads)
    if (offloads->flag(o.name)) bits |= o.bit;
  return bits;
}

unsigned tunApplyOffloads(int fd, unsigned bits, const std::string& op) {
  if (ioctl(fd, TUNSETOFFLOAD, bits) == 0) return bits;
  if (errno == EINVAL && (bits & (TUN_F_USO4 | TUN_F_USO6))) {
    unsigned without = bits & ~(TUN_F_USO4 | TUN_F_USO6);
    if (ioctl(fd, TUNSETOFFLOAD, without) == 0) return without;
  }
  throw SysError(errno, op + ": TUNSETOFFLOAD");
}

void tunSetVnetHdrSize(int fd, int size, const std::string& op) {
  if (ioctl(fd, TUNSETVNETHDRSZ, &size) < 0) throw SysError(errno, op + ": TUNSETVNETHDRSZ");
}

void fdNonblockCloexec(int fd, const std::string& op) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) throw SysError(errno, op + ": fcntl(O_NONBLOCK)");
  int fdfl = fcntl(fd, F_GETFD);
  if (fdfl < 0 || fcntl(fd, F_SETFD, fdfl | FD_CLOEXEC) < 0) throw SysError(errno, op + ": fcntl(FD_CLOEXEC)");
}

Value tunOffloadsValue(unsigned bits) {
  Value v = Value::object();
  for (auto& o : kOffloads) v.set(o.name, (bits & o.bit) != 0);
  return v;
}

}  // namespace vnl
