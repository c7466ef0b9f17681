// @file Compiles the reduction kernels (reduce_simd.inc) for the portable baseline, AVX2 and
// AVX-512 through `#pragma GCC target` regions (never global -m flags: the addon built on one
// machine runs on another) and dispatches on cpu_isa() at run time.
#include "reduce_simd.h"

#include <cstdint>
#include <memory>

#include "isa.h"

#if defined(__x86_64__)
// GCC 12's AVX-512 headers trip its own uninitialized-use warnings (their _mm512_undefined_*).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#endif

namespace tessera::cpu::rsimd {

#define NB 16
namespace generic {
#include "reduce_simd.inc"
}  // namespace generic

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define TESSERA_RSIMD_X86 1
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#undef NB
#define NB 32
namespace avx2 {
#include "reduce_simd.inc"
}  // namespace avx2
#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,prefer-vector-width=512")
#undef NB
#define NB 64
namespace avx512 {
#include "reduce_simd.inc"
}  // namespace avx512
#pragma GCC pop_options
#endif
#undef NB

#if TESSERA_RSIMD_X86
#define TESSERA_RSIMD_DISPATCH(fn, ...)                              \
  switch (cpu_isa()) {                                               \
    case Isa::Avx512: return avx512::fn(__VA_ARGS__);                \
    case Isa::Avx2: return avx2::fn(__VA_ARGS__);                    \
    default: return generic::fn(__VA_ARGS__);                        \
  }
#else
#define TESSERA_RSIMD_DISPATCH(fn, ...) return generic::fn(__VA_ARGS__);
#endif

double run(Kind k, const float* p, int64_t n) { TESSERA_RSIMD_DISPATCH(run_f32, k, p, n) }
double run(Kind k, const double* p, int64_t n) { TESSERA_RSIMD_DISPATCH(run_f64, k, p, n) }
void cols(Kind k, const float* p, int64_t rows, int64_t c, int64_t ld, double* out) {
  TESSERA_RSIMD_DISPATCH(cols_f32, k, p, rows, c, ld, out)
}
void cols(Kind k, const double* p, int64_t rows, int64_t c, int64_t ld, double* out) {
  TESSERA_RSIMD_DISPATCH(cols_f64, k, p, rows, c, ld, out)
}
int64_t arg(bool is_max, const float* p, int64_t n) { TESSERA_RSIMD_DISPATCH(arg_f32, is_max, p, n) }
int64_t arg(bool is_max, const double* p, int64_t n) { TESSERA_RSIMD_DISPATCH(arg_f64, is_max, p, n) }

double combine_tree(Kind k, const double* v, int64_t n) {
  if (n == 1) return v[0];
  int64_t h = (n + 1) / 2;
  double a = combine_tree(k, v, h), b = combine_tree(k, v + h, n - h);
  switch (k) {
    case Kind::Sum: return a + b;
    case Kind::Prod: return a * b;
    case Kind::Max: return (b > a) || (b != b) ? b : a;
    default: return (b < a) || (b != b) ? b : a;
  }
}

}  // namespace tessera::cpu::rsimd
