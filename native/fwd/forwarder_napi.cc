// N-API side of the forwarder: every method runs on the JS thread and only touches the
// engine's control side, so none of them waits for more than one batch of a worker.
#include <linux/if_tun.h>
#include <net/if.h>
#include <napi.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>

#include "fwd/engine.h"
#include "fwd/forwarder_napi.h"
#include "sys/tunfd.h"
#include "transport/error.h"

namespace vnl {

namespace {

Napi::Error sysErr(Napi::Env env, const SysError& e) {
  Napi::Error err = Napi::Error::New(env, e.what());
  err.Set("errno", Napi::Number::New(env, e.err()));
  err.Set("where", Napi::String::New(env, e.where()));
  return err;
}

// An integer argument in [min, max], or a RangeError: this glue indexes fixed arrays with
// what it is given, and TypeScript is not the only possible caller.
int64_t intArg(const Napi::CallbackInfo& info, size_t i, const char* what, int64_t min, int64_t max) {
  Napi::Value v = info[i];
  double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1e300;
  if (!(d >= double(min) && d <= double(max)) || d != static_cast<double>(static_cast<int64_t>(d)))
    throw Napi::RangeError::New(info.Env(), std::string("forwarder: ") + what + " must be an integer from " +
                                                std::to_string(min) + " to " + std::to_string(max));
  return static_cast<int64_t>(d);
}
int slotArg(const Napi::CallbackInfo& info, size_t i = 0) {
  return static_cast<int>(intArg(info, i, "port slot", 0, fwd::kMaxPorts - 1));
}

class Forwarder : public Napi::ObjectWrap<Forwarder> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Forwarder", {
        InstanceMethod<&Forwarder::AddPort>("addPort"),
        InstanceMethod<&Forwarder::RemovePort>("removePort"),
        InstanceMethod<&Forwarder::Start>("start"),
        InstanceMethod<&Forwarder::Stop>("stop"),
        InstanceMethod<&Forwarder::Close>("close"),
        InstanceMethod<&Forwarder::Stats>("stats"),
        InstanceMethod<&Forwarder::Send>("send"),
        InstanceMethod<&Forwarder::Monitor>("monitor"),
        InstanceMethod<&Forwarder::Drain>("drain"),
        InstanceMethod<&Forwarder::Cpu>("cpu"),
        InstanceMethod<&Forwarder::FdbDump>("fdb"),
        StaticMethod<&Forwarder::Probe>("probe"),
        StaticMethod<&Forwarder::SocketPair>("socketpair"),
    });
  }

  explicit Forwarder(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Forwarder>(info) {
    fwd::Options o;
    if (info.Length() > 0 && info[0].IsObject()) {
      auto a = info[0].As<Napi::Object>();
      // The ranges lib/forwarder.ts allows: an fdbSize near 2^32 never rounded up to a power of
      // two (an endless loop), a huge copyRingBytes threw std::bad_alloc through N-API.
      auto num = [&](const char* k, double def, double min, double max) {
        Napi::Value v = a.Get(k);
        if (v.IsUndefined()) return def;
        double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : NAN;
        if (!(d >= min && d <= max) || d != std::floor(d))
          throw Napi::RangeError::New(info.Env(), std::string("forwarder: ") + k + " must be an integer from " +
                                                      std::to_string(int64_t(min)) + " to " + std::to_string(int64_t(max)));
        return d;
      };
      o.switchMode = a.Get("mode").IsString() && a.Get("mode").As<Napi::String>().Utf8Value() == "switch";
      o.threads = static_cast<int>(num("threads", 1, 1, fwd::kMaxThreads));
      o.busyPollUs = static_cast<int>(num("busyPollUs", 0, 0, 1000000));
      o.batch = static_cast<int>(num("batch", 64, 1, 4096));
      o.fdbSize = static_cast<uint32_t>(num("fdbSize", 4096, 16, 1 << 20));
      o.ageingSec = static_cast<uint32_t>(num("ageingSec", 300, 1, 1000000));
      o.copyRingBytes = static_cast<size_t>(num("copyRingBytes", 4 << 20, 1 << 18, 1 << 30));
      o.snaplen = static_cast<uint32_t>(num("snaplen", 65535 + 64, 64, 1 << 20));
      o.segment = !a.Get("gsoToPlain").IsString() || a.Get("gsoToPlain").As<Napi::String>().Utf8Value() != "drop";
    }
    try {
      eng_ = std::make_unique<fwd::Engine>(o);
    } catch (const SysError& e) {
      throw sysErr(info.Env(), e);
    } catch (const std::exception& e) {  // std::bad_alloc: never let it cross N-API
      throw Napi::Error::New(info.Env(), std::string("forwarder: ") + e.what());
    }
    env_ = info.Env();
    napi_add_env_cleanup_hook(env_, &Forwarder::cleanupHook, this);
    hooked_ = true;
  }

  ~Forwarder() override { shutdown(); }

 private:
  static void cleanupHook(void* arg) {
    auto* self = static_cast<Forwarder*>(arg);
    self->hooked_ = false;  // the environment is running its hooks: do not remove ourselves
    self->shutdown();
  }

  void shutdown() {
    if (eng_) {
      eng_->shutdown();
      eng_.reset();
    }
    if (hooked_) {
      hooked_ = false;
      napi_remove_env_cleanup_hook(env_, &Forwarder::cleanupHook, this);
    }
  }

  fwd::Engine& engine(Napi::Env env) {
    if (!eng_) {
      Napi::Error e = Napi::Error::New(env, "forwarder is closed");
      e.Set("errno", Napi::Number::New(env, EBADF));
      throw e;
    }
    return *eng_;
  }

  // probe(fd) -> { tun: bool, vnetHdr: bool, hdrLen: number }
  static Napi::Value Probe(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int fd = static_cast<int>(intArg(info, 0, "fd", 0, 0x7fffffff));
    auto r = Napi::Object::New(env);
    struct ifreq ifr{};
    bool tun = ioctl(fd, TUNGETIFF, &ifr) == 0;
    int sz = 0;
    bool vh = tun && (ifr.ifr_flags & IFF_VNET_HDR);
    if (vh && ioctl(fd, TUNGETVNETHDRSZ, &sz) < 0) sz = 10;
    r.Set("tun", tun);
    r.Set("vnetHdr", vh);
    r.Set("hdrLen", vh ? sz : 0);
    if (tun) r.Set("name", Napi::String::New(env, ifr.ifr_name));
    return r;
  }

  // socketpair(type: 'seqpacket' | 'dgram', sndbuf) -> [fd, fd]: AF_UNIX, non-blocking,
  // close-on-exec; one frame per message.
  static Napi::Value SocketPair(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    bool dgram = info.Length() > 0 && info[0].IsString() && info[0].As<Napi::String>().Utf8Value() == "dgram";
    int sz = info.Length() > 1 ? static_cast<int>(intArg(info, 1, "sndbuf", 4096, 1 << 30)) : 4 << 20;
    int sv[2];
    if (socketpair(AF_UNIX, (dgram ? SOCK_DGRAM : SOCK_SEQPACKET) | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
      throw sysErr(env, SysError(errno, "socketpair"));
    for (int fd : sv) {
      // A unix socket's send buffer bounds what is queued towards its peer (the receive buffer
      // plays no part). SO_SNDBUF is capped at net.core.wmem_max; SO_SNDBUFFORCE (CAP_NET_ADMIN)
      // is not, so try it first.
      if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof sz) < 0) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
      if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof sz) < 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    }
    auto a = Napi::Array::New(env);
    a.Set(0u, sv[0]);
    a.Set(1u, sv[1]);
    return a;
  }

  // addPort(fds: number[], hdrLen: number, offloadBits: number (-1: leave), maxMacs: number,
  //         allowedMacs: number[] (48-bit values)) -> { slot, gen }
  Napi::Value AddPort(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto& e = engine(env);
    if (!info[0].IsArray()) throw Napi::TypeError::New(env, "forwarder: fds must be an array");
    auto arr = info[0].As<Napi::Array>();
    int fds[fwd::kMaxQueues];
    int n = static_cast<int>(arr.Length() > uint32_t(fwd::kMaxQueues) ? fwd::kMaxQueues + 1 : arr.Length());
    for (int i = 0; i < n && i < fwd::kMaxQueues; i++) {
      Napi::Value v = arr.Get(uint32_t(i));
      if (!v.IsNumber()) throw Napi::TypeError::New(env, "forwarder: fds must hold numbers");
      fds[i] = v.As<Napi::Number>().Int32Value();
    }
    fwd::PortSpec spec;
    spec.hdrLen = static_cast<int>(intArg(info, 1, "vnet header size", 0, fwd::kMaxHdrLen));
    // The engine reads a whole virtio_net_hdr (10 bytes) wherever there is one: a shorter
    // header would be read from the frame's own bytes (and written over them).
    if (spec.hdrLen > 0 && spec.hdrLen < 10) throw Napi::RangeError::New(env, "forwarder: a vnet header is 0 or at least 10 bytes");
    int bits = static_cast<int>(intArg(info, 2, "offload bits", -1, 0xffff));
    if (info.Length() > 3) spec.maxMacs = static_cast<uint32_t>(intArg(info, 3, "maxMacs", 0, fwd::kMaxPortMacs));
    if (info.Length() > 4 && info[4].IsArray()) {
      auto macs = info[4].As<Napi::Array>();
      if (macs.Length() > uint32_t(fwd::kMaxAllowedMacs)) throw Napi::RangeError::New(env, "forwarder: too many allowedMacs");
      for (uint32_t i = 0; i < macs.Length(); i++) {
        Napi::Value v = macs.Get(i);
        double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
        if (!(d >= 1 && d < 281474976710656.0)) throw Napi::RangeError::New(env, "forwarder: allowedMacs must hold 48-bit MACs");
        spec.allowedMacs.push_back(static_cast<uint64_t>(d));
      }
    }
    try {
      // Offloads change the caller's device: only once the port is sure to be added (there is
      // no TUNGETOFFLOAD to restore them from).
      int slot = e.addPort(fds, n, spec, [bits](const int* own, int nq) {
        if (bits >= 0)
          for (int i = 0; i < nq; i++) tunApplyOffloads(own[i], unsigned(bits), "forwarder.add");
      });
      auto r = Napi::Object::New(env);
      r.Set("slot", slot);
      r.Set("gen", static_cast<double>(e.ports[slot].gen));
      return r;
    } catch (const SysError& se) {
      throw sysErr(env, se);
    }
  }

  Napi::Value RemovePort(const Napi::CallbackInfo& info) {
    engine(info.Env()).removePort(slotArg(info));
    return info.Env().Undefined();
  }
  Napi::Value Start(const Napi::CallbackInfo& info) {
    try {
      engine(info.Env()).start();
    } catch (const std::system_error& e) {
      throw Napi::Error::New(info.Env(), std::string("forwarder.start: ") + e.what());
    }
    return info.Env().Undefined();
  }
  Napi::Value Stop(const Napi::CallbackInfo& info) {
    engine(info.Env()).stop();
    return info.Env().Undefined();
  }
  Napi::Value Close(const Napi::CallbackInfo& info) {
    shutdown();
    return info.Env().Undefined();
  }

  // stats(slot) -> { rxPackets, rxBytes, txPackets, txBytes, drops: {...}, downQueues, lastErrno }
  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto& e = engine(env);
    int slot = slotArg(info);
    uint64_t v[4 + fwd::kDropCount];
    e.stats(slot, v);
    auto o = Napi::Object::New(env);
    o.Set("rxPackets", double(v[0]));
    o.Set("rxBytes", double(v[1]));
    o.Set("txPackets", double(v[2]));
    o.Set("txBytes", double(v[3]));
    auto d = Napi::Object::New(env);
    for (int i = 0; i < fwd::kDropCount; i++) d.Set(fwd::dropName(i), double(v[4 + i]));
    o.Set("drops", d);
    o.Set("downQueues", double(e.ports[slot].downQueues.load()));
    o.Set("lastErrno", double(e.ports[slot].lastErrno.load()));
    return o;
  }

  // send(slot, buffer) -> 0 | errno
  Napi::Value Send(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto& e = engine(env);
    int slot = slotArg(info);
    if (!info[1].IsBuffer()) throw Napi::TypeError::New(env, "forwarder: frame must be a Buffer");
    auto b = info[1].As<Napi::Buffer<uint8_t>>();
    return Napi::Number::New(env, e.send(slot, b.Data(), b.Length()));
  }

  Napi::Value Monitor(const Napi::CallbackInfo& info) {
    engine(info.Env()).setMonitor(slotArg(info), info[1].ToBoolean());
    return info.Env().Undefined();
  }

  // drain(max) -> [{ port, dir, tsUs, origLen, data }]
  Napi::Value Drain(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto out = Napi::Array::New(env);
    if (!eng_) return out;
    size_t max = info.Length() > 0 ? static_cast<size_t>(intArg(info, 0, "max", 0, 1 << 20)) : 1024;
    uint32_t i = 0;
    eng_->drain(max, [&](const fwd::CopyRec& r, const uint8_t* data) {
      auto o = Napi::Object::New(env);
      o.Set("port", double(r.port));
      o.Set("gen", double(r.gen));
      o.Set("dir", r.dir ? "tx" : "rx");
      o.Set("tsUs", double(r.tsNs / 1000));
      o.Set("origLen", double(r.origLen));
      o.Set("data", Napi::Buffer<uint8_t>::Copy(env, data, r.caplen));
      out.Set(i++, o);
    });
    return out;
  }

  Napi::Value Cpu(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto out = Napi::Array::New(env);
    if (!eng_) return out;
    auto v = eng_->cpuNs();
    for (uint32_t i = 0; i < v.size(); i++) out.Set(i, double(v[i]) / 1e9);
    return out;
  }

  // fdb() -> [{ mac: number, port, gen, seen }]
  Napi::Value FdbDump(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto out = Napi::Array::New(env);
    if (!eng_) return out;
    uint32_t i = 0;
    eng_->fdbEach([&](uint64_t w, uint32_t seen) {
      auto o = Napi::Object::New(env);
      o.Set("mac", double(w >> 16));
      o.Set("port", double((w >> 8) & 0xff));
      o.Set("gen", double(w & 0xff));
      o.Set("seen", double(seen));
      out.Set(i++, o);
    });
    return out;
  }

  std::unique_ptr<fwd::Engine> eng_;
  napi_env env_ = nullptr;
  bool hooked_ = false;
};

}  // namespace

Napi::Function initForwarder(Napi::Env env) { return Forwarder::Init(env); }

}  // namespace vnl
