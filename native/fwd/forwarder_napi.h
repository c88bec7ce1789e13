#pragma once
#include <napi.h>
namespace vnl {
// The native Forwarder class (lib/forwarder.ts wraps it).
Napi::Function initForwarder(Napi::Env env);
}
