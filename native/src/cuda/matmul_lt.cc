// @file Products through cuBLASLt (opened at run time, like cuBLAS in matmul.cc): D = A @ B, and
// with an epilogue D = A @ B + C with C another array (a residual added to a product), or + a
// bias vector broadcast over the rows, inside the product's kernel (the fusion pass folds such
// adds into the product on the gpu: packages/core/src/eval/epilogue.ts). With its plan cached a
// call costs the host 9-13 us against cublasGemmStridedBatchedEx's 14-18 at TF32: on an H200
// (2026-12-02) a TF32 1024^3 evaluation took 18.7 us of host time against 32.9, and the compiled
// training steps ran 5-7% faster (A/B in one call), so matmul.cc sends every product here first. cuBLASLt's first choice of algorithm
// is used, as cuBLAS's is for plain products. (Timing its first eight candidates per shape and
// keeping the fastest, as autotuners do, made the training steps slower on an H200, 2026-12-02:
// the candidates fastest alone did worse beside the graph's other branches.)
// The plan of a shape (descriptors, layouts, the algorithm) is cached, so a call costs a lookup;
// and a call repeated with the same plan and pointers is launched from a graph recorded from an
// earlier one (below: 6.6 us of host time per TF32 1024^3 evaluation instead of 13.5-18).
#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "kernels.h"

