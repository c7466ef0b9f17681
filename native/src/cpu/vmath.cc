// @file AVX2 float32 exp, tanh and sigmoid. exp is fast_simd.h's: Cody-Waite range reduction
// (x = n ln2 + r) and a degree-6 polynomial for e^r on [-ln2/2, ln2/2] (Cephes' coefficients,
// ~1 ulp), scaling by 2^n in two steps so that subnormal results and overflow to inf come out
// right. tanh uses an odd polynomial below |x| = 0.625 and 1 - 2 / (e^{2|x|} + 1) above; NaN
// propagates throughout.
#include "vmath.h"

#include "fast_simd.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace tessera::cpu {

#if defined(__x86_64__)
namespace {

bool has_avx2() {
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return ok;
}

// The exp of fast_simd.h's 8-lane type (one implementation for every vectorized exp).
__attribute__((target("avx2,fma"))) inline __m256 exp8(__m256 x) { return fastv::vexp(fastv::F256{x}).v; }

__attribute__((target("avx2,fma"))) inline __m256 tanh8(__m256 x) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256 ax = _mm256_andnot_ps(sign, x);
  // |x| > 0.625: 1 - 2 / (e^{2|x|} + 1), with x's sign.
  const __m256 e = exp8(_mm256_add_ps(ax, ax));
  const __m256 one = _mm256_set1_ps(1.0f);
  __m256 big = _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, one)));
  big = _mm256_or_ps(big, _mm256_and_ps(x, sign));
  // |x| <= 0.625: x + x^3 P(x^2).
  const __m256 z = _mm256_mul_ps(x, x);
  __m256 p = _mm256_set1_ps(-5.70498872745e-3f);
  p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(2.06390887954e-2f));
  p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-5.37397155531e-2f));
  p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(1.33314422036e-1f));
  p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-3.33332819422e-1f));
  const __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(p, z), x, x);
  return _mm256_blendv_ps(small, big, _mm256_cmp_ps(ax, _mm256_set1_ps(0.625f), _CMP_GT_OQ));
}

// With e = exp(-|x|) (never overflows): 1 / (1 + e) for x >= 0, e / (1 + e) below.
__attribute__((target("avx2,fma"))) inline __m256 sigmoid8(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 e = exp8(_mm256_or_ps(x, _mm256_set1_ps(-0.0f)));
  const __m256 r = _mm256_div_ps(one, _mm256_add_ps(one, e));
  return _mm256_blendv_ps(_mm256_mul_ps(e, r), r, _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GE_OQ));
}

// Applies f to full vectors, then to the tail through a padded vector.
template <class F>
__attribute__((target("avx2,fma"))) void apply(const float* x, float* y, int64_t n, F f) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, f(_mm256_loadu_ps(x + i)));
  if (i < n) {
    alignas(32) float buf[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t k = i; k < n; ++k) buf[k - i] = x[k];
    _mm256_store_ps(buf, f(_mm256_load_ps(buf)));
    for (int64_t k = i; k < n; ++k) y[k] = buf[k - i];
  }
}

}  // namespace

bool vexp_f32(const float* x, float* y, int64_t n) {
  if (!has_avx2()) return false;
  apply(x, y, n, [](__m256 v) __attribute__((target("avx2,fma"))) { return exp8(v); });
  return true;
}
bool vtanh_f32(const float* x, float* y, int64_t n) {
  if (!has_avx2()) return false;
  apply(x, y, n, [](__m256 v) __attribute__((target("avx2,fma"))) { return tanh8(v); });
  return true;
}
bool vsigmoid_f32(const float* x, float* y, int64_t n) {
  if (!has_avx2()) return false;
  apply(x, y, n, [](__m256 v) __attribute__((target("avx2,fma"))) { return sigmoid8(v); });
  return true;
}

#else
bool vexp_f32(const float*, float*, int64_t) { return false; }
bool vtanh_f32(const float*, float*, int64_t) { return false; }
bool vsigmoid_f32(const float*, float*, int64_t) { return false; }
#endif

}  // namespace tessera::cpu
