// Interface names and indexes as the codec needs them, resolved by whoever owns the namespace
// (ops/ on its namespace thread, a monitor from names it has seen, a test from a table): the
// codec itself never looks anything up, so it does no I/O and decodes the same on any thread.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>

namespace vnl {

using IndexNames = std::map<uint32_t, std::string>;

struct Names {
  std::function<uint32_t(const std::string&)> index;  // throws when absent
  std::function<std::string(uint32_t)> name;          // "" when absent

  // Names from a table the caller keeps (a monitor's, a fuzzer's); an unknown name is refused.
  static Names of(const IndexNames& table) {
    return Names{[&table](const std::string& n) -> uint32_t {
                   for (auto& e : table)
                     if (e.second == n) return e.first;
                   throw std::invalid_argument("no link named '" + n + "'");
                 },
                 [&table](uint32_t i) {
                   auto it = table.find(i);
                   return it == table.end() ? std::string() : it->second;
                 }};
  }
  // No names at all: decoded indexes stay unnamed (codec.decode, golden replies).
  static Names none() {
    return Names{[](const std::string& n) -> uint32_t { throw std::invalid_argument("no link named '" + n + "'"); },
                 [](uint32_t) { return std::string(); }};
  }
};

}  // namespace vnl
