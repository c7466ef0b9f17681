// @file Fused elementwise chains on the gpu (layout in cpu/fused.h): each chain becomes one kernel,
// its CUDA C++ source generated here from the step list and compiled at run time by NVRTC
// (nvrtc.cc), cached by the source's hash. The source reuses the unfused kernels' own code: each
// step is ops.def's expression (stringified here) over scalar.cuh's helpers (embedded verbatim,
// `std::` mapped to a small shim, since NVRTC has no standard library), so a fused chain gives
// the bits the separate kernels of elementwise.cu give. Each step's result passes through an
// opaque register copy, so the compiler cannot contract a multiply of one step with an add of the
// next into an FMA the separate kernels would not do.
//
// Memory: one grid-stride loop over 16-byte packs of every contiguous aligned operand (outputs are
// always contiguous), then a scalar tail. A scalar broadcast is read once; any other broadcast or
// strided input is addressed per element through its merged axes. Only the layout (which inputs
// are packed, single, linear or strided) and the steps enter the source, never sizes or constants.
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "../cpu/fused.h"
#include "kernels.h"
#include "nvrtc.h"
#include "scalar.cuh"

namespace tessera::cuda {
namespace {

// scalar.cuh's text (CMake writes it as a raw string literal).
const char kScalarCuh[] =
#include "scalar_cuh.inc"
    ;

#define OP(name, str, kind)
#define UNARY(NAME, STR, OK, EXPR) struct NAME##Ok { template <class T> static constexpr bool ok = OK; };
#define PREDICATE(NAME, STR, OK, EXPR) struct NAME##Ok { template <class T> static constexpr bool ok = OK; };
#define BINARY(NAME, STR, OK, EXPR) struct NAME##Ok { template <class T> static constexpr bool ok = OK; };
#define COMPARE(NAME, STR, EXPR) struct NAME##Ok { template <class T> static constexpr bool ok = true; };
#include "../ops.def"

// An elementwise op of ops.def: its expression's text, its arity and result kind, and the
// operand types it is defined on.
struct OpText {
  const char* expr;
  int arity;
  bool bool_out;  // predicates and comparisons
  bool ok_f32, ok_f64, ok_bool;
};

const OpText* op_text(Op op) {
  switch (op) {
#define OP(name, str, kind)
#define ENTRY(NAME, EXPR, ARITY, BOOL_OUT)                                                                   \
  case Op::NAME: {                                                                                           \
    static const OpText t{#EXPR, ARITY, BOOL_OUT, NAME##Ok::ok<float>, NAME##Ok::ok<double>, NAME##Ok::ok<bool>}; \
    return &t;                                                                                               \
  }
#define UNARY(NAME, STR, OK, EXPR) ENTRY(NAME, EXPR, 1, false)
#define PREDICATE(NAME, STR, OK, EXPR) ENTRY(NAME, EXPR, 1, true)
#define BINARY(NAME, STR, OK, EXPR) ENTRY(NAME, EXPR, 2, false)
#define COMPARE(NAME, STR, EXPR) ENTRY(NAME, EXPR, 2, true)
#include "../ops.def"
#undef ENTRY
    default: return nullptr;
  }
}

// What the generated code needs around scalar.cuh: the standard traits and math it names (under
// `tx::`), forwarding to CUDA's own float and double functions (std::exp(float) is expf on the
// device under nvcc too), and the opaque barrier between steps.
const char kPrelude[] = R"tessera(
namespace tx {
template <class A, class B> constexpr bool is_same_v = false;
template <class A> constexpr bool is_same_v<A, A> = true;
template <class T> constexpr bool is_floating_point_v = is_same_v<T, float> || is_same_v<T, double> || is_same_v<T, long double>;
template <class T> constexpr bool is_integral_v = is_same_v<T, bool> || is_same_v<T, char> || is_same_v<T, signed char> ||
    is_same_v<T, unsigned char> || is_same_v<T, short> || is_same_v<T, unsigned short> || is_same_v<T, int> ||
    is_same_v<T, unsigned> || is_same_v<T, long> || is_same_v<T, unsigned long> || is_same_v<T, long long> ||
    is_same_v<T, unsigned long long>;
template <class T> constexpr bool is_signed_v = (is_integral_v<T> || is_floating_point_v<T>) && T(-1) < T(0);
template <class T> constexpr bool is_unsigned_v = is_integral_v<T> && !(T(-1) < T(0));
template <bool B, class X, class Y> struct conditional { using type = X; };
template <class X, class Y> struct conditional<false, X, Y> { using type = Y; };
template <bool B, class X, class Y> using conditional_t = typename conditional<B, X, Y>::type;
template <class T> struct make_unsigned { using type = T; };
template <> struct make_unsigned<char> { using type = unsigned char; };
template <> struct make_unsigned<signed char> { using type = unsigned char; };
template <> struct make_unsigned<short> { using type = unsigned short; };
template <> struct make_unsigned<int> { using type = unsigned; };
template <> struct make_unsigned<long> { using type = unsigned long; };
template <> struct make_unsigned<long long> { using type = unsigned long long; };
template <class T> using make_unsigned_t = typename make_unsigned<T>::type;
#define TX1(name, f32, f64)                                                 \
  __device__ __forceinline__ float name(float x) { return ::f32(x); }    \
  __device__ __forceinline__ double name(double x) { return ::f64(x); }
#define TX2(name, f32, f64)                                                          \
  __device__ __forceinline__ float name(float x, float y) { return ::f32(x, y); }   \
  __device__ __forceinline__ double name(double x, double y) { return ::f64(x, y); }
TX1(abs, fabsf, fabs) TX1(sqrt, sqrtf, sqrt) TX1(exp, expf, exp) TX1(expm1, expm1f, expm1) TX1(log, logf, log)
TX1(log1p, log1pf, log1p) TX1(log2, log2f, log2) TX1(log10, log10f, log10) TX1(sin, sinf, sin) TX1(cos, cosf, cos)
TX1(tan, tanf, tan) TX1(asin, asinf, asin) TX1(acos, acosf, acos) TX1(atan, atanf, atan) TX1(sinh, sinhf, sinh)
TX1(cosh, coshf, cosh) TX1(tanh, tanhf, tanh) TX1(asinh, asinhf, asinh) TX1(acosh, acoshf, acosh)
TX1(atanh, atanhf, atanh) TX1(erf, erff, erf) TX1(floor, floorf, floor) TX1(ceil, ceilf, ceil)
TX1(nearbyint, nearbyintf, nearbyint)
TX2(pow, powf, pow) TX2(atan2, atan2f, atan2) TX2(fmod, fmodf, fmod) TX2(copysign, copysignf, copysign)
#undef TX1
#undef TX2
__device__ __forceinline__ bool isnan(float x) { return x != x; }
__device__ __forceinline__ bool isnan(double x) { return x != x; }
__device__ __forceinline__ bool isinf(float x) { return ::fabsf(x) == __int_as_float(0x7f800000); }
__device__ __forceinline__ bool isinf(double x) { return ::fabs(x) == __longlong_as_double(0x7ff0000000000000ll); }
}  // namespace tx
namespace tessera::cuda {
template <class T> constexpr bool is_float_v = tx::is_floating_point_v<T>;
}
// A step's result xor a zero the compiler cannot see (a kernel parameter): ptxas contracts a
// plain multiply feeding an add into an FMA whatever lies between in PTX, but not across this.
__device__ __forceinline__ float keep(float v, unsigned z) {
  unsigned b = __float_as_uint(v);
  asm("xor.b32 %0, %0, %1;" : "+r"(b) : "r"(z));
  return __uint_as_float(b);
}
__device__ __forceinline__ double keep(double v, unsigned z) {
  unsigned long long b = __double_as_longlong(v);
  asm("xor.b64 %0, %0, %1;" : "+l"(b) : "l"((unsigned long long)z));
  return __longlong_as_double(b);
}
__device__ __forceinline__ bool keep(bool v, unsigned) { return v; }
template <class T, int N> struct alignas(sizeof(T) * N) Pack { T v[N]; };
struct Geo { long long nd; long long shape[8]; };
struct Str { long long v[8]; };
)tessera";

// Code for NVRTC: the standard library's names mapped to the prelude's.
std::string shimmed(std::string line) {
  for (size_t at; (at = line.find("std::")) != std::string::npos;) line.replace(at, 5, "tx::");
  return line;
}

// scalar.cuh for NVRTC: its includes dropped (the prelude stands in), std:: mapped to tx::.
const std::string& scalar_source() {
  static const std::string text = [] {
    std::string out, line;
    const std::string src(kScalarCuh);
    size_t pos = 0;
    while (pos < src.size()) {
      size_t end = src.find('\n', pos);
      if (end == std::string::npos) end = src.size();
      line = src.substr(pos, end - pos);
      pos = end + 1;
      if (line.rfind("#include", 0) == 0 || line.rfind("#pragma once", 0) == 0) continue;
      out += shimmed(line);
      out += '\n';
    }
    return out;
  }();
  return text;
}

// How the kernel reads an input: 16-byte packs (contiguous, aligned), one element (a scalar
// broadcast), by linear index (contiguous, unaligned), or through the merged strides.
enum class Mode : char { Pack = 'P', Single = 'S', Linear = 'L', Strided = 'G' };

constexpr int kMaxGeoDims = 8;

struct Layout {
  const char* T;               // "float" or "double"
  int n_in = 0;
  std::vector<bool> in_bool;   // input register kinds
  std::vector<Mode> mode;
  const std::vector<int64_t>* ints = nullptr;
  bool packed = true;          // the pack loop runs (every output 16-byte aligned)
  bool device_consts = false;  // constants read from 8-byte slots at `cb` (graph patches), not arguments
  int unroll = 1;              // packs per thread per round of that loop
  int batch = 0;               // a batch kernel's capacity in members (0: one chain); see run_batch
};

std::string reg_type(const Layout& L, bool is_bool) { return is_bool ? "bool" : L.T; }

// The kernel `tessera_fused` for one chain layout.
std::string generate(const Layout& L, const std::vector<bool>& kind_bool) {
  const std::vector<int64_t>& v = *L.ints;
  const int64_t n_steps = v[1], n_out = v[2 + 5 * n_steps];
  const int n_in = L.n_in;
  std::string s = kPrelude;
  s += scalar_source();
  // The functors of the ops the chain uses, as elementwise.cu declares them.
  s += "namespace tessera::cuda {\n";
  std::vector<bool> seen(static_cast<size_t>(Op::Count), false);
  for (int64_t k = 0; k < n_steps; ++k) {
    const int64_t op = v[2 + 5 * k];
    if (op == cpu::kFusedConst || seen[op]) continue;
    seen[op] = true;
    const OpText* t = op_text(static_cast<Op>(op));
    if (!t) continue;
    const std::string name = "Op" + std::to_string(op);
    const char* ret = t->bool_out ? "bool" : "C";
    const std::string expr = shimmed(t->expr);
    if (t->arity == 1)
      s += "struct " + name + " { template <class C> __device__ static " + ret + " f(C x) { return " + expr + "; } };\n";
    else
      s += "struct " + name + " { template <class C> __device__ static " + ret + " f(C a, C b) { return " + expr + "; } };\n";
  }
  s += "}  // namespace tessera::cuda\nusing namespace tessera::cuda;\n";

  // chain(): the steps over one element; inputs and constants in, outputs out.
  std::vector<int64_t> consts;
  for (int64_t k = 0; k < n_steps; ++k)
    if (v[2 + 5 * k] == cpu::kFusedConst) consts.push_back(k);
  auto r = [](int64_t reg) { return "r" + std::to_string(reg); };
  s += "__device__ __forceinline__ void chain(unsigned z";
  std::string sep = ", ";
  for (int i = 0; i < n_in; ++i) s += sep + reg_type(L, L.in_bool[i]) + " r" + std::to_string(i), sep = ", ";
  for (int64_t k : consts) s += sep + reg_type(L, kind_bool[n_in + k]) + " c" + std::to_string(k), sep = ", ";
  for (int64_t j = 0; j < n_out; ++j) {
    const int64_t reg = v[3 + 5 * n_steps + j];
    s += sep + reg_type(L, kind_bool[reg]) + "& y" + std::to_string(j), sep = ", ";
  }
  s += ") {\n";
  for (int64_t k = 0; k < n_steps; ++k) {
    const int64_t* st = &v[2 + 5 * k];
    const int64_t reg = n_in + k;
    const std::string type = reg_type(L, kind_bool[reg]);
    s += "  const " + type + " " + r(reg) + " = ";
    const Op op = static_cast<Op>(st[0]);
    if (st[0] == cpu::kFusedConst) s += "c" + std::to_string(k);
    else if (op == Op::Where) s += r(st[2]) + " ? " + r(st[3]) + " : " + r(st[4]);
    else if (op == Op::Cast) s += kind_bool[reg] ? r(st[2]) + " != " + std::string(L.T) + "(0)" : std::string(L.T) + "(" + r(st[2]) + ")";
    else if (op_text(op)->arity == 1) s += "keep(Op" + std::to_string(st[0]) + "::f(" + r(st[2]) + "), z)";
    else s += "keep(Op" + std::to_string(st[0]) + "::f(" + r(st[2]) + ", " + r(st[3]) + "), z)";
    s += ";\n";
  }
  for (int64_t j = 0; j < n_out; ++j) s += "  y" + std::to_string(j) + " = " + r(v[3 + 5 * n_steps + j]) + ";\n";
  s += "}\n";

  // The kernel.
  bool strided = false;
  for (Mode m : L.mode) strided |= m == Mode::Strided;
  auto in_ptr = [&](int i) { return "in" + std::to_string(i); };
  auto out_type = [&](int64_t j) { return reg_type(L, kind_bool[v[3 + 5 * n_steps + j]]); };
  if (L.batch) {
    // Each member's operands, its element count and its first block (blocks are dealt out in
    // member order; a block finds its member by binary search).
    s += "struct Member { const void* in[" + std::to_string(n_in) + "]; void* out[" + std::to_string(n_out) +
         "]; long long n, first; };\nstruct Batch { Member m[" + std::to_string(L.batch) + "]; int count; };\n";
  }
  s += "extern \"C\" __global__ void __launch_bounds__(256) tessera_fused(";
  sep.clear();
  if (L.batch) {
    s += "const __grid_constant__ Batch b", sep = ", ";
  } else {
    for (int i = 0; i < n_in; ++i) s += sep + "const " + reg_type(L, L.in_bool[i]) + "* " + in_ptr(i), sep = ", ";
    for (int64_t j = 0; j < n_out; ++j) s += sep + out_type(j) + "* out" + std::to_string(j), sep = ", ";
  }
  if (L.device_consts) s += sep + "const unsigned char* __restrict__ cb";
  else
    for (int64_t k : consts) s += sep + reg_type(L, kind_bool[n_in + k]) + " c" + std::to_string(k);
  s += L.batch ? ", unsigned z" : ", long long n, unsigned z";
  if (strided) {
    // __grid_constant__: indexed in place, not copied to each thread's stack.
    s += ", const __grid_constant__ Geo g, int small";
    for (int i = 0; i < n_in; ++i)
      if (L.mode[i] == Mode::Strided) s += ", const __grid_constant__ Str t" + std::to_string(i);
  }
  s += ") {\n";
  if (L.batch) {
    s += "  int lo = 0, hi = b.count - 1;\n"
         "  while (lo < hi) { const int mid = (lo + hi + 1) >> 1; if (b.m[mid].first <= (long long)blockIdx.x) lo = mid; else hi = mid - 1; }\n"
         "  const Member& M = b.m[lo];\n"
         "  const long long bid = blockIdx.x - M.first, nblk = (lo + 1 < b.count ? b.m[lo + 1].first : (long long)gridDim.x) - M.first;\n"
         "  const long long n = M.n;\n";
    for (int i = 0; i < n_in; ++i) {
      const std::string t = reg_type(L, L.in_bool[i]);
      s += "  const " + t + "* " + in_ptr(i) + " = static_cast<const " + t + "*>(M.in[" + std::to_string(i) + "]);\n";
    }
    for (int64_t j = 0; j < n_out; ++j)
      s += "  " + out_type(j) + "* out" + std::to_string(j) + " = static_cast<" + out_type(j) + "*>(M.out[" + std::to_string(j) + "]);\n";
  } else {
    s += "  const long long bid = blockIdx.x, nblk = gridDim.x;\n";
  }
  s += "  const long long tid = bid * blockDim.x + threadIdx.x, step = nblk * blockDim.x;\n";
  s += std::string("  constexpr int N = 16 / sizeof(") + L.T + ");\n";
  if (L.device_consts)
    for (size_t q = 0; q < consts.size(); ++q) {
      const std::string ck = "c" + std::to_string(consts[q]), at = "cb + " + std::to_string(8 * q);
      s += kind_bool[n_in + consts[q]] ? "  const bool " + ck + " = *(" + at + ") != 0;\n"
                                       : "  const " + std::string(L.T) + " " + ck + " = *reinterpret_cast<const " + L.T + "*>(" + at + ");\n";
    }
  for (int i = 0; i < n_in; ++i)
    if (L.mode[i] == Mode::Single) s += "  const " + reg_type(L, L.in_bool[i]) + " s" + std::to_string(i) + " = " + in_ptr(i) + "[0];\n";
  // Offsets of the strided inputs for element e (32-bit division when the index fits).
  std::string offsets;
  if (strided) {
    std::string decl, acc32, acc64;
    for (int i = 0; i < n_in; ++i) {
      if (L.mode[i] != Mode::Strided) continue;
      const std::string o = "o" + std::to_string(i), t = "t" + std::to_string(i);
      decl += (decl.empty() ? "long long " : ", ") + o + " = 0";
      acc32 += " " + o + " += (long long)x * " + t + ".v[d];";
      acc64 += " " + o + " += x * " + t + ".v[d];";
    }
    offsets = "      " + decl + ";\n" +
              "      if (small) { unsigned q = (unsigned)e;\n"
              "        for (int d = (int)g.nd - 1; d >= 0; --d) { const unsigned sh = (unsigned)g.shape[d], u = q / sh, x = q - u * sh; q = u;" +
              acc32 + " }\n      } else { long long q = e;\n"
              "        for (int d = (int)g.nd - 1; d >= 0; --d) { const long long sh = g.shape[d], u = q / sh, x = q - u * sh; q = u;" +
              acc64 + " }\n      }\n";
  }
  auto call = [&](bool in_pack) {
    std::string c = "      chain(z";
    std::string sp = ", ";
    for (int i = 0; i < n_in; ++i) {
      const std::string is = std::to_string(i);
      c += sp, sp = ", ";
      switch (L.mode[i]) {
        case Mode::Pack: c += in_pack ? "v" + is + "[u].v[k]" : in_ptr(i) + "[e]"; break;
        case Mode::Single: c += "s" + is; break;
        case Mode::Linear: c += in_ptr(i) + "[e]"; break;
        case Mode::Strided: c += in_ptr(i) + "[o" + is + "]"; break;
      }
    }
    for (int64_t k : consts) c += sp + "c" + std::to_string(k), sp = ", ";
    for (int64_t j = 0; j < n_out; ++j) c += sp + (in_pack ? "w" + std::to_string(j) + ".v[k]" : "out" + std::to_string(j) + "[e]"), sp = ", ";
    return c + ");\n";
  };
  if (L.packed) {
    // Each round a thread loads U packs of every packed input before computing any, so enough
    // bytes are in flight to cover the memory's latency while other warps compute.
    s += "  constexpr int U = " + std::to_string(L.unroll) + ";\n";
    s += "  const long long packs = n / N, chunk = (long long)blockDim.x * U;\n";
    s += "  for (long long b0 = bid * chunk; b0 < packs; b0 += nblk * chunk) {\n";
    for (int i = 0; i < n_in; ++i)
      if (L.mode[i] == Mode::Pack) s += "    Pack<" + reg_type(L, L.in_bool[i]) + ", N> v" + std::to_string(i) + "[U];\n";
    s += "#pragma unroll\n    for (int u = 0; u < U; ++u) {\n";
    s += "      const long long p = b0 + u * (long long)blockDim.x + threadIdx.x;\n      if (p < packs) {\n";
    for (int i = 0; i < n_in; ++i)
      if (L.mode[i] == Mode::Pack) {
        const std::string pt = "Pack<" + reg_type(L, L.in_bool[i]) + ", N>";
        s += "        v" + std::to_string(i) + "[u] = reinterpret_cast<const " + pt + "*>(" + in_ptr(i) + ")[p];\n";
      }
    s += "      }\n    }\n";
    s += "#pragma unroll\n    for (int u = 0; u < U; ++u) {\n";
    s += "      const long long p = b0 + u * (long long)blockDim.x + threadIdx.x;\n      if (p >= packs) continue;\n";
    for (int64_t j = 0; j < n_out; ++j)
      s += "      Pack<" + reg_type(L, kind_bool[v[3 + 5 * n_steps + j]]) + ", N> w" + std::to_string(j) + ";\n";
    s += "#pragma unroll\n      for (int k = 0; k < N; ++k) {\n        const long long e = p * N + k;\n        (void)e;\n";
    s += offsets + call(true) + "      }\n";
    for (int64_t j = 0; j < n_out; ++j) {
      const std::string pt = "Pack<" + reg_type(L, kind_bool[v[3 + 5 * n_steps + j]]) + ", N>";
      s += "      reinterpret_cast<" + pt + "*>(out" + std::to_string(j) + ")[p] = w" + std::to_string(j) + ";\n";
    }
    s += "    }\n  }\n";
  } else {
    s += "  const long long packs = 0;\n";
  }
  s += "  for (long long e = packs * N + tid; e < n; e += step) {\n" + offsets + call(false) + "  }\n}\n";
  return s;
}

// The kernel of a layout: looked up by the layout itself, so a launch neither regenerates nor
// hashes its source (nvrtc.cc's cache, by source, compiles each distinct source once).
cudaKernel_t kernel_for(const Layout& L, const std::vector<bool>& kind_bool, int device) {
  static std::mutex mutex;
  static std::unordered_map<std::string, cudaKernel_t> kernels;
  std::string key = std::string(L.T) + char('0' + L.unroll) + (L.packed ? 'p' : 'l') + (L.device_consts ? 'd' : 'a') +
                    std::to_string(device) + 'b' + std::to_string(L.batch) + ':';
  for (int i = 0; i < L.n_in; ++i) key += char(L.mode[i]), key += L.in_bool[i] ? 'b' : 'n';
  key.append(reinterpret_cast<const char*>(L.ints->data()), L.ints->size() * sizeof(int64_t));
  {
    std::lock_guard<std::mutex> lock(mutex);
    auto it = kernels.find(key);
    if (it != kernels.end()) return it->second;
  }
  const cudaKernel_t k = nvrtc_kernel(generate(L, kind_bool), "tessera_fused", device);
  std::lock_guard<std::mutex> lock(mutex);
  kernels.emplace(std::move(key), k);
  return k;
}

// Kernel parameter space is 4 KiB on every architecture the backend builds for.
constexpr size_t kParamBytes = 4096;

// Whether each register of chain `v` (inputs first, of kinds `in`) holds bools; throws for a step
// whose op is not defined on its operands on the gpu.
template <class T>
std::vector<bool> register_kinds(const std::vector<int64_t>& v, const ArrayDesc* const* in, int n_in) {
  const int64_t n_steps = v[1];
  const DType dt = static_cast<DType>(v[0]);
  std::vector<bool> kind_bool(n_in + n_steps);
  for (int i = 0; i < n_in; ++i) kind_bool[i] = in[i]->dtype == DType::Bool;
  for (int64_t k = 0; k < n_steps; ++k) {
    const int64_t* st = &v[2 + 5 * k];
    kind_bool[n_in + k] = st[1] == cpu::kRegBool;
    if (st[0] == cpu::kFusedConst) continue;
    const Op op = static_cast<Op>(st[0]);
    if (op == Op::Where || op == Op::Cast) continue;
    const OpText* t = op_text(op);
    const bool b_in = kind_bool[st[2]];
    if (!t || !(b_in ? t->ok_bool : (std::is_same_v<T, float> ? t->ok_f32 : t->ok_f64)))
      throw std::runtime_error("fused step " + std::to_string(k) + ": " + op_name(int32_t(op)) + " is not defined on " +
                               (b_in ? "bool" : dtype_name(dt)) + " on device gpu");
  }
  return kind_bool;
}

// What every kernel of chain `v` starts from: its number type, its inputs and their register
// kinds (kind_bool gets every register's).
template <class T>
Layout chain_layout(const std::vector<int64_t>& v, const ArrayDesc* const* in, int n_in, std::vector<bool>& kind_bool) {
  Layout L;
  L.T = std::is_same_v<T, float> ? "float" : "double";
  L.n_in = n_in;
  L.ints = &v;
  kind_bool = register_kinds<T>(v, in, n_in);
  L.in_bool.assign(kind_bool.begin(), kind_bool.begin() + n_in);
  return L;
}

// Packs per thread per round of the pack loop: 4 for a chain of one packed input and output,
// fewer as registers fill. A chain of few packs (`packs`, when known) takes fewer per thread, down
// to 1, until it has ~2 blocks per multiprocessor: with fewer blocks each thread waits through its
// packs' latencies in turn (a bias and ReLU over [256, 512] took 4.6 us in 65 blocks).
int unroll_for(const Layout& L, int64_t n_out, int64_t packs = -1, int num_sms = 0) {
  int packed_operands = static_cast<int>(n_out);
  for (Mode m : L.mode) packed_operands += m == Mode::Pack;
  int u = packed_operands <= 2 ? 4 : packed_operands <= 4 ? 2 : 1;
  while (u > 1 && packs >= 0 && packs / u < int64_t(num_sms) * 2 * kThreads) u /= 2;
  return u;
}

// The constants' arguments (values, or while recording a graph the patch slots' address `cb`),
// appended to args; returns their bytes. cnum and cbool hold the values until the launch.
template <class T>
size_t constant_args(const Context& c, const std::vector<int64_t>& v, int n_in, const std::vector<bool>& kind_bool, Scalars sc,
                     bool device_consts, const void*& cb, std::vector<T>& cnum, std::vector<char>& cbool, std::vector<void*>& args) {
  const int64_t n_steps = v[1];
  size_t bytes = 0;
  if (device_consts) args.push_back(&cb), bytes += 8;
  for (int64_t k = 0; k < n_steps; ++k) {
    const int64_t* st = &v[2 + 5 * k];
    if (st[0] != cpu::kFusedConst) continue;
    if (device_consts) {
      const bool is_bool = kind_bool[n_in + k];
      const void* slot = c.patches->add(sc.words + st[2], is_bool ? Patches::Kind::Bool
                                                          : std::is_same_v<T, float> ? Patches::Kind::F32 : Patches::Kind::F64);
      if (!cb) cb = slot;  // the chain's slots are adjacent
      continue;
    }
    const double value = sc.f(static_cast<int>(st[2]));
    if (kind_bool[n_in + k]) cbool[k] = value != 0, args.push_back(&cbool[k]);
    else cnum[k] = static_cast<T>(value), args.push_back(&cnum[k]);
    bytes += 8;
  }
  return bytes;
}

template <class T>
void run_fused(const Context& c, const Instr& instr, const Inputs& in, const Outputs& outs, Scalars sc) {
  const std::vector<int64_t>& v = instr.ints;
  const int n_in = static_cast<int>(in.size());
  const int64_t n_steps = v[1], n_out = v[2 + 5 * n_steps];
  const Shape& shape = instr.shape;
  const int nd = static_cast<int>(shape.size());
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  if (n == 0) return;

  std::vector<bool> kind_bool;
  Layout L = chain_layout<T>(v, in.data(), n_in, kind_bool);

  // Each input's strides over the output shape (0 along broadcast axes), and how it is read.
  std::vector<Shape> strides(n_in, Shape(nd, 0));
  L.mode.resize(n_in);
  for (int i = 0; i < n_in; ++i) {
    const ArrayDesc& x = *in[i];
    const int lead = nd - x.ndim();
    bool single = true, contiguous = true;
    for (int d = 0; d < x.ndim(); ++d)
      if (x.shape[d] != 1) strides[i][lead + d] = x.strides[d];
    int64_t expect = 1;
    for (int d = nd - 1; d >= 0; --d) {
      if (shape[d] != 1 && strides[i][d] != 0) single = false;
      if (shape[d] != 1 && strides[i][d] != expect) contiguous = false;
      expect *= shape[d];
    }
    L.mode[i] = single ? Mode::Single : !contiguous ? Mode::Strided : aligned16(x.bytes()) ? Mode::Pack : Mode::Linear;
  }
  for (const ArrayDesc* o : outs) L.packed &= aligned16(o->bytes());
  if (!L.packed)
    for (Mode& m : L.mode)
      if (m == Mode::Pack) m = Mode::Linear;
  L.unroll = unroll_for(L, n_out, L.packed ? n / (16 / int64_t(sizeof(T))) : -1, c.num_sms);

  // The strided inputs' geometry: size-1 axes dropped, neighbours merged where every strided
  // input steps through both as one (the linear index stays row-major over the output).
  struct Geo { long long nd; long long shape[kMaxGeoDims]; } geo{};
  struct Str { long long v[kMaxGeoDims]; };
  std::vector<int> gs;
  for (int i = 0; i < n_in; ++i)
    if (L.mode[i] == Mode::Strided) gs.push_back(i);
  std::vector<Str> str(gs.size(), Str{});
  if (!gs.empty()) {
    int g = 0;
    for (int d = 0; d < nd; ++d) {
      if (shape[d] == 1) continue;
      bool merge = g > 0;
      for (size_t q = 0; q < gs.size() && merge; ++q) merge = str[q].v[g - 1] == strides[gs[q]][d] * shape[d];
      if (merge) {
        geo.shape[g - 1] *= shape[d];
        for (size_t q = 0; q < gs.size(); ++q) str[q].v[g - 1] = strides[gs[q]][d];
        continue;
      }
      if (g == kMaxGeoDims)
        throw std::runtime_error("fused chain on device gpu: more than " + std::to_string(kMaxGeoDims) + " axes after merging (not ported yet)");
      geo.shape[g] = shape[d];
      for (size_t q = 0; q < gs.size(); ++q) str[q].v[g] = strides[gs[q]][d];
      ++g;
    }
    geo.nd = g;
  }

  // The arguments, in the kernel's parameter order (each value kept alive until the launch).
  std::vector<const void*> ptrs(n_in + n_out);
  for (int i = 0; i < n_in; ++i) ptrs[i] = in[i]->bytes();
  for (int64_t j = 0; j < n_out; ++j) ptrs[n_in + j] = outs[j]->bytes();
  std::vector<T> cnum(n_steps);
  std::vector<char> cbool(n_steps);  // bool params: one byte holding 0 or 1
  long long count = n;
  int small = uint64_t(n) < (uint64_t(1) << 32) ? 1 : 0;
  std::vector<void*> args;
  size_t bytes = 8 * (n_in + n_out) + 8;
  for (auto& p : ptrs) args.push_back(&p);
  // While recording a graph the constants live in patches (graph.cc converts them as below).
  L.device_consts = c.patches != nullptr;
  const void* cb = nullptr;
  bytes += constant_args<T>(c, v, n_in, kind_bool, sc, L.device_consts, cb, cnum, cbool, args);
  args.push_back(&count);
  unsigned zero = 0;
  args.push_back(&zero);
  if (!gs.empty()) {
    args.push_back(&geo);
    args.push_back(&small);
    for (Str& t : str) args.push_back(&t);
    bytes += sizeof(geo) + 8 + sizeof(Str) * str.size();
  }
  if (bytes > kParamBytes)
    throw std::runtime_error("fused chain on device gpu: " + std::to_string(n_in) + " inputs, " + std::to_string(n_out) +
                             " outputs and its constants exceed a kernel's parameters");

  int device = 0;
  check(cudaGetDevice(&device), "fused");
  const cudaKernel_t kernel = kernel_for(L, kind_bool, device);
  const int64_t work = L.packed ? n / (16 / int64_t(sizeof(T))) / L.unroll + 1 : n;
  check(cudaLaunchKernel(reinterpret_cast<const void*>(kernel), dim3(blocks_for(c, work)), dim3(kThreads), args.data(), 0, c.stream),
        "fused");
}

// A batch of chains (cpu/fused.h) whose operands are all contiguous and 16-byte aligned: one
// launch of a batch kernel for up to L.batch members (as many as a kernel's parameters hold), each
// member given its own run of blocks. An optimizer's update of 30 parameters is then one kernel
// instead of 30 small ones. Any other batch runs each member as a chain of its own.
template <class T>
void run_batch(const Context& c, const Instr& instr, const Inputs& in, const Outputs& outs, Scalars sc) {
  const int64_t members = cpu::fused_members(instr.ints);
  const int n_in = static_cast<int>(in.size() / members);
  const std::vector<int64_t> v(instr.ints.begin(), instr.ints.end() - 1);
  const int64_t n_steps = v[1], n_out = v[2 + 5 * n_steps];
  bool packable = n_in > 0;
  for (const ArrayDesc* x : in) packable = packable && x->is_row_contiguous() && aligned16(x->bytes());
  for (const ArrayDesc* o : outs) packable = packable && aligned16(o->bytes());
  if (!packable)
    return cpu::for_each_member(instr, in, outs, [&](const Instr& one, const Inputs& a, const Outputs& b) { run_fused<T>(c, one, a, b, sc); });

  std::vector<bool> kind_bool;
  Layout L = chain_layout<T>(v, in.data(), n_in, kind_bool);
  L.mode.assign(n_in, Mode::Pack);
  L.unroll = unroll_for(L, n_out);
  L.device_consts = c.patches != nullptr;
  std::vector<T> cnum(n_steps);
  std::vector<char> cbool(n_steps);
  const void* cb = nullptr;
  std::vector<void*> args(1);  // args[0]: the member table
  const size_t const_bytes = constant_args<T>(c, v, n_in, kind_bool, sc, L.device_consts, cb, cnum, cbool, args);
  unsigned zero = 0;
  args.push_back(&zero);
  // The table: per member its pointers, element count and first block (device side: Member), then
  // the member count; it and the other parameters fill at most a kernel's parameter space.
  const int64_t member_words = n_in + n_out + 2;
  const int64_t capacity = (int64_t(kParamBytes) - 16 - int64_t(const_bytes)) / (8 * member_words);
  if (capacity < 1)
    return cpu::for_each_member(instr, in, outs, [&](const Instr& one, const Inputs& a, const Outputs& b) { run_fused<T>(c, one, a, b, sc); });
  L.batch = static_cast<int>(std::min<int64_t>(capacity, 64));
  int device = 0;
  check(cudaGetDevice(&device), "fused");
  const cudaKernel_t kernel = kernel_for(L, kind_bool, device);
  std::vector<uint64_t> table(L.batch * member_words + 1);
  args[0] = table.data();
  constexpr int64_t N = 16 / int64_t(sizeof(T));
  for (int64_t m0 = 0; m0 < members; m0 += L.batch) {
    const int count = static_cast<int>(std::min<int64_t>(L.batch, members - m0));
    std::fill(table.begin(), table.end(), 0);
    int64_t blocks = 0;
    for (int k = 0; k < count; ++k) {
      uint64_t* w = &table[k * member_words];
      const int64_t m = m0 + k;
      for (int i = 0; i < n_in; ++i) w[i] = reinterpret_cast<uint64_t>(in[m * n_in + i]->bytes());
      for (int64_t j = 0; j < n_out; ++j) w[n_in + j] = reinterpret_cast<uint64_t>(outs[m * n_out + j]->bytes());
      const int64_t n = outs[m * n_out]->size();
      w[n_in + n_out] = static_cast<uint64_t>(n);
      w[n_in + n_out + 1] = static_cast<uint64_t>(blocks);
      blocks += blocks_for(c, n / N / L.unroll + 1);
    }
    std::memcpy(&table[L.batch * member_words], &count, sizeof(count));
    if (blocks > INT32_MAX) throw std::runtime_error("fused batch on device gpu: too many blocks for one launch");
    check(cudaLaunchKernel(reinterpret_cast<const void*>(kernel), dim3(static_cast<unsigned>(blocks)), dim3(kThreads), args.data(), 0,
                           c.stream),
          "fused");
  }
}

}  // namespace

bool fused_available() { return nvrtc_available(); }

void fused(const Context& c, const Instr& instr, const Inputs& in, const Outputs& outs, Scalars sc) {
  const bool batch = cpu::fused_members(instr.ints) > 1;
  switch (static_cast<DType>(instr.ints.at(0))) {
    case DType::F32: return batch ? run_batch<float>(c, instr, in, outs, sc) : run_fused<float>(c, instr, in, outs, sc);
    case DType::F64: return batch ? run_batch<double>(c, instr, in, outs, sc) : run_fused<double>(c, instr, in, outs, sc);
    default: throw std::runtime_error("fused chains compute in float32 or float64");
  }
}

}  // namespace tessera::cuda