namespace tessera::cuda {
namespace {

// From cublasLt.h / library_types.h (values fixed by NVIDIA's ABI).
using Handle = void*;
using Desc = void*;
using Layout = void*;
using Pref = void*;
struct Algo {
  uint64_t data[8];
};
struct Heuristic {
  Algo algo;
  size_t workspace;
  int state;
  float waves;
  int reserved[4];
};
constexpr int kDescTransA = 3, kDescTransB = 4, kDescEpilogue = 7, kDescBiasPointer = 8;
constexpr int kLayoutBatchCount = 5, kLayoutBatchStride = 6;
constexpr int kPrefWorkspace = 1, kPrefReductionMask = 3, kPrefAlignA = 5;  // B, C, D: 6, 7, 8
constexpr uint32_t kEpilogueDefault = 1, kEpilogueBias = 4;
constexpr uint32_t kReduceComputeType = 2, kReduceAll = 7;
constexpr int kR32F = 0, kR64F = 1, kR16F = 2, kR16BF = 14;
constexpr int kCompute32F = 68, kCompute32FFastTF32 = 77, kCompute64F = 70;

struct Lt {
  int (*create)(Handle*) = nullptr;
  int (*desc_create)(Desc*, int, int) = nullptr;
  int (*desc_set)(Desc, int, const void*, size_t) = nullptr;
  int (*layout_create)(Layout*, int, uint64_t, uint64_t, int64_t) = nullptr;
  int (*layout_set)(Layout, int, const void*, size_t) = nullptr;
  int (*pref_create)(Pref*) = nullptr;
  int (*pref_set)(Pref, int, const void*, size_t) = nullptr;
  int (*pref_destroy)(Pref) = nullptr;
  int (*heuristic)(Handle, Desc, Layout, Layout, Layout, Layout, Pref, int, Heuristic*, int*) = nullptr;
  int (*matmul)(Handle, Desc, const void*, const void*, Layout, const void*, Layout, const void*, const void*, Layout, void*, Layout,
                const Algo*, void*, size_t, cudaStream_t) = nullptr;
  Handle handle = nullptr;
  bool ok = false;
};

Lt& lt() {
  static Lt lib;
  static std::once_flag once;
  std::call_once(once, [] {
    // TESSERA_CUBLASLT=0: epilogues as adds after a cuBLAS product (for comparison).
    if (const char* v = std::getenv("TESSERA_CUBLASLT"); v && std::string(v) == "0") return;
    void* so = nullptr;
    for (const char* name : {"libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so"})
      if (!so) so = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (!so) return;  // matmul() then calls cuBLAS, which reports what is missing
    auto sym = [&](auto& f, const char* name) { f = reinterpret_cast<std::remove_reference_t<decltype(f)>>(dlsym(so, name)); return f != nullptr; };
    const bool all = sym(lib.create, "cublasLtCreate") && sym(lib.desc_create, "cublasLtMatmulDescCreate") &&
                     sym(lib.desc_set, "cublasLtMatmulDescSetAttribute") && sym(lib.layout_create, "cublasLtMatrixLayoutCreate") &&
                     sym(lib.layout_set, "cublasLtMatrixLayoutSetAttribute") && sym(lib.pref_create, "cublasLtMatmulPreferenceCreate") &&
                     sym(lib.pref_set, "cublasLtMatmulPreferenceSetAttribute") && sym(lib.pref_destroy, "cublasLtMatmulPreferenceDestroy") &&
                     sym(lib.heuristic, "cublasLtMatmulAlgoGetHeuristic") && sym(lib.matmul, "cublasLtMatmul");
    lib.ok = all && lib.create(&lib.handle) == 0;
  });
  return lib;
}

// FNV-1a over the 64-bit words of a key with no padding (compared with memcmp).
template <class K>
struct WordHash {
  static_assert(sizeof(K) % 8 == 0, "keys are hashed as words");
  size_t operator()(const K& k) const {
    const auto* p = reinterpret_cast<const uint64_t*>(&k);
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < sizeof(K) / 8; ++i) h = (h ^ p[i]) * 1099511628211ull;
    return h;
  }
};

// What tells one plan from another: types, ops, sizes, strides, epilogue and pointer alignments.
struct Key {
  int32_t type, compute, op_a, op_b, epilogue, align[4], unused;
  int64_t m, n, k, lda, ldb, sa, sb, batch;
  bool operator==(const Key& o) const { return std::memcmp(this, &o, sizeof(Key)) == 0; }
};

struct Plan {
  Desc desc = nullptr;
  Layout a = nullptr, b = nullptr, d = nullptr;
  Algo algo{};
  bool ok = false;
};

constexpr size_t kMaxPlans = 4096;
std::mutex plans_mutex;
std::unordered_map<Key, Plan, WordHash<Key>> plans;

uint32_t alignment(const void* p) {
  uint32_t a = 256;
  while (a > 1 && reinterpret_cast<uintptr_t>(p) % a) a >>= 1;
  return a;
}

// A layout of `rows` x `cols` column-major with leading dimension ld and a strided batch.
Layout layout(Lt& lib, int type, int64_t rows, int64_t cols, int64_t ld, int64_t batch, int64_t stride) {
  Layout l = nullptr;
  if (lib.layout_create(&l, type, uint64_t(rows), uint64_t(cols), ld)) return nullptr;
  const int32_t count = static_cast<int32_t>(batch);
  lib.layout_set(l, kLayoutBatchCount, &count, sizeof count);
  lib.layout_set(l, kLayoutBatchStride, &stride, sizeof stride);
  return l;
}

// The plan for `key`, made on first use (null when cuBLASLt offers no algorithm for it: the caller
// then adds after a cuBLAS product).
Plan* plan_for(Lt& lib, const Key& key, size_t workspace) {
  std::lock_guard<std::mutex> lock(plans_mutex);
  auto it = plans.find(key);
  if (it != plans.end()) return it->second.ok ? &it->second : nullptr;
  // Plans are kept for the process's life: past kMaxPlans shapes, new ones go to cuBLAS (which
  // plans each call itself), so a workload of ever-new shapes does not grow this without bound.
  if (plans.size() >= kMaxPlans) return nullptr;
  Plan& p = plans[key];
  const int scale = key.type == kR64F ? kR64F : kR32F;
  if (lib.desc_create(&p.desc, key.compute, scale)) return nullptr;
  lib.desc_set(p.desc, kDescTransA, &key.op_a, sizeof key.op_a);
  lib.desc_set(p.desc, kDescTransB, &key.op_b, sizeof key.op_b);
  const uint32_t epilogue = static_cast<uint32_t>(key.epilogue);
  lib.desc_set(p.desc, kDescEpilogue, &epilogue, sizeof epilogue);
  // Column-major D [N, M] = op(our B) [N, K] @ op(our A) [K, M] (see matmul.cc).
  p.a = layout(lib, key.type, key.op_a ? key.k : key.n, key.op_a ? key.n : key.k, key.lda, key.batch, key.sa);
  p.b = layout(lib, key.type, key.op_b ? key.m : key.k, key.op_b ? key.k : key.m, key.ldb, key.batch, key.sb);
  p.d = layout(lib, key.type, key.n, key.m, key.n, key.batch, key.m * key.n);
  if (!p.a || !p.b || !p.d) return nullptr;
  Pref pref = nullptr;
  if (lib.pref_create(&pref)) return nullptr;
  const uint64_t ws = workspace;
  lib.pref_set(pref, kPrefWorkspace, &ws, sizeof ws);
  // Half types: split-K partial sums are added in float32, never in the half type, as with cuBLAS.
  const uint32_t mask = key.type == kR16F || key.type == kR16BF ? kReduceComputeType : kReduceAll;
  lib.pref_set(pref, kPrefReductionMask, &mask, sizeof mask);
  for (int i = 0; i < 4; ++i) lib.pref_set(pref, kPrefAlignA + i, &key.align[i], sizeof key.align[i]);
  Heuristic first{};
  int count = 0;
  p.ok = lib.heuristic(lib.handle, p.desc, p.a, p.b, p.d, p.d, pref, 1, &first, &count) == 0 && count == 1;
  lib.pref_destroy(pref);
  p.algo = first.algo;
  return p.ok ? &p : nullptr;
}

// Replaying a product's launch. A cuBLASLt call costs the host 9-13 us (more than a TF32 1024^3
// product takes on an H200), nearly all of it spent preparing the launch of the same kernel with the
// same arguments whenever plan and pointers repeat, as they do from step to step of a loop once the
// allocator hands out the same blocks. So the second call of a (plan, pointers, stream) is recorded
// as a CUDA graph, and later calls launch that graph (2-3 us). The graph holds what the call would
// launch (the kernel, any split-K reduce, alpha and beta), so a replay computes what the call would;
// a replay writes only D and the stream's workspace, as the call does. The call is recorded on a
// stream of its own, which nothing else uses (the allocator may queue on the backend's stream from
// another thread), and the graph is launched on the backend's. Not used while a compiled call is
// recorded (its stream is being captured already). TESSERA_PRODUCT_GRAPHS=0 turns it off.
struct Launch {
  const Plan* plan;
  const void *a, *b, *c, *d, *bias, *ws;
  cudaStream_t stream;
  bool operator==(const Launch& o) const { return std::memcmp(this, &o, sizeof(Launch)) == 0; }
};
struct Replay {
  int calls = 0;  // counted up to 3 (recorded at 2; one whose recording failed stays at 3)
  uint64_t last_used = 0;
  cudaGraphExec_t exec = nullptr;
};
// Past this many keys, the least recently used quarter is forgotten (a loop's products number in
// the tens to hundreds; calls with new pointers every time never get past one sighting).
constexpr size_t kMaxLaunches = 1024;
// Never destroyed: graph executables must not be freed after the driver has shut down at exit.
auto& launches = *new std::unordered_map<Launch, Replay, WordHash<Launch>>();
uint64_t launch_clock = 0;
std::atomic<int64_t> n_recorded{0}, n_replayed{0};

bool replays_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("TESSERA_PRODUCT_GRAPHS");
    return !(v && std::string(v) == "0");
  }();
  return on;
}

