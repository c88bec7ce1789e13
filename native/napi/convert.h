// Value <-> JavaScript conversion. fromJs/toJs/fromJson run on the JS thread only; toJson is
// plain C++ (no napi) so a handle's thread can do the serialising work off the JS thread.
#pragma once
#include <napi.h>

#include <string>

#include "codec/value.h"

namespace vnl {
Value fromJs(const Napi::Value& v);
Napi::Value toJs(Napi::Env env, const Value& v);

// A result as JSON text, when JSON carries it exactly: no bytes, no bigints, no NaN/Infinity,
// no undefined array items (undefined object members are left out, as toJs leaves them out).
// On false `out` is unspecified and the caller converts with toJs. `ascii` says whether the
// text is 7-bit (then it can be handed to V8 without UTF-8 decoding).
bool toJson(const Value& v, std::string& out, bool& ascii);
// JSON.parse(json) through the given parse function: one V8 call builds the whole tree, much
// cheaper than one napi_set_named_property per member (a decoded link has ~80).
Napi::Value fromJson(Napi::Env env, const Napi::Function& parse, const std::string& json, bool ascii);
}  // namespace vnl
