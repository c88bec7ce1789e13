/* The floor for `vnetlink bench create`: the same create requests, one at a time, with raw
 * netlink (or the tun ioctl for taps), no library. Run inside the bench's namespace:
 *   nlcreate KIND COUNT PREFIX GROUP [LOWER] [DEL_SAMPLE]
 * KIND: veth | bridge | macvtap | vxlan | tap. Creates COUNT devices named PREFIX<i> (veth peers
 * PREFIX<i>p) in link group GROUP, deletes DEL_SAMPLE of them one by one, the rest with one
 * group delete, and prints one JSON line of timings. Build: cc -O2 -o nlcreate nlcreate.c (with nlmsg.h beside it) */
#define _GNU_SOURCE
#include <errno.h>
#include <net/if.h> /* before the linux headers: glibc and linux both define IFF_* */
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define NL_PROG "nlcreate"
#include "nlmsg.h"

static int nl;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}
static struct ifinfomsg *ifi_at(size_t off) { return (struct ifinfomsg *)(buf + off); }

/* Sends the message and waits for its ack; returns 0 or a positive errno. */
static int transact(void) {
  ((struct nlmsghdr *)buf)->nlmsg_len = len;
  struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
  if (sendto(nl, buf, len, 0, (struct sockaddr *)&sa, sizeof sa) < 0) die("sendto", errno);
  char rx[16384];
  for (;;) {
    ssize_t n = recv(nl, rx, sizeof rx, 0);
    if (n < 0) { if (errno == EINTR) continue; die("recv", errno); }
    for (struct nlmsghdr *h = (struct nlmsghdr *)rx; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_seq != seq || h->nlmsg_type != NLMSG_ERROR) continue;
      return -((struct nlmsgerr *)NLMSG_DATA(h))->error;
    }
  }
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  if (argc < 5) { fprintf(stderr, "usage: nlcreate KIND COUNT PREFIX GROUP [LOWER] [DEL_SAMPLE]\n"); return 2; }
  const char *kind = argv[1], *prefix = argv[3];
  int count = atoi(argv[2]);
  uint32_t group = (uint32_t)atoi(argv[4]);
  const char *lower = argc > 5 && argv[5][0] && strcmp(argv[5], "-") ? argv[5] : NULL;
  int sample = argc > 6 ? atoi(argv[6]) : 0;
  if (sample > count) sample = count;
  int istap = !strcmp(kind, "tap");
  nl = nlsock(NETLINK_ROUTE);
  int lowerIdx = lower ? (int)if_nametoindex(lower) : 0;
  int *fds = calloc(count, sizeof(int));
  double *lat = calloc(count, sizeof(double));
  char name[IFNAMSIZ], peer[IFNAMSIZ];

  double t0 = now();
  for (int i = 0; i < count; i++) {
    snprintf(name, sizeof name, "%s%d", prefix, i);
    double s = now();
    if (istap) {
      /* A tap is made with the tun ioctl (rtnetlink cannot); the fd keeps it alive. */
      int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
      if (fd < 0) die("open /dev/net/tun", errno);
      struct ifreq ifr = {0};
      ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
      snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
      if (ioctl(fd, TUNSETIFF, &ifr) < 0) die("TUNSETIFF", errno);
      fds[i] = fd;
      /* the group, so one group delete removes them (as tap.create({group}) does) */
      msg_start(RTM_NEWLINK, 0, sizeof(struct ifinfomsg));
      ifi_at(NLMSG_HDRLEN)->ifi_index = (int)if_nametoindex(name);
      put_u32(IFLA_GROUP, group);
      int e = transact();
      if (e) die("set group", e);
    } else {
      msg_start(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, sizeof(struct ifinfomsg));
      put_str(IFLA_IFNAME, name);
      put_u32(IFLA_GROUP, group);
      if ((!strcmp(kind, "macvtap")) && lowerIdx) put_u32(IFLA_LINK, (uint32_t)lowerIdx);
      size_t li = nest(IFLA_LINKINFO);
      put_str(IFLA_INFO_KIND, kind);
      if (!strcmp(kind, "veth")) {
        size_t d = nest(IFLA_INFO_DATA);
        size_t p = nest(VETH_INFO_PEER);
        len += sizeof(struct ifinfomsg);
        snprintf(peer, sizeof peer, "%s%dp", prefix, i);
        put_str(IFLA_IFNAME, peer);
        put_u32(IFLA_GROUP, group);
        nest_end(p);
        nest_end(d);
      } else if (!strcmp(kind, "macvtap")) {
        size_t d = nest(IFLA_INFO_DATA);
        put_u32(IFLA_MACVLAN_MODE, MACVLAN_MODE_BRIDGE);
        nest_end(d);
      } else if (!strcmp(kind, "vxlan")) {
        size_t d = nest(IFLA_INFO_DATA);
        put_u32(IFLA_VXLAN_ID, (uint32_t)i + 1);
        put_u16(IFLA_VXLAN_PORT, htons(4789));
        if (lowerIdx) put_u32(IFLA_VXLAN_LINK, (uint32_t)lowerIdx);
        nest_end(d);
      }
      nest_end(li);
      int e = transact();
      if (e) die("RTM_NEWLINK", e);
    }
    lat[i] = now() - s;
  }
  double createSec = now() - t0;

  double t1 = now();
  for (int i = 0; i < sample; i++) {
    snprintf(name, sizeof name, "%s%d", prefix, i);
    if (istap) { close(fds[i]); fds[i] = -1; continue; }  /* closing the last fd unregisters it */
    msg_start(RTM_DELLINK, 0, sizeof(struct ifinfomsg));
    put_str(IFLA_IFNAME, name);
    int e = transact();
    if (e) die("RTM_DELLINK", e);
  }
  double delOneSec = now() - t1;

  double t2 = now();
  msg_start(RTM_DELLINK, 0, sizeof(struct ifinfomsg));
  put_u32(IFLA_GROUP, group);
  int e = count > sample ? transact() : 0;
  if (e) die("RTM_DELLINK group", e);
  double delGroupSec = now() - t2;
  for (int i = 0; i < count; i++) if (istap && fds[i] > 0) close(fds[i]);

  qsort(lat, count, sizeof(double), cmp);
  printf("{\"kind\":\"%s\",\"count\":%d,\"createSec\":%.6f,\"p50Ms\":%.4f,\"p99Ms\":%.4f,"
         "\"delOneCount\":%d,\"delOneSec\":%.6f,\"delGroupCount\":%d,\"delGroupSec\":%.6f}\n",
         kind, count, createSec, count ? lat[count / 2] * 1e3 : 0, count ? lat[(int)(count * 0.99)] * 1e3 : 0,
         sample, delOneSec, count - sample, delGroupSec);
  return 0;
}