void forget_launches() {
  std::vector<uint64_t> ages;
  ages.reserve(launches.size());
  for (const auto& [key, r] : launches) ages.push_back(r.last_used);
  auto quarter = ages.begin() + ages.size() / 4;
  std::nth_element(ages.begin(), quarter, ages.end());
  const uint64_t cut = *quarter;
  for (auto it = launches.begin(); it != launches.end();) {
    if (it->second.last_used > cut) {
      ++it;
      continue;
    }
    // (A graph executable still running when destroyed is freed by the driver when it completes.)
    if (it->second.exec) cudaGraphExecDestroy(it->second.exec);
    it = launches.erase(it);
  }
}

// Records `call(stream)` (a cuBLASLt call) on a private stream as a graph and launches it on
// `stream`; false when that failed (the caller then calls cuBLASLt itself).
template <typename Call>
bool record_and_launch(cudaStream_t stream, Replay& r, Call call) {
  static cudaStream_t own = [] {
    cudaStream_t s = nullptr;
    if (cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) != cudaSuccess) cudaGetLastError(), s = nullptr;
    return s;
  }();
  if (!own || cudaStreamBeginCapture(own, cudaStreamCaptureModeThreadLocal) != cudaSuccess) return cudaGetLastError(), false;
  const bool called = call(own);
  cudaGraph_t graph = nullptr;
  const cudaError_t ended = cudaStreamEndCapture(own, &graph);
  cudaGraphExec_t exec = nullptr;
  const bool made = called && ended == cudaSuccess && graph && cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess;
  if (graph) cudaGraphDestroy(graph);
  if (!made || cudaGraphLaunch(exec, stream) != cudaSuccess) {
    cudaGetLastError();
    if (exec) cudaGraphExecDestroy(exec);
    return false;
  }
  r.exec = exec;
  ++n_recorded;
  return true;
}

}  // namespace

