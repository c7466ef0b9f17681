// @file The N-API surface of the addon, and nothing else: argument unpacking, handle lifetime,
// external-memory reporting to V8, and C++ exceptions turned into JavaScript errors.
// The contract is packages/core/src/native/binding.ts.
#include <napi.h>

#include <algorithm>
#include <memory>
#include <unordered_map>
#include <vector>

#include "cpu/gemm.h"
#include "cpu/isa.h"
#include "cpu/threads.h"
#include "executor.h"
#include "replay.h"

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

// What one JavaScript thread (the main thread or a Worker: each is a Node-API environment) owns.
// Arrays belong to the thread that made them: a handle is usable only from the environment that
// created it, and everything an environment still owns is freed when it ends (a Worker exits or
// is terminated). The executor and the backends are shared, behind their own locks.
struct EnvState {
  // Every handle this environment owns, with a weak reference to its Array once tracked.
  using HandleMap = std::unordered_map<int32_t, napi_ref>;
  HandleMap handles;
  NodePool<HandleMap> handle_nodes;  // Free's erased entries, for own's next inserts
  size_t tracked_after_sweep = 0;
  size_t active_after_sweep = 0;
  int64_t reported_bytes = 0;
  std::shared_ptr<ProfileLog> profile;  // while mx.profile runs: every program of this env is timed
  // Small bodies decoded lately, by their words: a loop evaluating the same small graph each step
  // decodes it once (a decoded Program is immutable, so runs share it).
  struct Decoded {
    std::vector<int32_t> words;
    std::shared_ptr<const Program> program;
  };
  std::unordered_map<uint64_t, Decoded> decoded;
  size_t decoded_words = 0;  // the words the cache holds, bounded with its entries
  const Decoded* last_decoded = nullptr;  // the entry used last, compared before hashing
};

EnvState& state(napi_env env) { return *Napi::Env(env).GetInstanceData<EnvState>(); }

void end_env(Napi::Env, EnvState* s) {
  for (auto& entry : s->handles) executor().free(entry.first);  // the references die with the env
  delete s;
}

int32_t own(napi_env env, ArrayDesc desc) {
  int32_t h = executor().add(std::move(desc));
  EnvState& st = state(env);
  st.handle_nodes.insert(st.handles, h, nullptr);
  return h;
}

// The descriptor of a handle this environment owns.
ArrayDesc owned(napi_env env, int32_t h) {
  if (!state(env).handles.count(h)) throw std::runtime_error("handle " + std::to_string(h) + " is not live in this thread");
  return executor().get(h);
}

