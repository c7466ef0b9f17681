// @file The N-API surface of the addon, and nothing else: argument unpacking, handle lifetime,
// external-memory reporting to V8, and C++ exceptions turned into JavaScript errors.
// The contract is packages/core/src/native/binding.ts.
#include <napi.h>

#include <memory>
#include <unordered_map>

#include "cpu/threads.h"
#include "executor.h"

namespace tessera {
namespace {

Executor& executor() {
  static Executor* e = new Executor();  // never destroyed: finalizers may run at exit
  return *e;
}

size_t active_bytes() {
  size_t n = 0;
  for (Backend* b : backends()) n += b->allocator().active();
  return n;
}

// Tells V8 how much native memory the arrays hold, so its collector runs when it matters.
int64_t reported_bytes = 0;
void report_memory(Napi::Env env) {
  int64_t now = static_cast<int64_t>(active_bytes());
  if (now != reported_bytes) {
    Napi::MemoryManagement::AdjustExternalMemory(env, now - reported_bytes);
    reported_bytes = now;
  }
}

template <class F>
auto guarded(const Napi::CallbackInfo& info, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), e.what());
  }
}

Shape shape_of(const Napi::Value& v) {
  Napi::Array a = v.As<Napi::Array>();
  Shape s(a.Length());
  for (uint32_t i = 0; i < a.Length(); ++i) s[i] = a.Get(i).As<Napi::Number>().Int64Value();
  return s;
}

// fromData(bytes: ArrayBufferView, dtype: number, shape: number[], device: number) -> handle
Napi::Value FromData(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::TypedArray src = info[0].As<Napi::TypedArray>();
    ArrayDesc d;
    d.dtype = static_cast<DType>(info[1].As<Napi::Number>().Int32Value());
    d.shape = shape_of(info[2]);
    d.device = info[3].IsUndefined() ? 0 : info[3].As<Napi::Number>().Int32Value();
    d.strides = row_major_strides(d.shape);
    if (src.ByteLength() != d.nbytes()) throw std::runtime_error("[fromData] byte length does not match the shape");
    Backend& be = backend(d.device);
    d.storage = be.allocator().allocate(d.nbytes());
    const uint8_t* bytes = static_cast<const uint8_t*>(src.ArrayBuffer().Data()) + src.ByteOffset();
    be.write(d, bytes);
    int32_t h = executor().add(std::move(d));
    report_memory(info.Env());
    return Napi::Number::New(info.Env(), h);
  });
}

// read(handle, dst: ArrayBufferView): copies the array, made contiguous, into dst.
Napi::Value Read(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    ArrayDesc d = executor().get(info[0].As<Napi::Number>().Int32Value());
    Napi::TypedArray dst = info[1].As<Napi::TypedArray>();
    if (dst.ByteLength() != d.nbytes()) throw std::runtime_error("[read] destination has the wrong byte length");
    uint8_t* bytes = static_cast<uint8_t*>(dst.ArrayBuffer().Data()) + dst.ByteOffset();
    Backend& be = backend(d.device);
    be.synchronize();
    be.read(d, bytes);
    return info.Env().Undefined();
  });
}

// Arrays dropped by JavaScript: each handle keeps a weak reference to its Array object. V8 clears
// weak references during any collection, scavenges included, but Node runs finalizers (and
// FinalizationRegistry callbacks) only in a later event-loop task, which a synchronous training
// loop never reaches. So the addon polls: when the number of tracked arrays or the active memory
// has grown enough since the last sweep, it frees every handle whose object is gone. The sweep is
// amortized O(1) per array, and needs no help from the user (no tidy, no yielding).
std::unordered_map<int32_t, napi_ref> tracked;
size_t tracked_after_sweep = 0;
size_t active_after_sweep = 0;

void untrack(napi_env env, int32_t handle) {
  auto it = tracked.find(handle);
  if (it == tracked.end()) return;
  napi_delete_reference(env, it->second);
  tracked.erase(it);
}

void sweep(napi_env env) {
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  for (auto it = tracked.begin(); it != tracked.end();) {
    napi_value v = nullptr;
    napi_get_reference_value(env, it->second, &v);
    if (v == nullptr) {
      executor().free(it->first);
      napi_delete_reference(env, it->second);
      it = tracked.erase(it);
    } else {
      ++it;
    }
  }
  napi_close_handle_scope(env, scope);
  tracked_after_sweep = tracked.size();
  active_after_sweep = active_bytes();
}