std::vector<std::pair<std::string, double>> lt_counters() {
  return {{"productGraphsRecorded", double(n_recorded.load())}, {"productGraphsReplayed", double(n_replayed.load())}};
}

bool lt_matmul(const Context& c, const LtProduct& q) {
  Lt& lib = lt();
  if (!lib.ok) return false;
  const int type = q.dtype == DType::F64 ? kR64F : q.dtype == DType::F16 ? kR16F : q.dtype == DType::BF16 ? kR16BF : kR32F;
  const bool half = type == kR16F || type == kR16BF;
  Key key{};
  key.type = type;
  key.compute = type == kR64F ? kCompute64F : (c.allow_tf32 && !half ? kCompute32FFastTF32 : kCompute32F);
  key.op_a = q.op_b, key.op_b = q.op_a;  // cuBLASLt's A is our B (column-major view)
  key.epilogue = static_cast<int32_t>(q.bias ? kEpilogueBias : kEpilogueDefault);
  key.align[0] = alignment(q.b), key.align[1] = alignment(q.a), key.align[2] = alignment(q.c ? q.c : q.d), key.align[3] = alignment(q.d);
  key.m = q.m, key.n = q.n, key.k = q.k, key.lda = q.ldb, key.ldb = q.lda, key.sa = q.sb, key.sb = q.sa, key.batch = q.batch;
  size_t ws_bytes = 0;
  void* ws = workspace_for(c.stream, ws_bytes);
  Plan* p = plan_for(lib, key, ws_bytes);
  if (!p) return false;
  const double one_d = 1, zero_d = 0;
  const float one_f = 1, zero_f = 0;
  const void* one = type == kR64F ? static_cast<const void*>(&one_d) : &one_f;
  const void* beta = q.c ? one : type == kR64F ? static_cast<const void*>(&zero_d) : &zero_f;
  auto call = [&](cudaStream_t stream) {
    if (q.bias) lib.desc_set(p->desc, kDescBiasPointer, &q.bias, sizeof q.bias);
    return lib.matmul(lib.handle, p->desc, one, q.b, p->a, q.a, p->b, beta, q.c ? q.c : q.d, p->d, q.d, p->d, &p->algo, ws, ws_bytes,
                      stream) == 0;
  };
  if (c.patches || !replays_enabled()) return call(c.stream);  // (patches: a compiled call is being recorded)
  const Launch launch{p, q.a, q.b, q.c, q.d, q.bias, ws, c.stream};
  auto it = launches.find(launch);
  if (it == launches.end()) {
    if (launches.size() >= kMaxLaunches) forget_launches();
    it = launches.emplace(launch, Replay{}).first;
  }
  Replay& r = it->second;
  r.last_used = ++launch_clock;
  if (r.exec) {
    if (cudaGraphLaunch(r.exec, c.stream) == cudaSuccess) return ++n_replayed, true;
    cudaGetLastError();
    cudaGraphExecDestroy(r.exec);  // (not expected: the call below reports what is wrong)
    r.exec = nullptr;
    r.calls = 0;
  }
  if (r.calls < 3 && ++r.calls == 2 && record_and_launch(c.stream, r, call)) return true;
  return call(c.stream);
}

}  // namespace tessera::cuda