// Tells V8 how much native memory the arrays hold, so that its collector runs when unreachable
// arrays hold a lot. Rises are told as they happen (new arrays); falls only with `falls`, when the
// collector's frees are swept or the counters are read, never at an explicit free. V8 collects
// once external memory rises 64 MiB past its level at the last collection, so telling it of each
// dispose made a loop that makes and disposes one large result per step climb past that mark
// again every step, and pay a full collection every step or two (measured with a 256 MiB result
// per eval: about 1.5 ms per eval on the cpu, most of the 0.35 ms of host time per eval on the gpu).
void report_memory(Napi::Env env, bool falls = false) {
  int64_t now = static_cast<int64_t>(active_bytes());
  EnvState& st = state(env);
  if (now > st.reported_bytes || (falls && now < st.reported_bytes)) {
    Napi::MemoryManagement::AdjustExternalMemory(env, now - st.reported_bytes);
    st.reported_bytes = now;
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

// Every exported function runs inside guarded() (see Init), so a C++ exception anywhere becomes a
// JavaScript Error; these check the kinds of arguments before their bytes are read.
template <Napi::Value (*F)(const Napi::CallbackInfo&)>
Napi::Value Guard(const Napi::CallbackInfo& info) {
  return guarded(info, [&] { return F(info); });
}

// A typed array argument's elements, read with one napi_get_typedarray_info: node-addon-api's
// Int32Array wrapper asks three times, which showed in the cost of a tiny evaluation.
template <class T>
struct Elements {
  T* data = nullptr;
  size_t length = 0;
  T* Data() const { return data; }
  size_t ElementLength() const { return length; }
  T& operator[](size_t i) const { return data[i]; }
};
// (napi_get_typedarray_info fails on anything but a typed array, so no napi_is_typedarray first.)
template <class T>
bool elements_of(napi_env env, napi_value v, napi_typedarray_type type, Elements<T>& out) {
  if (v == nullptr) return false;
  napi_typedarray_type t;
  void* data = nullptr;  // already past the view's byte offset
  size_t n = 0;
  if (napi_get_typedarray_info(env, v, &t, &n, &data, nullptr, nullptr) != napi_ok || t != type) return false;
  out.data = static_cast<T*>(data);
  out.length = n;
  return true;
}
template <class T>
Elements<T> typed_array(const Napi::Value& v, napi_typedarray_type type, const char* what) {
  Elements<T> e;
  if (!elements_of(v.Env(), v, type, e)) throw std::runtime_error(std::string(what) + " has the wrong type");
  return e;
}
Elements<int32_t> int32_array(const Napi::Value& v, const char* what) {
  return typed_array<int32_t>(v, napi_int32_array, what);
}
Elements<double> float64_array(const Napi::Value& v, const char* what) {
  return typed_array<double>(v, napi_float64_array, what);
}
Napi::TypedArray any_typed_array(const Napi::Value& v, const char* what) {
  if (!v.IsTypedArray()) throw std::runtime_error(std::string(what) + " must be a TypedArray");
  return v.As<Napi::TypedArray>();
}

Shape shape_of(const Napi::Value& v) {
  if (!v.IsArray()) throw std::runtime_error("[fromData] the shape must be an array");
  Napi::Array a = v.As<Napi::Array>();
  if (a.Length() > (1u << 20)) throw std::runtime_error("[fromData] a shape has at most 2^20 dimensions");
  Shape s(a.Length());
  for (uint32_t i = 0; i < a.Length(); ++i) {
    double d = a.Get(i).As<Napi::Number>().DoubleValue();
    if (!(d >= 0 && d <= 2147483647.0) || d != static_cast<double>(static_cast<int64_t>(d)))
      throw std::runtime_error("[fromData] a dimension must be an integer in [0, 2^31 - 1]");
    s[i] = static_cast<int64_t>(d);
  }
  return s;
}

// fromData(bytes: ArrayBufferView, dtype: number, shape: number[], device: number) -> handle
Napi::Value FromData(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::TypedArray src = any_typed_array(info[0], "[fromData] the data");
    ArrayDesc d;
    int32_t dt = info[1].As<Napi::Number>().Int32Value();
    if (dt < 0 || dt >= kNumDTypes) throw std::runtime_error("[fromData] unknown dtype code");
    d.dtype = static_cast<DType>(dt);
    d.shape = shape_of(info[2]);
    checked_numel(d.shape, d.dtype);
    d.device = info[3].IsUndefined() ? 0 : info[3].As<Napi::Number>().Int32Value();
    d.strides = row_major_strides(d.shape);
    if (src.ByteLength() != d.nbytes()) throw std::runtime_error("[fromData] byte length does not match the shape");
    Backend& be = backend(d.device);
    d.storage = be.allocator().allocate(d.nbytes());
    const uint8_t* bytes = static_cast<const uint8_t*>(src.ArrayBuffer().Data()) + src.ByteOffset();
    be.write(d, bytes);
    int32_t h = own(info.Env(), std::move(d));
    report_memory(info.Env());
    return Napi::Number::New(info.Env(), h);
  });
}

// read(handle, dst: ArrayBufferView): copies the array, made contiguous, into dst.
Napi::Value Read(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    ArrayDesc d = owned(info.Env(), info[0].As<Napi::Number>().Int32Value());
    Napi::TypedArray dst = any_typed_array(info[1], "[read] the destination");
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
void sweep(napi_env env) {
  EnvState& st = state(env);
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  for (auto it = st.handles.begin(); it != st.handles.end();) {
    if (!it->second) {
      ++it;
      continue;
    }
    napi_value v = nullptr;
    napi_get_reference_value(env, it->second, &v);
    if (v == nullptr) {
      executor().free(it->first);
      napi_delete_reference(env, it->second);
      it = st.handles.erase(it);
    } else {
      ++it;
    }
  }
  napi_close_handle_scope(env, scope);
  // Everything this thread owns counts: a run registers its outputs before JavaScript tracks them,
  // and counting only the tracked ones made every track() of a large run sweep again (quadratic).
  st.tracked_after_sweep = st.handles.size();
  st.active_after_sweep = active_bytes();
}

void maybe_sweep(napi_env env) {
  EnvState& st = state(env);
  size_t active = active_bytes();
  if (st.handles.size() >= 2 * st.tracked_after_sweep + 1024 ||
      active >= st.active_after_sweep + st.active_after_sweep / 2 + (size_t(16) << 20)) {
    sweep(env);
    report_memory(env, true);
  }
}

// track(array, handle): frees the handle once the array object has been collected.
Napi::Value Track(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    int32_t h = info[1].As<Napi::Number>().Int32Value();
    auto it = state(info.Env()).handles.find(h);
    if (it == state(info.Env()).handles.end()) throw std::runtime_error("[track] handle " + std::to_string(h) + " is not live in this thread");
    if (!info[0].IsObject()) throw std::runtime_error("[track] expected an object");
    if (it->second) napi_delete_reference(info.Env(), it->second);
    napi_ref ref;
    if (napi_create_reference(info.Env(), info[0], 0, &ref) != napi_ok) throw std::runtime_error("[track] napi_create_reference failed");
    it->second = ref;
    maybe_sweep(info.Env());  // run() and fromData() already reported the new array's memory
    return info.Env().Undefined();
  });
}