void maybe_sweep(napi_env env) {
  size_t active = active_bytes();
  if (tracked.size() >= 2 * tracked_after_sweep + 1024 ||
      active >= active_after_sweep + active_after_sweep / 2 + (size_t(16) << 20)) {
    sweep(env);
    report_memory(env);
  }
}

// track(array, handle): frees the handle once the array object has been collected.
Napi::Value Track(const Napi::CallbackInfo& info) {
  napi_ref ref;
  if (napi_create_reference(info.Env(), info[0], 0, &ref) != napi_ok) throw Napi::Error::New(info.Env(), "[track] napi_create_reference failed");
  tracked[info[1].As<Napi::Number>().Int32Value()] = ref;
  maybe_sweep(info.Env());  // run() and fromData() already reported the new array's memory
  return info.Env().Undefined();
}

Napi::Value Free(const Napi::CallbackInfo& info) {
  int32_t h = info[0].As<Napi::Number>().Int32Value();
  untrack(info.Env(), h);
  executor().free(h);
  report_memory(info.Env());
  return info.Env().Undefined();
}

// The bindings of a run: (inputs: Int32Array of handles, scalars: Float64Array).
BoundProgram bind_args(const Napi::CallbackInfo& info, std::shared_ptr<const Program> body) {
  Napi::Int32Array inputs = info[1].As<Napi::Int32Array>();
  Napi::Float64Array scalars = info[2].As<Napi::Float64Array>();
  return executor().bind(std::move(body), inputs.Data(), inputs.ElementLength(), scalars.Data(), scalars.ElementLength());
}

std::shared_ptr<const Program> decode_arg(const Napi::Value& v) {
  Napi::Int32Array body = v.As<Napi::Int32Array>();
  return Executor::decode(body.Data(), body.ElementLength());
}

Napi::Int32Array register_outputs(Napi::Env env, std::vector<ArrayDesc>& outs) {
  Napi::Int32Array handles = Napi::Int32Array::New(env, outs.size());
  for (size_t i = 0; i < outs.size(); ++i) handles[i] = executor().add(std::move(outs[i]));
  report_memory(env);
  return handles;
}

Napi::Value run_bound(const Napi::CallbackInfo& info, BoundProgram bound) {
  std::vector<ArrayDesc> outs;
  try {
    outs = executor().run(bound);
  } catch (...) {
    report_memory(info.Env());
    throw;
  }
  return register_outputs(info.Env(), outs);
}

// run(body: Int32Array, inputs: Int32Array, scalars: Float64Array) -> Int32Array of output handles
Napi::Value Run(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value { return run_bound(info, bind_args(info, decode_arg(info[0]))); });
}

// keepBody(body: Int32Array) -> id: decodes a body once, for runBody.
Napi::Value KeepBody(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    return Napi::Number::New(info.Env(), executor().keep_body(decode_arg(info[0])));
  });
}

// runBody(id, inputs, scalars) -> Int32Array of output handles: replays a kept body.
Napi::Value RunBody(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    return run_bound(info, bind_args(info, executor().body(info[0].As<Napi::Number>().Int32Value())));
  });
}

Napi::Value ReleaseBody(const Napi::CallbackInfo& info) {
  executor().release_body(info[0].As<Napi::Number>().Int32Value());
  return info.Env().Undefined();
}

// The same as run on a libuv worker thread; resolves with the output handles.
class RunWorker : public Napi::AsyncWorker {
 public:
  RunWorker(Napi::Env env, BoundProgram bound)
      : Napi::AsyncWorker(env), bound_(std::move(bound)), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise promise() { return deferred_.Promise(); }
  void Execute() override {
    try {
      outs_ = executor().run(bound_);
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnOK() override { deferred_.Resolve(register_outputs(Env(), outs_)); }
  void OnError(const Napi::Error& e) override {
    report_memory(Env());
    deferred_.Reject(e.Value());
  }

 private:
  BoundProgram bound_;
  std::vector<ArrayDesc> outs_;
  Napi::Promise::Deferred deferred_;
};

Napi::Value RunAsync(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto* worker = new RunWorker(info.Env(), bind_args(info, decode_arg(info[0])));
    Napi::Promise p = worker->promise();
    worker->Queue();
    return p;
  });
}

// devices() -> the names of the registered backends; a program's device field indexes this list.
Napi::Value Devices(const Napi::CallbackInfo& info) {
  Napi::Array a = Napi::Array::New(info.Env());
  const auto& list = backends();
  for (size_t i = 0; i < list.size(); ++i) a.Set(static_cast<uint32_t>(i), Napi::String::New(info.Env(), list[i]->name()));
  return a;
}

