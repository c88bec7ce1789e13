// A small dynamic value passed between the N-API glue and the per-family operations.
// Operations read their normalized arguments from a Value and return a Value; the glue
// converts both ways on the JS thread, so the namespace thread never touches napi.
#pragma once
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace vnl {

class Value {
 public:
  enum class Type { Undefined, Null, Bool, Number, BigInt, String, Bytes, Array, Object };

  Value() = default;
  Value(bool b) : type_(Type::Bool), num_(b ? 1 : 0) {}
  Value(int v) : type_(Type::Number), num_(v) {}
  Value(unsigned v) : type_(Type::Number), num_(v) {}
  Value(long v) : type_(Type::Number), num_(double(v)) {}
  Value(unsigned long v) : type_(Type::Number), num_(double(v)) {}
  Value(long long v) : type_(Type::Number), num_(double(v)) {}
  Value(unsigned long long v) : type_(Type::Number), num_(double(v)) {}
  Value(double v) : type_(Type::Number), num_(v) {}
  Value(const char* s) : type_(Type::String), str_(s) {}
  Value(std::string s) : type_(Type::String), str_(std::move(s)) {}

  static Value null() { Value v; v.type_ = Type::Null; return v; }
  static Value object() { Value v; v.type_ = Type::Object; return v; }
  static Value array() { Value v; v.type_ = Type::Array; return v; }
  static Value bytes(const void* p, size_t n) {
    Value v; v.type_ = Type::Bytes;
    v.str_.assign(static_cast<const char*>(p), n);
    return v;
  }
  static Value bigint(uint64_t u) { Value v; v.type_ = Type::BigInt; v.big_ = u; return v; }

  Type type() const { return type_; }
  bool isUndefined() const { return type_ == Type::Undefined; }
  bool isNull() const { return type_ == Type::Null; }
  bool isObject() const { return type_ == Type::Object; }
  bool isArray() const { return type_ == Type::Array; }
  bool isString() const { return type_ == Type::String; }
  bool isNumber() const { return type_ == Type::Number; }
  bool isBool() const { return type_ == Type::Bool; }
  bool isBytes() const { return type_ == Type::Bytes; }

  double number() const { return num_; }
  bool boolean() const { return num_ != 0; }
  uint64_t big() const { return big_; }
  const std::string& string() const { return str_; }  // also the bytes of a Bytes value

  // Object access
  Value& set(std::string key, Value v) {
    type_ = Type::Object;
    for (auto& kv : obj_) if (kv.first == key) { kv.second = std::move(v); return kv.second; }
    obj_.emplace_back(std::move(key), std::move(v));
    return obj_.back().second;
  }
  // nullptr when missing, undefined or null: "unset options are never emitted".
  const Value* get(const std::string& key) const {
    for (auto& kv : obj_)
      if (kv.first == key) return (kv.second.isUndefined() || kv.second.isNull()) ? nullptr : &kv.second;
    return nullptr;
  }
  bool has(const std::string& key) const { return get(key) != nullptr; }
  const std::vector<std::pair<std::string, Value>>& entries() const { return obj_; }

  // Array access
  void push(Value v) { type_ = Type::Array; arr_.push_back(std::move(v)); }
  const std::vector<Value>& items() const { return arr_; }
  size_t size() const { return arr_.size(); }

  // Typed getters for normalized arguments (TypeScript validated them already; a
  // mismatch here is a bug, reported as EINVAL naming the field).
  const Value& req(const std::string& key) const {
    const Value* v = get(key);
    if (!v) throw std::invalid_argument("missing argument '" + key + "'");
    return *v;
  }
  std::string str(const std::string& key) const {
    const Value& v = req(key);
    if (!v.isString()) throw std::invalid_argument("argument '" + key + "' must be a string");
    return v.str_;
  }
  std::string str(const std::string& key, const std::string& dflt) const { return has(key) ? str(key) : dflt; }
  double num(const std::string& key) const {
    const Value& v = req(key);
    if (v.isBool()) return v.num_;
    if (!v.isNumber()) throw std::invalid_argument("argument '" + key + "' must be a number");
    return v.num_;
  }
  double num(const std::string& key, double dflt) const { return has(key) ? num(key) : dflt; }
  uint32_t u32(const std::string& key) const { return static_cast<uint32_t>(num(key)); }
  uint32_t u32(const std::string& key, uint32_t d) const { return has(key) ? u32(key) : d; }
  int64_t i64(const std::string& key) const { return static_cast<int64_t>(num(key)); }
  bool flag(const std::string& key, bool dflt = false) const {
    const Value* v = get(key);
    if (!v) return dflt;
    return v->num_ != 0;
  }
  const std::string& bytesOf(const std::string& key) const {
    const Value& v = req(key);
    if (!v.isBytes() && !v.isString()) throw std::invalid_argument("argument '" + key + "' must be bytes");
    return v.str_;
  }

 private:
  Type type_ = Type::Undefined;
  double num_ = 0;
  uint64_t big_ = 0;
  std::string str_;
  std::vector<Value> arr_;
  std::vector<std::pair<std::string, Value>> obj_;
};

}  // namespace vnl
