// A small static helper for the VM tests (built with gcc -static by examples/vm/image.js).
//   In the guest (busybox has no ethtool):
//     vmhelper channels IFACE N   ETHTOOL_SCHANNELS combined=N, then prints "combined=N max=M"
//     vmhelper stats IFACE        the driver's per-queue counters (ETHTOOL_GSTATS), "name=value" lines
//   On the host, as a VMM that opens a persistent tap by name (Firecracker, cloud-hypervisor):
//     vmhelper tapexec NAME QUEUES UID GID PROG ARGS...
//       opens /dev/net/tun QUEUES times, drops to UID/GID, attaches each with TUNSETIFF
//       (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, plus IFF_MULTI_QUEUE when QUEUES > 1) as fds 3, 4, ...,
//       prints "tapexec: opened N" or the errno on stderr, then execs PROG with them.
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/ethtool.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static int ethtool(const char *ifname, void *data) {
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  if (s < 0) return -1;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
  ifr.ifr_data = data;
  int r = ioctl(s, SIOCETHTOOL, &ifr);
  int e = errno;
  close(s);
  errno = e;
  return r;
}

static int channels(const char *ifname, unsigned n) {
  struct ethtool_channels ch = {.cmd = ETHTOOL_GCHANNELS};
  if (ethtool(ifname, &ch) < 0) { perror("ETHTOOL_GCHANNELS"); return 1; }
  ch.cmd = ETHTOOL_SCHANNELS;
  ch.combined_count = n;
  if (ethtool(ifname, &ch) < 0) { perror("ETHTOOL_SCHANNELS"); return 1; }
  ch.cmd = ETHTOOL_GCHANNELS;
  if (ethtool(ifname, &ch) < 0) { perror("ETHTOOL_GCHANNELS"); return 1; }
  printf("combined=%u max=%u\n", ch.combined_count, ch.max_combined);
  return 0;
}

static int stats(const char *ifname) {
  struct { struct ethtool_sset_info hdr; unsigned data[1]; } info = {.hdr = {.cmd = ETHTOOL_GSSET_INFO, .sset_mask = 1ULL << ETH_SS_STATS}};
  if (ethtool(ifname, &info) < 0) { perror("ETHTOOL_GSSET_INFO"); return 1; }
  unsigned n = info.hdr.sset_mask ? info.data[0] : 0;
  if (n == 0 || n > 4096) { fprintf(stderr, "stats: %u counters\n", n); return 1; }
  struct ethtool_gstrings *names = calloc(1, sizeof *names + (size_t)n * ETH_GSTRING_LEN);
  struct ethtool_stats *vals = calloc(1, sizeof *vals + (size_t)n * sizeof(__u64));
  if (!names || !vals) return 1;
  names->cmd = ETHTOOL_GSTRINGS; names->string_set = ETH_SS_STATS; names->len = n;
  vals->cmd = ETHTOOL_GSTATS; vals->n_stats = n;
  if (ethtool(ifname, names) < 0 || ethtool(ifname, vals) < 0) { perror("ETHTOOL_GSTRINGS/GSTATS"); return 1; }
  unsigned m = names->len < vals->n_stats ? names->len : vals->n_stats;
  for (unsigned i = 0; i < m && i < n; i++) {
    char name[ETH_GSTRING_LEN + 1];
    memcpy(name, names->data + (size_t)i * ETH_GSTRING_LEN, ETH_GSTRING_LEN);
    name[ETH_GSTRING_LEN] = 0;
    if (strstr(name, "_packets")) printf("%s=%llu\n", name, (unsigned long long)vals->data[i]);
  }
  return 0;
}

static int tapexec(int argc, char **argv) {
  if (argc < 7) { fprintf(stderr, "usage: vmhelper tapexec NAME QUEUES UID GID PROG ARGS...\n"); return 2; }
  const char *name = argv[2];
  int queues = atoi(argv[3]);
  uid_t uid = (uid_t)strtoul(argv[4], NULL, 10);
  gid_t gid = (gid_t)strtoul(argv[5], NULL, 10);
  if (queues < 1 || queues > 16 || strlen(name) >= IFNAMSIZ) { fprintf(stderr, "tapexec: bad arguments\n"); return 2; }
  // /dev/net/tun is root-only on some hosts (0600 without udev's rule); a jailer gives the
  // jail its own node. Here we open the node as root, then drop every privilege before
  // TUNSETIFF: the tap's owner check is what lets us attach, not root.
  int fds[16];
  for (int q = 0; q < queues; q++) {
    fds[q] = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fds[q] < 0) { perror("tapexec: open /dev/net/tun"); return 1; }
  }
  if (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0) { perror("tapexec: drop privileges"); return 1; }
  for (int q = 0; q < queues; q++) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | (queues > 1 ? IFF_MULTI_QUEUE : 0);
    if (ioctl(fds[q], TUNSETIFF, &ifr) < 0) { fprintf(stderr, "tapexec: TUNSETIFF %s: %s\n", name, strerror(errno)); return 1; }
  }
  // Move them to 3, 4, ... (above every one of them first, so no dup2 lands on another queue's fd).
  for (int q = 0; q < queues; q++) {
    int hi = fcntl(fds[q], F_DUPFD_CLOEXEC, 64);
    if (hi < 0) { perror("tapexec: F_DUPFD"); return 1; }
    close(fds[q]);
    fds[q] = hi;
  }
  for (int q = 0; q < queues; q++) {
    if (dup2(fds[q], 3 + q) < 0) { perror("tapexec: dup2"); return 1; }
    close(fds[q]);
  }
  fprintf(stderr, "tapexec: opened %d as uid %u\n", queues, (unsigned)getuid());
  execvp(argv[6], argv + 6);
  perror("tapexec: exec");
  return 127;
}

int main(int argc, char **argv) {
  if (argc >= 4 && !strcmp(argv[1], "channels")) return channels(argv[2], (unsigned)atoi(argv[3]));
  if (argc >= 3 && !strcmp(argv[1], "stats")) return stats(argv[2]);
  if (argc >= 2 && !strcmp(argv[1], "tapexec")) return tapexec(argc, argv);
  fprintf(stderr, "usage: vmhelper channels IFACE N | stats IFACE | tapexec NAME QUEUES UID GID PROG ARGS...\n");
  return 2;
}
