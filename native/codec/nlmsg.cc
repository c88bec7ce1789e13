#include "codec/nlmsg.h"

#include <endian.h>

namespace vnl {

MsgBuilder::MsgBuilder(uint16_t type, uint16_t flags) {
  buf_.reserve(256);
  nlmsghdr h{};
  h.nlmsg_len = NLMSG_HDRLEN;
  h.nlmsg_type = type;
  h.nlmsg_flags = flags;
  buf_.resize(NLMSG_HDRLEN);
  memcpy(buf_.data(), &h, sizeof h);
}

size_t MsgBuilder::putRaw(const void* p, size_t n) {
  size_t off = buf_.size();
  size_t total = off + nlAlign(n);
  if (total > kMaxSize) throw CodecError("netlink message would exceed " + std::to_string(kMaxSize) + " bytes");
  buf_.resize(total, 0);
  if (n && p) memcpy(buf_.data() + off, p, n);
  hdr()->nlmsg_len = static_cast<uint32_t>(buf_.size());
  return off;
}

void MsgBuilder::put(uint16_t type, const void* data, size_t len) {
  if (NLA_HDRLEN + len > 0xffff) throw CodecError("attribute " + std::to_string(type) + " too long (" + std::to_string(len) + " bytes)");
  nlattr a{};
  a.nla_len = static_cast<uint16_t>(NLA_HDRLEN + len);
  a.nla_type = type;
  size_t off = putRaw(&a, sizeof a);
  // putRaw padded the header to 4 bytes; NLA_HDRLEN is already aligned, so append the payload.
  (void)off;
  if (len) putRaw(data, len);
}

void MsgBuilder::putBe16(uint16_t type, uint16_t v) { v = htobe16(v); put(type, &v, 2); }
void MsgBuilder::putBe32(uint16_t type, uint32_t v) { v = htobe32(v); put(type, &v, 4); }
void MsgBuilder::putBe64(uint16_t type, uint64_t v) { v = htobe64(v); put(type, &v, 8); }
void MsgBuilder::putStr(uint16_t type, const std::string& s) { put(type, s.c_str(), s.size() + 1); }

MsgBuilder::Nest MsgBuilder::nest(uint16_t type) { return nestAs(type | NLA_F_NESTED); }

MsgBuilder::Nest MsgBuilder::nestAs(uint16_t type) {
  nlattr a{};
  a.nla_len = NLA_HDRLEN;
  a.nla_type = type;
  size_t off = putRaw(&a, sizeof a);
  return Nest(*this, off);
}

void MsgBuilder::endNest(size_t off) {
  size_t len = buf_.size() - off;
  if (len > 0xffff) throw CodecError("nested attribute too long (" + std::to_string(len) + " bytes)");
  reinterpret_cast<nlattr*>(buf_.data() + off)->nla_len = static_cast<uint16_t>(len);
}

uint16_t Attr::be16() const { return be16toh(u16()); }
uint32_t Attr::be32() const { return be32toh(u32()); }
uint64_t Attr::be64() const { return be64toh(u64()); }

std::string Attr::str() const {
  size_t n = 0;
  while (n < len && data[n] != 0) n++;
  return std::string(reinterpret_cast<const char*>(data), n);
}

bool AttrIter::next(Attr& a) {
  if (p_ >= end_) return false;
  size_t left = static_cast<size_t>(end_ - p_);
  if (left < NLA_HDRLEN) { truncated_ = true; return false; }
  nlattr h;
  memcpy(&h, p_, sizeof h);
  if (h.nla_len < NLA_HDRLEN || h.nla_len > left) { truncated_ = true; return false; }
  a.type = h.nla_type & NLA_TYPE_MASK;
  a.data = p_ + NLA_HDRLEN;
  a.len = h.nla_len - NLA_HDRLEN;
  size_t step = nlAlign(h.nla_len);
  p_ = step >= left ? end_ : p_ + step;
  return true;
}

AttrTable::AttrTable(const uint8_t* p, size_t len, uint16_t max) : tb_(size_t(max) + 1) {
  AttrIter it(p, len);
  Attr a;
  while (it.next(a))
    if (a.type <= max) tb_[a.type] = a;
}

const nlmsghdr* MsgIter::next() {
  if (left_ < NLMSG_HDRLEN) return nullptr;
  const nlmsghdr* h = reinterpret_cast<const nlmsghdr*>(p_);
  if (h->nlmsg_len < NLMSG_HDRLEN || h->nlmsg_len > left_) return nullptr;
  size_t step = NLMSG_ALIGN(h->nlmsg_len);
  if (step > left_) step = left_;
  p_ += step;
  left_ -= step;
  return h;
}

}  // namespace vnl
