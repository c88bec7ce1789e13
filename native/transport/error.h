// The one error type that crosses from the namespace thread to JavaScript: an errno, where it
// happened, and the kernel's extended-ack text when it sent one.
#pragma once
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace vnl {

class SysError : public std::runtime_error {
 public:
  SysError(int err, std::string where, std::string extack = {})
      : std::runtime_error(where + ": " + strerror(err) + (extack.empty() ? "" : ": " + extack)),
        err_(err), where_(std::move(where)), extack_(std::move(extack)) {}
  int err() const { return err_; }
  const std::string& where() const { return where_; }
  const std::string& extack() const { return extack_; }

 private:
  int err_;
  std::string where_;
  std::string extack_;
};

// Throws SysError for the current errno.
[[noreturn]] inline void throwErrno(const std::string& where) { throw SysError(errno, where); }

}  // namespace vnl