Napi::Value Free(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    int32_t h = info[0].As<Napi::Number>().Int32Value();
    EnvState& st = state(info.Env());
    auto it = st.handles.find(h);
    if (it == st.handles.end()) return info.Env().Undefined();  // freed already (dispose, then the collector)
    if (napi_ref ref = st.handle_nodes.erase(st.handles, it)) napi_delete_reference(info.Env(), ref);
    executor().free(h);  // V8 hears of the fall at the next sweep (see report_memory)
    return info.Env().Undefined();
  });
}

// The bindings of a run: (inputs: Int32Array of handles, scalars: Float64Array).
BoundProgram bind_args(const Napi::CallbackInfo& info, std::shared_ptr<const Program> body) {
  Elements<int32_t> inputs = int32_array(info[1], "[run] the input handles");
  // undefined for none: reading an empty typed array costs a tiny evaluation more than the check
  Elements<double> scalars;
  if (!info[2].IsUndefined()) scalars = float64_array(info[2], "[run] the scalars");
  const EnvState& owner = state(info.Env());
  for (size_t i = 0; i < inputs.ElementLength(); ++i)
    if (!owner.handles.count(inputs[i]))
      throw std::runtime_error("handle " + std::to_string(inputs[i]) + " is not live in this thread");
  BoundProgram bound =
      executor().bind(std::move(body), inputs.Data(), inputs.ElementLength(), scalars.Data(), scalars.ElementLength());
  bound.profile = state(info.Env()).profile;
  // Donated inputs (an optimizer step's old parameters and state): their handles are freed now,
  // so the program holds their only reference and may write its results over them.
  if (info.Length() > 3 && !info[3].IsUndefined()) {
    Elements<int32_t> donated = int32_array(info[3], "[run] the donated inputs");
    for (size_t k = 0; k < donated.ElementLength(); ++k) {
      const int32_t i = donated[k];
      if (i < 0 || static_cast<size_t>(i) >= inputs.ElementLength()) throw std::runtime_error("[run] a donated input is out of range");
      EnvState& st = state(info.Env());
      auto it = st.handles.find(inputs[i]);
      if (it == st.handles.end()) continue;
      if (napi_ref ref = st.handle_nodes.erase(st.handles, it)) napi_delete_reference(info.Env(), ref);
      executor().free(inputs[i]);
    }
  }
  return bound;
}

// The bindings of a run of a kept body (runBody's arguments), with the body's replay state.
BoundProgram bind_kept(const Napi::CallbackInfo& info) {
  const int32_t id = info[0].As<Napi::Number>().Int32Value();
  BoundProgram bound = bind_args(info, executor().body(id));
  bound.replay = executor().replay(id);
  return bound;
}

std::shared_ptr<const Program> decode_arg(const Napi::Value& v) {
  Elements<int32_t> body = int32_array(v, "[run] the body");
  return Executor::decode(body.Data(), body.ElementLength());
}

