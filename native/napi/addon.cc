// Module entry: the handle class and the list of registered operations.
#include <napi.h>

#include "codec/kind_schema.h"
#include "fwd/forwarder_napi.h"
#include "napi/convert.h"
#include "napi/handle.h"
#include "ops/ops.h"
#include "transport/trace.h"

namespace vnl {

Napi::Function initMonitor(Napi::Env env);  // ops/monitor.cc

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Handle", initHandle(env));
  exports.Set("Monitor", initMonitor(env));
  exports.Set("Forwarder", initForwarder(env));
  auto ops = Napi::Array::New(env);
  uint32_t i = 0;
  for (auto& kv : OpRegistry::all()) ops.Set(i++, Napi::String::New(env, kv.first));
  exports.Set("ops", ops);
  // NODE_DEBUG=vnetlink: the TS layer turns message tracing on (process-wide).
  exports.Set("setTrace", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
    gTrace.store(info.Length() > 0 && info[0].ToBoolean().Value(), std::memory_order_relaxed);
  }));
  // The link kind tables (lib/kinds/index.ts sends them once, as it loads).
  exports.Set("setLinkKinds", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
    try {
      setKindSchemas(fromJs(info[0]));
    } catch (const std::exception& e) {
      throw Napi::TypeError::New(info.Env(), std::string("vnetlink: bad link kind table: ") + e.what());
    }
  }));
  return exports;
}

}  // namespace vnl

static Napi::Object InitVnetlink(Napi::Env env, Napi::Object exports) { return vnl::Init(env, exports); }

NODE_API_MODULE(vnetlink, InitVnetlink)
