// Every native->JS callback (a ThreadSafeFunction delivery) runs its body through callGuarded:
// nothing it throws may leave the callback, since node-addon-api would rethrow it into an
// environment that may be terminating (a worker being stopped), and a C++ exception escaping
// there aborts the whole process.
#pragma once
#include <napi.h>

namespace vnl {

template <typename Fn>
void callGuarded(Napi::Env env, Fn&& fn) noexcept {
  try {
    fn();
  } catch (const Napi::Error& e) {
    // A JS exception from a listener stays a JS exception (uncaughtException) while the
    // environment can still run JS; while it is being torn down napi_throw just fails.
    if (!e.IsEmpty()) napi_throw(env, e.Value());
  } catch (...) {
    // Out of memory or a conversion failure: this delivery is lost, the process is not.
  }
}

}  // namespace vnl