// decode_arg through the environment's cache of bodies (compared word for word: a body that
// differs anywhere decodes, and is validated, afresh). A training step's program is the same
// every step, so it is decoded once; the cache holds at most 64 bodies and 2^20 words.
std::shared_ptr<const Program> decode_cached(napi_env env, const Napi::Value& v) {
  constexpr size_t kMaxWords = size_t(1) << 18, kMaxTotalWords = size_t(1) << 20, kMaxEntries = 64;
  Elements<int32_t> body = int32_array(v, "[run] the body");
  const int32_t* w = body.Data();
  const size_t n = body.ElementLength();
  if (n > kMaxWords) return Executor::decode(w, n);
  EnvState& st = state(env);
  // A loop evaluating one graph sends the same body each time: a comparison, without the hash.
  const EnvState::Decoded* last = st.last_decoded;
  if (last && last->words.size() == n && std::equal(w, w + n, last->words.begin())) return last->program;
  uint64_t h = 1469598103934665603ull;  // FNV-1a over the words
  for (size_t i = 0; i < n; ++i) h = (h ^ static_cast<uint32_t>(w[i])) * 1099511628211ull;
  auto& cache = st.decoded;
  auto it = cache.find(h);
  if (it != cache.end() && it->second.words.size() == n && std::equal(w, w + n, it->second.words.begin())) {
    st.last_decoded = &it->second;
    return it->second.program;
  }
  std::shared_ptr<const Program> p = Executor::decode(w, n);
  st.last_decoded = nullptr;  // (erase and clear below may drop its entry)
  if (it != cache.end()) {  // a different body with the same hash: this one replaces it
    st.decoded_words -= it->second.words.size();
    cache.erase(it);
  }
  if (cache.size() >= kMaxEntries || st.decoded_words + n > kMaxTotalWords) {
    cache.clear();
    st.decoded_words = 0;
  }
  st.last_decoded = &cache.emplace(h, EnvState::Decoded{std::vector<int32_t>(w, w + n), p}).first->second;
  st.decoded_words += n;
  return p;
}

// The output handles, in `out` when the caller passed one of the right length (run's scratch
// array, which spares a new typed array per evaluation), else in a new array.
Napi::Value register_outputs(Napi::Env env, std::vector<ArrayDesc>& outs, const Napi::Value& out = Napi::Value()) {
  Elements<int32_t> given;
  if (!out.IsEmpty() && elements_of(env, out, napi_int32_array, given) && given.length == outs.size()) {
    for (size_t i = 0; i < outs.size(); ++i) given[i] = own(env, std::move(outs[i]));
    report_memory(env);
    return out;
  }
  Napi::Int32Array handles = Napi::Int32Array::New(env, outs.size());
  for (size_t i = 0; i < outs.size(); ++i) handles[i] = own(env, std::move(outs[i]));
  report_memory(env);
  return handles;
}

Napi::Value run_bound(const Napi::CallbackInfo& info, BoundProgram bound, const Napi::Value& out = Napi::Value()) {
  std::vector<ArrayDesc> outs;
  try {
    outs = executor().run(bound);
  } catch (...) {
    report_memory(info.Env());
    throw;
  }
  Napi::Value handles = register_outputs(info.Env(), outs, out);
  Executor::recycle(std::move(outs));
  return handles;
}

// run(body: Int32Array, inputs: Int32Array, scalars?: Float64Array, donated?, out?: Int32Array)
//   -> Int32Array of output handles (`out` itself when its length is the number of outputs)
Napi::Value Run(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    return run_bound(info, bind_args(info, decode_cached(info.Env(), info[0])), info.Length() > 4 ? info[4] : Napi::Value());
  });
}

// keepBody(body: Int32Array, replaces?: Int32Array) -> id: decodes a body once, for runBody.
// `replaces` holds pairs (input, output): that output is the input's update (Program::replaces).
Napi::Value KeepBody(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Elements<int32_t> body = int32_array(info[0], "[keepBody] the body");
    Program p = decode_program(body.Data(), body.ElementLength(), static_cast<int32_t>(backends().size()));
    if (info.Length() > 1 && !info[1].IsUndefined()) {
      Elements<int32_t> pairs = int32_array(info[1], "[keepBody] the replaced inputs");
      const size_t n = pairs.ElementLength();
      for (size_t k = 0; k + 1 < n; k += 2) set_replaced(p, pairs[k], pairs[k + 1]);
    }
    return Napi::Number::New(info.Env(), executor().keep_body(std::make_shared<const Program>(std::move(p))));
  });
}

