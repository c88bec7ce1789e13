/* The netlink plumbing bench/nlcreate.c and bench/nlslot.c share: one request at a time built
 * in a static buffer (header, family header, attributes, nests), a bound socket, and dying
 * with the program's name. Define NL_PROG (the program's name) before including it. */
#ifndef VNL_BENCH_NLMSG_H
#define VNL_BENCH_NLMSG_H
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netlink.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static uint32_t seq = 1;
static char buf[8192];
static size_t len;

static inline void die(const char *what, int err) {
  fprintf(stderr, NL_PROG ": %s: %s\n", what, strerror(err));
  exit(1);
}

static inline int nlsock(int proto) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, proto);
  if (fd < 0) die("socket", errno);
  struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) die("bind", errno);
  return fd;
}

/* One message in buf: header, a family header of `fam` bytes, then attributes. */
static inline void *msg_start(uint16_t type, uint16_t flags, size_t fam) {
  memset(buf, 0, sizeof buf);
  struct nlmsghdr *h = (struct nlmsghdr *)buf;
  h->nlmsg_type = type;
  h->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
  h->nlmsg_seq = ++seq;
  len = NLMSG_LENGTH(fam);
  return NLMSG_DATA(h);
}
static inline void put(uint16_t type, const void *data, size_t n) {
  struct nlattr *a = (struct nlattr *)(buf + len);
  a->nla_type = type;
  a->nla_len = NLA_HDRLEN + n;
  if (n) memcpy((char *)a + NLA_HDRLEN, data, n);
  len += NLA_ALIGN(a->nla_len);
}
static inline void put_str(uint16_t type, const char *s) { put(type, s, strlen(s) + 1); }
static inline void put_u32(uint16_t type, uint32_t v) { put(type, &v, 4); }
static inline void put_u16(uint16_t type, uint16_t v) { put(type, &v, 2); }
static inline void put_be32(uint16_t type, uint32_t v) { v = htonl(v); put(type, &v, 4); }
static inline size_t nest(uint16_t type) { size_t off = len; put(type | NLA_F_NESTED, NULL, 0); return off; }
static inline void nest_end(size_t off) { ((struct nlattr *)(buf + off))->nla_len = len - off; }
#endif
