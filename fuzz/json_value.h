// JSON text to a vnl::Value, for fuzz harnesses that need the data TypeScript hands the addon
// (the link kind tables in fuzz/kind-tables.json). Only what that data uses: objects, arrays,
// strings with simple escapes, numbers, true/false/null. Fuzz-only: the addon gets these
// values from JS through napi/convert, never from text.
#pragma once
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

#include "codec/value.h"

namespace vnl {
namespace fuzz {

class JsonReader {
 public:
  explicit JsonReader(const std::string& s) : s_(s) {}

  Value document() {
    Value v = value();
    ws();
    if (i_ != s_.size()) fail("trailing text");
    return v;
  }

 private:
  [[noreturn]] void fail(const char* what) {
    throw std::runtime_error(std::string("json: ") + what + " at offset " + std::to_string(i_));
  }
  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\r' || s_[i_] == '\t')) i_++;
  }
  bool eat(char c) {
    ws();
    if (i_ < s_.size() && s_[i_] == c) { i_++; return true; }
    return false;
  }
  void expect(char c) { if (!eat(c)) fail("unexpected character"); }
  bool word(const char* w) {
    size_t n = std::char_traits<char>::length(w);
    if (s_.compare(i_, n, w) != 0) return false;
    i_ += n;
    return true;
  }

  std::string string() {
    expect('"');
    std::string out;
    while (i_ < s_.size() && s_[i_] != '"') {
      char c = s_[i_++];
      if (c != '\\') { out += c; continue; }
      if (i_ >= s_.size()) fail("short escape");
      char e = s_[i_++];
      switch (e) {
        case '"': case '\\': case '/': out += e; break;
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        default: fail("unsupported escape");
      }
    }
    if (i_ >= s_.size()) fail("unterminated string");
    i_++;
    return out;
  }

  Value value() {
    ws();
    if (i_ >= s_.size()) fail("unexpected end");
    char c = s_[i_];
    if (c == '{') {
      i_++;
      Value o = Value::object();
      if (eat('}')) return o;
      do {
        ws();
        std::string k = string();
        expect(':');
        o.set(std::move(k), value());
      } while (eat(','));
      expect('}');
      return o;
    }
    if (c == '[') {
      i_++;
      Value a = Value::array();
      if (eat(']')) return a;
      do a.push(value()); while (eat(','));
      expect(']');
      return a;
    }
    if (c == '"') return Value(string());
    if (word("true")) return Value(true);
    if (word("false")) return Value(false);
    if (word("null")) return Value::null();
    const char* start = s_.c_str() + i_;
    char* end = nullptr;
    double d = strtod(start, &end);
    if (end == start) fail("not a value");
    i_ += static_cast<size_t>(end - start);
    return Value(d);
  }

  const std::string& s_;
  size_t i_ = 0;
};

inline Value readJsonFile(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw std::runtime_error("cannot read " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  std::string text = ss.str();
  return JsonReader(text).document();
}

}  // namespace fuzz
}  // namespace vnl
