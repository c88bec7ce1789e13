// Value <-> JavaScript conversion, on the JS thread only.
#pragma once
#include <napi.h>

#include "codec/value.h"

namespace vnl {
Value fromJs(const Napi::Value& v);
Napi::Value toJs(Napi::Env env, const Value& v);
}  // namespace vnl
