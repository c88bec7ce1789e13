#include "napi/convert.h"

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
