// Netlink message codec: building and parsing, no I/O.
// The builder owns its buffer, appends at the tail and pads to 4 bytes; a nest is a scope
// that closes itself. The parser checks every length before it reads and skips what it
// does not know, so replies from newer kernels still parse.
#pragma once
#include <linux/netlink.h>

#include <cstdint>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

namespace vnl {

inline size_t nlAlign(size_t n) { return (n + 3u) & ~size_t(3); }

// A message that cannot be built (too large for netlink's 16- and 32-bit lengths).
class CodecError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A message that came in cannot be read: a reply the kernel (or a caller, to a decode
// function) handed us is truncated or malformed. Not the kernel refusing anything: the glue
// reports it as EPROTO, marked malformed.
class DecodeError : public CodecError {
 public:
  using CodecError::CodecError;
};

class MsgBuilder {
 public:
  // Starts one message with its nlmsghdr. seq/pid are filled by the transport.
  MsgBuilder(uint16_t type, uint16_t flags);

  // Appends a fixed family header (ifinfomsg, ifaddrmsg, rtmsg, nfgenmsg...), returns its offset.
  template <class T>
  size_t putHeader(const T& h) { return putRaw(&h, sizeof(T)); }
  template <class T>
  T* headerAt(size_t off) { return reinterpret_cast<T*>(buf_.data() + off); }

  void put(uint16_t type, const void* data, size_t len);
  void putFlag(uint16_t type) { put(type, nullptr, 0); }
  void putU8(uint16_t type, uint8_t v) { put(type, &v, 1); }
  void putU16(uint16_t type, uint16_t v) { put(type, &v, 2); }
  void putU32(uint16_t type, uint32_t v) { put(type, &v, 4); }
  void putU64(uint16_t type, uint64_t v) { put(type, &v, 8); }
  void putBe16(uint16_t type, uint16_t v);
  void putBe32(uint16_t type, uint32_t v);
  void putBe64(uint16_t type, uint64_t v);
  void putStr(uint16_t type, const std::string& s);  // NUL-terminated
  void putBytes(uint16_t type, const std::string& s) { put(type, s.data(), s.size()); }
  // Appends a bare, padded payload: for attributes that are a struct followed by attributes
  // (tc netem's TCA_OPTIONS) rather than a pure nest.
  void putBody(const void* p, size_t n) { putRaw(p, n); }

  class Nest {
   public:
    Nest(MsgBuilder& b, size_t off) : b_(&b), off_(off), unwinding_(std::uncaught_exceptions()) {}
    Nest(Nest&& o) noexcept : b_(o.b_), off_(o.off_), unwinding_(o.unwinding_) { o.b_ = nullptr; }
    Nest(const Nest&) = delete;
    Nest& operator=(const Nest&) = delete;
    // An oversized nest throws, but never while another exception unwinds through it (that
    // would be std::terminate); the message is being abandoned then anyway.
    ~Nest() noexcept(false) {
      if (b_ && std::uncaught_exceptions() == unwinding_) b_->endNest(off_);
    }
   private:
    MsgBuilder* b_;
    size_t off_;
    int unwinding_;
  };
  // The nest closes (its length is written) when the returned scope ends.
  [[nodiscard]] Nest nest(uint16_t type);
  // A nest whose type goes out exactly as given, NLA_F_NESTED only if the caller sets it:
  // tc's TCA_OPTIONS and action lists are sent without the flag by iproute2.
  [[nodiscard]] Nest nestAs(uint16_t type);

  size_t size() const { return buf_.size(); }
  uint32_t seq() const { return hdr()->nlmsg_seq; }
  uint16_t type() const { return hdr()->nlmsg_type; }
  uint16_t flags() const { return hdr()->nlmsg_flags; }
  void setSeq(uint32_t seq) { hdr()->nlmsg_seq = seq; }
  void addFlags(uint16_t f) { hdr()->nlmsg_flags |= f; }
  const std::vector<uint8_t>& bytes() const { return buf_; }
  const uint8_t* data() const { return buf_.data(); }

  static constexpr size_t kMaxSize = 1u << 20;

 private:
  size_t putRaw(const void* p, size_t n);
  void endNest(size_t off);
  nlmsghdr* hdr() { return reinterpret_cast<nlmsghdr*>(buf_.data()); }
  const nlmsghdr* hdr() const { return reinterpret_cast<const nlmsghdr*>(buf_.data()); }
  std::vector<uint8_t> buf_;
};

// One attribute seen by the parser. Accessors check the payload is long enough.
struct Attr {
  uint16_t type = 0;     // without NLA_F_NESTED / NLA_F_NET_BYTEORDER
  const uint8_t* data = nullptr;
  size_t len = 0;

  bool valid() const { return data != nullptr; }
  uint8_t u8() const { need(1); return data[0]; }
  uint16_t u16() const { need(2); uint16_t v; memcpy(&v, data, 2); return v; }
  uint32_t u32() const { need(4); uint32_t v; memcpy(&v, data, 4); return v; }
  uint64_t u64() const { need(8); uint64_t v; memcpy(&v, data, 8); return v; }
  int32_t s32() const { return static_cast<int32_t>(u32()); }
  uint16_t be16() const;
  uint32_t be32() const;
  uint64_t be64() const;
  std::string str() const;  // stops at the first NUL, never reads past len
  std::string bytes() const { return std::string(reinterpret_cast<const char*>(data), len); }
  template <class T>
  bool as(T& out) const { if (len < sizeof(T)) return false; memcpy(&out, data, sizeof(T)); return true; }
  void need(size_t n) const {
    if (len < n) throw DecodeError("attribute " + std::to_string(type) + " is " + std::to_string(len) +
                                  " bytes, expected at least " + std::to_string(n));
  }
};

// Iterates attributes in [p, p+len). Stops (and sets truncated()) at a malformed length.
class AttrIter {
 public:
  AttrIter(const uint8_t* p, size_t len) : p_(p), end_(p + len) {}
  explicit AttrIter(const Attr& nest) : p_(nest.data), end_(nest.data + nest.len) {}
  bool next(Attr& a);
  bool truncated() const { return truncated_; }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
  bool truncated_ = false;
};

// Attributes indexed by type, for types up to max; unknown and higher types are skipped.
class AttrTable {
 public:
  AttrTable(const uint8_t* p, size_t len, uint16_t max);
  explicit AttrTable(const Attr& nest, uint16_t max) : AttrTable(nest.data, nest.len, max) {}
  // An optional nest: absent reads as empty, so callers index it without a check of their own.
  AttrTable(const Attr* nest, uint16_t max) : AttrTable(nest ? nest->data : nullptr, nest ? nest->len : 0, max) {}
  const Attr* operator[](uint16_t type) const {
    return (type < tb_.size() && tb_[type].valid()) ? &tb_[type] : nullptr;
  }
 private:
  std::vector<Attr> tb_;
};

// A list nest (WireGuard peers and allowed IPs, genl multicast groups, tc actions): each entry
// is itself a nest, indexed up to `max` and handed to fn. Bounded by the list's own length.
template <typename Fn>
void forEachNested(const Attr& list, uint16_t max, Fn&& fn) {
  AttrIter it(list);
  Attr entry;
  while (it.next(entry)) fn(AttrTable(entry, max));
}

// Walks the netlink messages in a receive buffer, checking each header's length.
class MsgIter {
 public:
  MsgIter(const uint8_t* p, size_t len) : p_(p), left_(len) {}
  const nlmsghdr* next();
 private:
  const uint8_t* p_;
  size_t left_;
};

// Payload of a message after the nlmsghdr and a fixed family header of size `fixed`.
inline bool payloadAfter(const nlmsghdr* h, size_t fixed, const uint8_t*& p, size_t& len) {
  size_t hdr = NLMSG_HDRLEN + nlAlign(fixed);
  if (h->nlmsg_len < hdr) return false;
  p = reinterpret_cast<const uint8_t*>(h) + hdr;
  len = h->nlmsg_len - hdr;
  return true;
}
template <class T>
inline const T* familyHeader(const nlmsghdr* h) {
  if (h->nlmsg_len < NLMSG_HDRLEN + sizeof(T)) return nullptr;
  return reinterpret_cast<const T*>(reinterpret_cast<const uint8_t*>(h) + NLMSG_HDRLEN);
}

}  // namespace vnl
