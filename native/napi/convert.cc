#include "napi/convert.h"

#include <charconv>
#include <cmath>

namespace vnl {

Value fromJs(const Napi::Value& v) {
  switch (v.Type()) {
    case napi_undefined: return Value();
    case napi_null: return Value::null();
    case napi_boolean: return Value(v.As<Napi::Boolean>().Value());
    case napi_number: return Value(v.As<Napi::Number>().DoubleValue());
    case napi_string: return Value(v.As<Napi::String>().Utf8Value());
    case napi_bigint: {
      bool lossless;
      return Value::bigint(v.As<Napi::BigInt>().Uint64Value(&lossless));
    }
    case napi_object: {
      if (v.IsBuffer()) {
        auto b = v.As<Napi::Buffer<uint8_t>>();
        return Value::bytes(b.Data(), b.Length());
      }
      if (v.IsTypedArray()) {
        auto t = v.As<Napi::TypedArray>();
        auto ab = t.ArrayBuffer();
        return Value::bytes(static_cast<uint8_t*>(ab.Data()) + t.ByteOffset(), t.ByteLength());
      }
      if (v.IsArray()) {
        auto a = v.As<Napi::Array>();
        Value out = Value::array();
        for (uint32_t i = 0; i < a.Length(); i++) out.push(fromJs(a.Get(i)));
        return out;
      }
      auto o = v.As<Napi::Object>();
      Value out = Value::object();
      auto keys = o.GetPropertyNames();
      for (uint32_t i = 0; i < keys.Length(); i++) {
        Napi::Value k = keys.Get(i);
        out.set(k.As<Napi::String>().Utf8Value(), fromJs(o.Get(k)));
      }
      return out;
    }
    default: return Value();
  }
}

Napi::Value toJs(Napi::Env env, const Value& v) {
  switch (v.type()) {
    case Value::Type::Undefined: return env.Undefined();
    case Value::Type::Null: return env.Null();
    case Value::Type::Bool: return Napi::Boolean::New(env, v.boolean());
    case Value::Type::Number: return Napi::Number::New(env, v.number());
    case Value::Type::BigInt: return Napi::BigInt::New(env, v.big());
    case Value::Type::String: return Napi::String::New(env, v.string());
    case Value::Type::Bytes: return Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<const uint8_t*>(v.string().data()), v.string().size());
    case Value::Type::Array: {
      auto a = Napi::Array::New(env, v.size());
      uint32_t i = 0;
      for (auto& it : v.items()) a.Set(i++, toJs(env, it));
      return a;
    }
    case Value::Type::Object: {
      auto o = Napi::Object::New(env);
      for (auto& kv : v.entries())
        if (!kv.second.isUndefined()) o.Set(kv.first, toJs(env, kv.second));
      return o;
    }
  }
  return env.Undefined();
}

}  // namespace vnl

namespace vnl {
namespace {

void jsonString(const std::string& s, std::string& out, bool& ascii) {
  static const char hex[] = "0123456789abcdef";
  out.push_back('"');
  size_t run = 0;  // start of the bytes not yet copied
  for (size_t i = 0; i < s.size(); i++) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) { ascii = false; continue; }
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s, run, i - run);
    run = i + 1;
    if (c == '"' || c == '\\') { out.push_back('\\'); out.push_back(static_cast<char>(c)); continue; }
    char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
    out.append(esc, 6);
  }
  out.append(s, run, s.size() - run);
  out.push_back('"');
}

bool jsonNumber(double d, std::string& out) {
  if (!std::isfinite(d)) return false;
  char buf[32];
  // Integers (nearly every number a result carries) by the short path.
  if (d == std::floor(d) && std::fabs(d) < 9007199254740992.0 && !(d == 0 && std::signbit(d))) {
    auto r = std::to_chars(buf, buf + sizeof buf, static_cast<int64_t>(d));
    out.append(buf, r.ptr);
    return true;
  }
  auto r = std::to_chars(buf, buf + sizeof buf, d);  // shortest text that reads back as d
  if (r.ec != std::errc()) return false;
  out.append(buf, r.ptr);
  return true;
}

bool jsonValue(const Value& v, std::string& out, bool& ascii, int depth) {
  if (depth > 64) return false;  // toJs handles what JSON.parse might find too deep
  switch (v.type()) {
    case Value::Type::Null: out.append("null"); return true;
    case Value::Type::Bool: out.append(v.boolean() ? "true" : "false"); return true;
    case Value::Type::Number: return jsonNumber(v.number(), out);
    case Value::Type::String: jsonString(v.string(), out, ascii); return true;
    case Value::Type::Array: {
      out.push_back('[');
      bool first = true;
      for (auto& it : v.items()) {
        if (it.isUndefined()) return false;  // JSON would turn it into null
        if (!first) out.push_back(',');
        first = false;
        if (!jsonValue(it, out, ascii, depth + 1)) return false;
      }
      out.push_back(']');
      return true;
    }
    case Value::Type::Object: {
      out.push_back('{');
      bool first = true;
      for (auto& kv : v.entries()) {
        if (kv.second.isUndefined()) continue;
        if (!first) out.push_back(',');
        first = false;
        jsonString(kv.first, out, ascii);
        out.push_back(':');
        if (!jsonValue(kv.second, out, ascii, depth + 1)) return false;
      }
      out.push_back('}');
      return true;
    }
    default: return false;  // undefined at the top, bytes, bigints
  }
}

}  // namespace

bool toJson(const Value& v, std::string& out, bool& ascii) {
  out.clear();
  ascii = true;
  return jsonValue(v, out, ascii, 0);
}

Napi::Value fromJson(Napi::Env env, const Napi::Function& parse, const std::string& json, bool ascii) {
  napi_value s;
  napi_status st = ascii ? napi_create_string_latin1(env, json.data(), json.size(), &s)
                         : napi_create_string_utf8(env, json.data(), json.size(), &s);
  NAPI_THROW_IF_FAILED(env, st, Napi::Value());
  return parse.Call({Napi::Value(env, s)});
}

}  // namespace vnl
