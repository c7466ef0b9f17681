// @file AVX2 float32 exp, tanh and sigmoid. exp uses Cody-Waite range reduction (x = n ln2 + r)
// and a degree-6 polynomial for e^r on [-ln2/2, ln2/2] (Cephes' coefficients, ~1 ulp), scaling by
// 2^n in two steps so that subnormal results and overflow to inf come out right. tanh uses an odd
// polynomial below |x| = 0.625 and 1 - 2 / (e^{2|x|} + 1) above; NaN propagates throughout.
#include "vmath.h"

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

__attribute__((target("avx2,fma"))) inline __m256 pow2i(__m256i n) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n, _mm256_set1_epi32(127)), 23));
}

__attribute__((target("avx2,fma"))) inline __m256 exp8(__m256 x) {
  const __m256 xc = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-104.0f)), _mm256_set1_ps(89.0f));
  const __m256 fn = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  // r = x - n ln2, with ln2 split in two so the product is exact.
  __m256 r = _mm256_fnmadd_ps(fn, _mm256_set1_ps(0.693359375f), xc);
  r = _mm256_fnmadd_ps(fn, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  // 2^n as 2^(n/2) * 2^(n - n/2): both factors stay normal for n in [-150, 129].
  const __m256i n = _mm256_cvtps_epi32(fn);
  const __m256i n1 = _mm256_srai_epi32(n, 1);
  const __m256i n2 = _mm256_sub_epi32(n, n1);
  const __m256 y = _mm256_mul_ps(_mm256_mul_ps(p, pow2i(n1)), pow2i(n2));
  return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));  // nan in, nan out
}

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
