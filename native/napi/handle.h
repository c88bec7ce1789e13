#pragma once
#include <napi.h>
namespace vnl {
Napi::Function initHandle(Napi::Env env);
}
