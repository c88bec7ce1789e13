// Conventions shared by every fd vnetlink hands out for guest frames (tap queues, macvtap
// queues): close-on-exec, non-blocking, IFF_VNET_HDR with a chosen header size, and the
// offloads the reader promises to handle (TUNSETOFFLOAD).
#pragma once
#include <linux/if_tun.h>

#include <string>

#include "codec/value.h"

#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#endif
#ifndef TUN_F_USO6
#define TUN_F_USO6 0x40
#endif

namespace vnl {

// TUN_F_* bits from a normalized { csum, tso4, tso6, tsoEcn, uso4, uso6 } object (null: none).
unsigned tunOffloadBits(const Value* offloads);

// TUNSETOFFLOAD. When the kernel refuses USO (older kernels: EINVAL), retries without it and
// returns the bits that took effect.
unsigned tunApplyOffloads(int fd, unsigned bits, const std::string& op);

// TUNSETVNETHDRSZ (10, 12 or 20 bytes; the kernel refuses less than 10).
void tunSetVnetHdrSize(int fd, int size, const std::string& op);

// O_NONBLOCK and FD_CLOEXEC on an fd.
void fdNonblockCloexec(int fd, const std::string& op);

// The offload bits as an object { csum, tso4, ... } for results.
Value tunOffloadsValue(unsigned bits);

}  // namespace vnl