// runBody(id, inputs, scalars, donated?) -> Int32Array of output handles: replays a kept body.
Napi::Value RunBody(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    return run_bound(info, bind_kept(info));
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
  // When the environment is being torn down (a Worker terminated during the run) no JavaScript
  // can receive the result: the outputs are dropped, and end_env frees what was registered.
  void OnOK() override {
    try {
      deferred_.Resolve(register_outputs(Env(), outs_));
    } catch (...) {
      outs_.clear();
    }
  }
  void OnError(const Napi::Error& e) override {
    try {
      report_memory(Env());
      deferred_.Reject(e.Value());
    } catch (...) {
    }
  }

 private:
  BoundProgram bound_;
  std::vector<ArrayDesc> outs_;
  Napi::Promise::Deferred deferred_;
};

Napi::Value RunAsync(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto* worker = new RunWorker(info.Env(), bind_args(info, decode_cached(info.Env(), info[0])));
    Napi::Promise p = worker->promise();
    worker->Queue();
    return p;
  });
}

// runBodyAsync(id, inputs, scalars, donated?) -> Promise of the output handles: runBody off the
// main thread (evalAsync of a compiled function's call).
Napi::Value RunBodyAsync(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto* worker = new RunWorker(info.Env(), bind_kept(info));
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

// opKinds() -> each opcode's kind as ops.def declares it (source, view, unary, predicate, binary,
// compare, ternary, reduce, special): what the fusion pass needs to know of an op.
Napi::Value OpKinds(const Napi::CallbackInfo& info) {
  static const char* const names[] = {"source", "view", "unary", "predicate", "binary", "compare", "ternary", "reduce", "special"};
  Napi::Array a = Napi::Array::New(info.Env());
  for (int32_t i = 0; i < static_cast<int32_t>(Op::Count); ++i)
    a.Set(i, Napi::String::New(info.Env(), names[static_cast<int>(op_kind(static_cast<Op>(i)))]));
  return a;
}

// describe(handle) -> { shape, strides, offset, storage } (strides and the storage's identity, for view tests)
Napi::Value Describe(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    ArrayDesc d = owned(info.Env(), info[0].As<Napi::Number>().Int32Value());
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

// replayStats() -> { captures, replays, misses, failures, copies, lastFailure, lastMiss, lastCopies }: kept bodies
// recorded as one launch, runs a recording served, runs it could not serve, recordings that failed,
// inputs replays copied in, why the last recording failed, why the last unserved run was not served,
// and which inputs the last replay that copied any copied in
// (tests read these).
Napi::Value ReplayStatsFn(const Napi::CallbackInfo& info) {
  const ReplayStats r = replay_stats();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("captures", Napi::Number::New(info.Env(), static_cast<double>(r.captures)));
  o.Set("replays", Napi::Number::New(info.Env(), static_cast<double>(r.replays)));
  o.Set("misses", Napi::Number::New(info.Env(), static_cast<double>(r.misses)));
  o.Set("failures", Napi::Number::New(info.Env(), static_cast<double>(r.failures)));
  o.Set("copies", Napi::Number::New(info.Env(), static_cast<double>(r.copies)));
  o.Set("lastFailure", Napi::String::New(info.Env(), r.last_failure));
  o.Set("lastMiss", Napi::String::New(info.Env(), r.last_miss));
  o.Set("lastCopies", Napi::String::New(info.Env(), r.last_copies));
  return o;
}

// counters() -> { "gpu.productGraphsReplayed": n, ... }: each backend's named counts, prefixed with
// its device's name (tests read these).
Napi::Value Counters(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
  for (Backend* b : backends())
    for (const auto& [name, value] : b->counters()) o.Set(std::string(b->name()) + "." + name, Napi::Number::New(info.Env(), value));
  return o;
}

Napi::Value MemoryStats(const Napi::CallbackInfo& info) {
  sweep(info.Env());  // count what the collector has already dropped
  report_memory(info.Env(), true);
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
  // The limit of device info[1] (the caller's default device), else of the cpu.
  Allocator& a = backend(info.Length() > 1 && !info[1].IsUndefined() ? info[1].As<Napi::Number>().Int32Value() : 0).allocator();
  double prev = static_cast<double>(a.limit());
  double v = info[0].As<Napi::Number>().DoubleValue();
  if (!(v >= 0)) throw std::runtime_error("[setMemoryLimit] the limit must be a non-negative number of bytes");
  a.set_limit(v >= 1.8e19 ? SIZE_MAX : static_cast<size_t>(v));
  return Napi::Number::New(info.Env(), prev);
}

Napi::Value NumThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), cpu::num_threads());
}