Napi::Value OpTable(const Napi::CallbackInfo& info) {
  Napi::Array a = Napi::Array::New(info.Env());
  for (int32_t i = 0; i < static_cast<int32_t>(Op::Count); ++i) a.Set(i, Napi::String::New(info.Env(), op_name(i)));
  return a;
}

// describe(handle) -> { shape, strides, offset, storage } (strides and the storage's identity, for view tests)
Napi::Value Describe(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    ArrayDesc d = executor().get(info[0].As<Napi::Number>().Int32Value());
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    Napi::Array shape = Napi::Array::New(env), strides = Napi::Array::New(env);
    for (int i = 0; i < d.ndim(); ++i) {
      shape.Set(i, Napi::Number::New(env, static_cast<double>(d.shape[i])));
      strides.Set(i, Napi::Number::New(env, static_cast<double>(d.strides[i])));
    }
    o.Set("shape", shape);
    o.Set("strides", strides);
    o.Set("offset", Napi::Number::New(env, static_cast<double>(d.offset)));
    o.Set("device", Napi::Number::New(env, d.device));
    o.Set("storage", Napi::Number::New(env, static_cast<double>(reinterpret_cast<uintptr_t>(d.storage.get()) % 9007199254740991ull)));
    return o;
  });
}

Napi::Value MemoryStats(const Napi::CallbackInfo& info) {
  sweep(info.Env());  // count what the collector has already dropped
  report_memory(info.Env());
  Allocator& a = backend(info[0].IsUndefined() ? 0 : info[0].As<Napi::Number>().Int32Value()).allocator();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("active", Napi::Number::New(info.Env(), static_cast<double>(a.active())));
  o.Set("peak", Napi::Number::New(info.Env(), static_cast<double>(a.peak())));
  o.Set("cache", Napi::Number::New(info.Env(), static_cast<double>(a.cached())));
  o.Set("liveBuffers", Napi::Number::New(info.Env(), static_cast<double>(a.live_allocations())));
  o.Set("bodies", Napi::Number::New(info.Env(), static_cast<double>(executor().num_bodies())));
  o.Set("handles", Napi::Number::New(info.Env(), static_cast<double>(executor().num_handles())));
  o.Set("limit", Napi::Number::New(info.Env(), static_cast<double>(a.limit())));
  return o;
}

Napi::Value ResetPeak(const Napi::CallbackInfo& info) {
  for (Backend* b : backends()) b->allocator().reset_peak();
  return info.Env().Undefined();
}

Napi::Value ClearCache(const Napi::CallbackInfo& info) {
  for (Backend* b : backends()) b->allocator().clear_cache();
  return info.Env().Undefined();
}

Napi::Value SetMemoryLimit(const Napi::CallbackInfo& info) {
  Allocator& a = backend(0).allocator();  // the limit of the default device
  double prev = static_cast<double>(a.limit());
  double v = info[0].As<Napi::Number>().DoubleValue();
  a.set_limit(v >= 1.8e19 ? SIZE_MAX : static_cast<size_t>(v));
  return Napi::Number::New(info.Env(), prev);
}

Napi::Value NumThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), cpu::num_threads());
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("fromData", Napi::Function::New(env, FromData));
  exports.Set("read", Napi::Function::New(env, Read));
  exports.Set("free", Napi::Function::New(env, Free));
  exports.Set("track", Napi::Function::New(env, Track));
  exports.Set("run", Napi::Function::New(env, Run));
  exports.Set("runAsync", Napi::Function::New(env, RunAsync));
  exports.Set("keepBody", Napi::Function::New(env, KeepBody));
  exports.Set("runBody", Napi::Function::New(env, RunBody));
  exports.Set("releaseBody", Napi::Function::New(env, ReleaseBody));
  exports.Set("devices", Napi::Function::New(env, Devices));
  exports.Set("opTable", Napi::Function::New(env, OpTable));
  exports.Set("describe", Napi::Function::New(env, Describe));
  exports.Set("memoryStats", Napi::Function::New(env, MemoryStats));
  exports.Set("resetPeakMemory", Napi::Function::New(env, ResetPeak));
  exports.Set("clearCache", Napi::Function::New(env, ClearCache));
  exports.Set("setMemoryLimit", Napi::Function::New(env, SetMemoryLimit));
  exports.Set("numThreads", Napi::Function::New(env, NumThreads));
  return exports;
}

}  // namespace
}  // namespace tessera

static Napi::Object InitTessera(Napi::Env env, Napi::Object exports) { return tessera::Init(env, exports); }
NODE_API_MODULE(tessera, InitTessera)
