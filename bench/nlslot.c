/* The floor for `vnetlink bench slot`: the same sandbox-slot recipe, one step at a time, with
 * raw netlink and the tun ioctl, no library, one thread:
 *   nlslot HOSTNS PREFIX COUNT TABLE CHAIN PORT0
 * For slot k: namespace PREFIX<k> (unshare + a bind mount under /run/netns, as `ip netns add`),
 * veth vh<k> in HOSTNS with peer eth0 in the slot, point-to-point addresses on both ends (host
 * x.1, slot x.(k%253+2), x = 198.51.100 / 203.0.113 / 192.168.122), both up, a default route
 * inside, bridge br0 (up) inside, a persistent multi-queue vnet_hdr tap tap0 on it (up), and in
 * HOSTNS an nftables rule `tcp dport PORT0+k dnat to <slot addr>:22` appended to TABLE/CHAIN
 * (family ip; it must exist). Prints {"setupMs", "lat": [ms per slot]}, then waits for a line
 * on stdin and tears down (rule deleted by handle, namespace unmounted), printing
 * {"teardownMs"}. Build: cc -O2 -o nlslot nlslot.c (with nlmsg.h beside it) */
#define _GNU_SOURCE
#include <errno.h>
#include <net/if.h> /* before the linux headers: glibc and linux both define IFF_* */
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/if_tun.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define NL_PROG "nlslot"
#include "nlmsg.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Sends buf[0..n) and reads until the ack of `want`; an echoed NFT rule's handle goes to *handle. */
static int transact(int fd, const char *what, size_t n, uint32_t want, uint64_t *handle) {
  struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
  if (sendto(fd, buf, n, 0, (struct sockaddr *)&sa, sizeof sa) < 0) die("sendto", errno);
  static char rx[65536];
  for (;;) {
    ssize_t r = recv(fd, rx, sizeof rx, 0);
    if (r < 0) { if (errno == EINTR) continue; die("recv", errno); }
    for (struct nlmsghdr *h = (struct nlmsghdr *)rx; NLMSG_OK(h, r); h = NLMSG_NEXT(h, r)) {
      if (h->nlmsg_seq != want) continue;
      if (h->nlmsg_type == NLMSG_ERROR) {
        int e = -((struct nlmsgerr *)NLMSG_DATA(h))->error;
        if (e) die(what, e);
        return 0;
      }
      if (handle && h->nlmsg_type == ((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWRULE)) {
        int alen = h->nlmsg_len - NLMSG_LENGTH(sizeof(struct nfgenmsg));
        for (struct nlattr *a = (struct nlattr *)((char *)NLMSG_DATA(h) + sizeof(struct nfgenmsg));
             alen >= (int)NLA_HDRLEN && a->nla_len >= NLA_HDRLEN && a->nla_len <= alen;
             alen -= NLA_ALIGN(a->nla_len), a = (struct nlattr *)((char *)a + NLA_ALIGN(a->nla_len)))
          if ((a->nla_type & NLA_TYPE_MASK) == NFTA_RULE_HANDLE && a->nla_len == NLA_HDRLEN + 8) {
            uint64_t v;
            memcpy(&v, (char *)a + NLA_HDRLEN, 8);
            *handle = be64toh(v);
          }
      }
    }
  }
}
static void rtnl(int fd, const char *what) {
  ((struct nlmsghdr *)buf)->nlmsg_len = len;
  transact(fd, what, len, seq, NULL);
}

static int ifindex(int fd, const char *name) {
  struct ifreq ifr = {0};
  strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
  if (ioctl(fd, SIOCGIFINDEX, &ifr) < 0) die(name, errno);
  return ifr.ifr_ifindex;
}
static void link_up(int fd, int idx, int master) {
  struct ifinfomsg *ifi = msg_start(RTM_NEWLINK, 0, sizeof *ifi);
  ifi->ifi_index = idx;
  ifi->ifi_flags = ifi->ifi_change = IFF_UP;
  if (master) put_u32(IFLA_MASTER, master);
  rtnl(fd, "link up");
}
static void addr_ptp(int fd, int idx, uint32_t local, uint32_t peer) {
  struct ifaddrmsg *ifa = msg_start(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, sizeof *ifa);
  ifa->ifa_family = AF_INET;
  ifa->ifa_prefixlen = 32;
  ifa->ifa_index = idx;
  put(IFA_LOCAL, &local, 4);
  put(IFA_ADDRESS, &peer, 4);
  rtnl(fd, "addr add");
}

/* An nftables batch around one message built by `fill`; returns the rule handle when echoed. */
static uint64_t nft_batch(int fd, void (*fill)(void *), void *arg) {
  static char out[8192];
  size_t n = 0;
  uint32_t s0 = ++seq;
  struct nlmsghdr *b = (struct nlmsghdr *)out;
  memset(out, 0, NLMSG_SPACE(sizeof(struct nfgenmsg)));
  b->nlmsg_len = NLMSG_LENGTH(sizeof(struct nfgenmsg));
  b->nlmsg_type = NFNL_MSG_BATCH_BEGIN;
  b->nlmsg_flags = NLM_F_REQUEST;
  b->nlmsg_seq = s0;
  ((struct nfgenmsg *)NLMSG_DATA(b))->res_id = htons(NFNL_SUBSYS_NFTABLES);
  n += NLMSG_ALIGN(b->nlmsg_len);
  fill(arg);
  uint32_t rs = seq;
  ((struct nlmsghdr *)buf)->nlmsg_len = len;
  memcpy(out + n, buf, len);
  n += NLMSG_ALIGN(len);
  struct nlmsghdr *e = (struct nlmsghdr *)(out + n);
  memset(e, 0, NLMSG_SPACE(sizeof(struct nfgenmsg)));
  e->nlmsg_len = NLMSG_LENGTH(sizeof(struct nfgenmsg));
  e->nlmsg_type = NFNL_MSG_BATCH_END;
  e->nlmsg_flags = NLM_F_REQUEST;
  e->nlmsg_seq = ++seq;
  ((struct nfgenmsg *)NLMSG_DATA(e))->res_id = htons(NFNL_SUBSYS_NFTABLES);
  n += NLMSG_ALIGN(e->nlmsg_len);
  memcpy(buf, out, n);
  uint64_t handle = 0;
  transact(fd, "nft", n, rs, &handle);
  return handle;
}

static const char *g_table, *g_chain;
struct rule { uint32_t addr; uint16_t port; uint64_t handle; };

static void expr_start(size_t *elem, size_t *data, const char *name) {
  *elem = nest(NFTA_LIST_ELEM);
  put_str(NFTA_EXPR_NAME, name);
  *data = nest(NFTA_EXPR_DATA);
}
static void expr_end(size_t elem, size_t data) { nest_end(data); nest_end(elem); }
static void put_value(uint16_t type, const void *v, size_t n) {
  size_t d = nest(type);
  put(NFTA_DATA_VALUE, v, n);
  nest_end(d);
}

/* `cmp eq` of register `reg` against `n` bytes of `v`. */
static void put_cmp_eq(uint32_t reg, const void *v, size_t n) {
  size_t el, d;
  expr_start(&el, &d, "cmp");
  put_be32(NFTA_CMP_SREG, reg);
  put_be32(NFTA_CMP_OP, NFT_CMP_EQ);
  put_value(NFTA_CMP_DATA, v, n);
  expr_end(el, d);
}

static void fill_rule(void *arg) {
  struct rule *r = arg;
  struct nfgenmsg *g = msg_start((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWRULE,
                                 NLM_F_CREATE | NLM_F_APPEND | NLM_F_ECHO, sizeof *g);
  g->nfgen_family = NFPROTO_IPV4;
  put_str(NFTA_RULE_TABLE, g_table);
  put_str(NFTA_RULE_CHAIN, g_chain);
  size_t exprs = nest(NFTA_RULE_EXPRESSIONS), el, d;
  uint8_t tcp = IPPROTO_TCP;
  uint16_t dport = htons(r->port), to = htons(22);
  expr_start(&el, &d, "meta");
  put_be32(NFTA_META_KEY, NFT_META_L4PROTO);
  put_be32(NFTA_META_DREG, NFT_REG_1);
  expr_end(el, d);
  put_cmp_eq(NFT_REG_1, &tcp, 1);
  expr_start(&el, &d, "payload");
  put_be32(NFTA_PAYLOAD_DREG, NFT_REG_1);
  put_be32(NFTA_PAYLOAD_BASE, NFT_PAYLOAD_TRANSPORT_HEADER);
  put_be32(NFTA_PAYLOAD_OFFSET, 2);
  put_be32(NFTA_PAYLOAD_LEN, 2);
  expr_end(el, d);
  put_cmp_eq(NFT_REG_1, &dport, 2);
  expr_start(&el, &d, "immediate");
  put_be32(NFTA_IMMEDIATE_DREG, NFT_REG_1);
  put_value(NFTA_IMMEDIATE_DATA, &r->addr, 4);
  expr_end(el, d);
  expr_start(&el, &d, "immediate");
  put_be32(NFTA_IMMEDIATE_DREG, NFT_REG_2);
  put_value(NFTA_IMMEDIATE_DATA, &to, 2);
  expr_end(el, d);
  expr_start(&el, &d, "nat");
  put_be32(NFTA_NAT_TYPE, NFT_NAT_DNAT);
  put_be32(NFTA_NAT_FAMILY, NFPROTO_IPV4);
  put_be32(NFTA_NAT_REG_ADDR_MIN, NFT_REG_1);
  put_be32(NFTA_NAT_REG_PROTO_MIN, NFT_REG_2);
  expr_end(el, d);
  nest_end(exprs);
}

static void fill_delrule(void *arg) {
  struct rule *r = arg;
  struct nfgenmsg *g = msg_start((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_DELRULE, 0, sizeof *g);
  g->nfgen_family = NFPROTO_IPV4;
  put_str(NFTA_RULE_TABLE, g_table);
  put_str(NFTA_RULE_CHAIN, g_chain);
  uint64_t h = htobe64(r->handle);
  put(NFTA_RULE_HANDLE, &h, 8);
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  if (argc != 7) { fprintf(stderr, "usage: nlslot HOSTNS PREFIX COUNT TABLE CHAIN PORT0\n"); return 2; }
  const char *prefix = argv[2];
  int count = atoi(argv[3]);
  g_table = argv[4];
  g_chain = argv[5];
  int port0 = atoi(argv[6]);
  if (count < 1 || count > 3 * 253) { fprintf(stderr, "nlslot: COUNT must be 1-759\n"); return 2; }
  static const char *nets[] = {"198.51.100", "203.0.113", "192.168.122"};
  char path[256];
  snprintf(path, sizeof path, "/run/netns/%s", argv[1]);
  int hostns = open(path, O_RDONLY | O_CLOEXEC);
  if (hostns < 0 || setns(hostns, CLONE_NEWNET) < 0) die(path, errno);
  int hrt = nlsock(NETLINK_ROUTE), hnf = nlsock(NETLINK_NETFILTER);
  mkdir("/run/netns", 0755);
  if (mount("", "/run/netns", "none", MS_SHARED | MS_REC, NULL) < 0) die("make-shared /run/netns", errno);
  struct rule *rules = calloc(count, sizeof *rules);
  double *lat = calloc(count, sizeof *lat);
  double t0 = now();
  for (int k = 0; k < count; k++) {
    double s = now();
    char addr[32], host[32], vh[IFNAMSIZ];
    snprintf(host, sizeof host, "%s.1", nets[k / 253]);
    snprintf(addr, sizeof addr, "%s.%d", nets[k / 253], k % 253 + 2);
    snprintf(vh, sizeof vh, "vh%d", k);
    uint32_t a_host, a_slot;
    inet_pton(AF_INET, host, &a_host);
    inet_pton(AF_INET, addr, &a_slot);
    /* the namespace: a file under /run/netns with this thread's new namespace mounted on it */
    snprintf(path, sizeof path, "/run/netns/%s%d", prefix, k);
    int f = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
    if (f < 0) die(path, errno);
    close(f);
    if (unshare(CLONE_NEWNET) < 0) die("unshare", errno);
    if (mount("/proc/thread-self/ns/net", path, "none", MS_BIND, NULL) < 0) die("bind mount", errno);
    int sns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    int srt = nlsock(NETLINK_ROUTE);
    /* veth, host end here, eth0 in the slot */
    struct ifinfomsg *ifi = msg_start(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, sizeof *ifi);
    put_str(IFLA_IFNAME, vh);
    size_t li = nest(IFLA_LINKINFO);
    put_str(IFLA_INFO_KIND, "veth");
    size_t data = nest(IFLA_INFO_DATA);
    size_t peer = nest(VETH_INFO_PEER);
    len += sizeof(struct ifinfomsg);
    put_str(IFLA_IFNAME, "eth0");
    put_u32(IFLA_NET_NS_FD, sns);
    nest_end(peer);
    nest_end(data);
    nest_end(li);
    (void)ifi;
    rtnl(hrt, "veth");
    close(sns);
    int hidx = ifindex(hrt, vh);
    addr_ptp(hrt, hidx, a_host, a_slot);
    link_up(hrt, hidx, 0);
    /* inside: address, up, default route */
    int eth0 = ifindex(srt, "eth0");
    addr_ptp(srt, eth0, a_slot, a_host);
    link_up(srt, eth0, 0);
    struct rtmsg *rtm = msg_start(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, sizeof *rtm);
    rtm->rtm_family = AF_INET;
    rtm->rtm_table = RT_TABLE_MAIN;
    rtm->rtm_protocol = RTPROT_BOOT;
    rtm->rtm_scope = RT_SCOPE_UNIVERSE;
    rtm->rtm_type = RTN_UNICAST;
    put(RTA_GATEWAY, &a_host, 4);
    rtnl(srt, "route add");
    /* bridge, up */
    ifi = msg_start(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, sizeof *ifi);
    ifi->ifi_flags = ifi->ifi_change = IFF_UP;
    put_str(IFLA_IFNAME, "br0");
    li = nest(IFLA_LINKINFO);
    put_str(IFLA_INFO_KIND, "bridge");
    nest_end(li);
    rtnl(srt, "bridge");
    /* the tap: made in this thread's namespace (the slot's), persistent, then on the bridge */
    int t = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (t < 0) die("open /dev/net/tun", errno);
    struct ifreq ifr = {0};
    strcpy(ifr.ifr_name, "tap0");
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_MULTI_QUEUE | IFF_VNET_HDR;
    if (ioctl(t, TUNSETIFF, &ifr) < 0) die("TUNSETIFF", errno);
    if (ioctl(t, TUNSETPERSIST, 1UL) < 0) die("TUNSETPERSIST", errno);
    close(t);
    link_up(srt, ifindex(srt, "tap0"), ifindex(srt, "br0"));
    close(srt);
    /* the port forward on the host */
    rules[k].addr = a_slot;
    rules[k].port = port0 + k;
    rules[k].handle = nft_batch(hnf, fill_rule, &rules[k]);
    if (!rules[k].handle) die("nft: no rule handle echoed", EPROTO);
    lat[k] = now() - s;
  }
  double setup = now() - t0;
  printf("{\"setupMs\":%.3f,\"lat\":[", setup);
  for (int k = 0; k < count; k++) printf("%s%.4f", k ? "," : "", lat[k]);
  printf("]}\n");
  fflush(stdout);
  char line[16];
  if (!fgets(line, sizeof line, stdin)) return 1;
  if (setns(hostns, CLONE_NEWNET) < 0) die("setns", errno);  /* let go of the last slot */
  double t1 = now();
  for (int k = 0; k < count; k++) {
    nft_batch(hnf, fill_delrule, &rules[k]);
    snprintf(path, sizeof path, "/run/netns/%s%d", prefix, k);
    if (umount2(path, MNT_DETACH) < 0) die("umount", errno);
    if (unlink(path) < 0) die("unlink", errno);
  }
  printf("{\"teardownMs\":%.3f}\n", now() - t1);
  fflush(stdout);
  qsort(lat, count, sizeof *lat, cmp);
  return 0;
}