// profileStart(): times every instruction this environment runs until profileStop().
Napi::Value ProfileStart(const Napi::CallbackInfo& info) {
  state(info.Env()).profile = std::make_shared<ProfileLog>();
  return info.Env().Undefined();
}

// profileStop() -> Float64Array of (opcode, nanoseconds) pairs, one per instruction run since
// profileStart(), each run's block headed by (-1, its instruction count) (programs still running
// on a worker add theirs to the closed log, unseen).
Napi::Value ProfileStop(const Napi::CallbackInfo& info) {
  std::shared_ptr<ProfileLog> log = std::move(state(info.Env()).profile);
  state(info.Env()).profile.reset();
  std::vector<std::pair<int32_t, int64_t>> entries;
  if (log) {
    std::lock_guard<std::mutex> lock(log->mutex);
    entries.swap(log->entries);
  }
  Napi::Float64Array out = Napi::Float64Array::New(info.Env(), 2 * entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    out[2 * i] = entries[i].first;
    out[2 * i + 1] = static_cast<double>(entries[i].second);
  }
  return out;
}

// supports(device, opcode) -> whether that device's backend runs the op (the fusion pass asks
// it for `fused`: the gpu has fused kernels only where NVRTC can be opened).
Napi::Value Supports(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const int32_t op = info[1].As<Napi::Number>().Int32Value();
    if (op < 0 || op >= static_cast<int32_t>(Op::Count)) throw std::runtime_error("supports: unknown opcode " + std::to_string(op));
    return Napi::Boolean::New(info.Env(), backend(info[0].As<Napi::Number>().Int32Value()).supports(static_cast<Op>(op)));
  });
}

Napi::Value CpuIsa(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), cpu::isa_name(cpu::cpu_isa()));
}

Napi::Value Bf16Path(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), cpu::bf16_path_name(cpu::bf16_path()));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData<EnvState, end_env>(new EnvState());
  exports.Set("fromData", Napi::Function::New(env, Guard<FromData>));
  exports.Set("read", Napi::Function::New(env, Guard<Read>));
  exports.Set("free", Napi::Function::New(env, Guard<Free>));
  exports.Set("track", Napi::Function::New(env, Guard<Track>));
  exports.Set("run", Napi::Function::New(env, Guard<Run>));
  exports.Set("runAsync", Napi::Function::New(env, Guard<RunAsync>));
  exports.Set("keepBody", Napi::Function::New(env, Guard<KeepBody>));
  exports.Set("runBody", Napi::Function::New(env, Guard<RunBody>));
  exports.Set("runBodyAsync", Napi::Function::New(env, Guard<RunBodyAsync>));
  exports.Set("releaseBody", Napi::Function::New(env, Guard<ReleaseBody>));
  exports.Set("devices", Napi::Function::New(env, Guard<Devices>));
  exports.Set("opTable", Napi::Function::New(env, Guard<OpTable>));
  exports.Set("opKinds", Napi::Function::New(env, Guard<OpKinds>));
  exports.Set("describe", Napi::Function::New(env, Guard<Describe>));
  exports.Set("memoryStats", Napi::Function::New(env, Guard<MemoryStats>));
  exports.Set("replayStats", Napi::Function::New(env, Guard<ReplayStatsFn>));
  exports.Set("counters", Napi::Function::New(env, Guard<Counters>));
  exports.Set("resetPeakMemory", Napi::Function::New(env, Guard<ResetPeak>));
  exports.Set("clearCache", Napi::Function::New(env, Guard<ClearCache>));
  exports.Set("setMemoryLimit", Napi::Function::New(env, Guard<SetMemoryLimit>));
  exports.Set("numThreads", Napi::Function::New(env, Guard<NumThreads>));
  exports.Set("cpuIsa", Napi::Function::New(env, Guard<CpuIsa>));
  exports.Set("bf16Path", Napi::Function::New(env, Guard<Bf16Path>));
  exports.Set("supports", Napi::Function::New(env, Guard<Supports>));
  exports.Set("profileStart", Napi::Function::New(env, Guard<ProfileStart>));
  exports.Set("profileStop", Napi::Function::New(env, Guard<ProfileStop>));
  return exports;
}

}  // namespace
}  // namespace tessera

static Napi::Object InitTessera(Napi::Env env, Napi::Object exports) { return tessera::Init(env, exports); }
NODE_API_MODULE(tessera, InitTessera)
