// @file The vector types the fused kernels' row loops (fast_rows.inc) are written over: AVX-512
// (16 floats) and AVX2 (8 floats), each usable only inside a function compiled for its target,
// and a one-lane scalar type for the portable path and for float64. The exp is vmath.cc's
// (Cody-Waite reduction, degree-6 polynomial, 2^n applied in two steps), widened to AVX-512.
#pragma once
#include <cmath>
#include <cstdint>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define TESSERA_FAST_X86 1
// GCC 12's AVX-512 headers trip its own uninitialized-use warnings (their _mm512_undefined_*).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#endif

namespace tessera::cpu::fastv {

template <class E>
struct Scalar {
  using T = E;
  static constexpr int W = 1;
  E v;
  static Scalar load(const E* p) { return {*p}; }
  static Scalar loadn(const E* p, int n, E fill) { return {n > 0 ? *p : fill}; }
  static Scalar set1(E x) { return {x}; }
  void store(E* p) const { *p = v; }
  void storen(E* p, int n) const {
    if (n > 0) *p = v;
  }
};
template <class E> inline Scalar<E> operator+(Scalar<E> a, Scalar<E> b) { return {a.v + b.v}; }
template <class E> inline Scalar<E> operator-(Scalar<E> a, Scalar<E> b) { return {a.v - b.v}; }
template <class E> inline Scalar<E> operator*(Scalar<E> a, Scalar<E> b) { return {a.v * b.v}; }
template <class E> inline Scalar<E> vmax(Scalar<E> a, Scalar<E> b) { return {a.v > b.v ? a.v : b.v}; }
template <class E> inline Scalar<E> vexp(Scalar<E> a) { return {std::exp(a.v)}; }
template <class E> inline E hsum(Scalar<E> a) { return a.v; }
template <class E> inline E hmax(Scalar<E> a) { return a.v; }

#if TESSERA_FAST_X86
#define TESSERA_T512 __attribute__((target("avx512f,avx512dq,avx2,fma"), always_inline)) inline
#define TESSERA_T256 __attribute__((target("avx2,fma"), always_inline)) inline

struct F512 {
  using T = float;
  static constexpr int W = 16;
  __m512 v;
  TESSERA_T512 static F512 load(const float* p) { return {_mm512_loadu_ps(p)}; }
  TESSERA_T512 static F512 loadn(const float* p, int n, float fill) {
    return {_mm512_mask_loadu_ps(_mm512_set1_ps(fill), static_cast<__mmask16>((1u << n) - 1), p)};
  }
  TESSERA_T512 static F512 set1(float x) { return {_mm512_set1_ps(x)}; }
  TESSERA_T512 void store(float* p) const { _mm512_storeu_ps(p, v); }
  TESSERA_T512 void storen(float* p, int n) const { _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << n) - 1), v); }
};
TESSERA_T512 F512 operator+(F512 a, F512 b) { return {_mm512_add_ps(a.v, b.v)}; }
TESSERA_T512 F512 operator-(F512 a, F512 b) { return {_mm512_sub_ps(a.v, b.v)}; }
TESSERA_T512 F512 operator*(F512 a, F512 b) { return {_mm512_mul_ps(a.v, b.v)}; }
TESSERA_T512 F512 vmax(F512 a, F512 b) { return {_mm512_max_ps(a.v, b.v)}; }
TESSERA_T512 float hsum(F512 a) { return _mm512_reduce_add_ps(a.v); }
TESSERA_T512 float hmax(F512 a) { return _mm512_reduce_max_ps(a.v); }
TESSERA_T512 F512 vexp(F512 a) {
  const __m512 x = a.v;
  // Clamped with x as the second operand, which min and max return when it is NaN: NaN in, NaN
  // out, carried through every step below.
  const __m512 xc = _mm512_min_ps(_mm512_set1_ps(89.0f), _mm512_max_ps(_mm512_set1_ps(-104.0f), x));
  const __m512 fn = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(1.44269504088896341f)),
                                         _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(fn, _mm512_set1_ps(0.693359375f), xc);
  r = _mm512_fnmadd_ps(fn, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  // p * 2^n rounded once, by one vscalefps: the same bits as the 8-lane form's two exact-then-
  // rounded products by 2^(n/2) (checked over all 2^32 float32 inputs).
  return {_mm512_scalef_ps(p, fn)};
}

struct F256 {
  using T = float;
  static constexpr int W = 8;
  __m256 v;
  TESSERA_T256 static __m256i mask(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  TESSERA_T256 static F256 load(const float* p) { return {_mm256_loadu_ps(p)}; }
  TESSERA_T256 static F256 loadn(const float* p, int n, float fill) {
    const __m256i m = mask(n);
    return {_mm256_blendv_ps(_mm256_set1_ps(fill), _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m))};
  }
  TESSERA_T256 static F256 set1(float x) { return {_mm256_set1_ps(x)}; }
  TESSERA_T256 void store(float* p) const { _mm256_storeu_ps(p, v); }
  TESSERA_T256 void storen(float* p, int n) const { _mm256_maskstore_ps(p, mask(n), v); }
};
TESSERA_T256 F256 operator+(F256 a, F256 b) { return {_mm256_add_ps(a.v, b.v)}; }
TESSERA_T256 F256 operator-(F256 a, F256 b) { return {_mm256_sub_ps(a.v, b.v)}; }
TESSERA_T256 F256 operator*(F256 a, F256 b) { return {_mm256_mul_ps(a.v, b.v)}; }
TESSERA_T256 F256 vmax(F256 a, F256 b) { return {_mm256_max_ps(a.v, b.v)}; }
TESSERA_T256 float hsum(F256 a) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(a.v), _mm256_extractf128_ps(a.v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
TESSERA_T256 float hmax(F256 a) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(a.v), _mm256_extractf128_ps(a.v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
TESSERA_T256 __m256 pow2i(__m256i n) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n, _mm256_set1_epi32(127)), 23));
}
TESSERA_T256 F256 vexp(F256 a) {
  const __m256 x = a.v;
  const __m256 xc = _mm256_min_ps(_mm256_set1_ps(89.0f), _mm256_max_ps(_mm256_set1_ps(-104.0f), x));  // as vexp(F512)
  const __m256 fn = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(fn, _mm256_set1_ps(0.693359375f), xc);
  r = _mm256_fnmadd_ps(fn, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i n = _mm256_cvtps_epi32(fn);
  const __m256i n1 = _mm256_srai_epi32(n, 1);
  const __m256i n2 = _mm256_sub_epi32(n, n1);
  // A NaN's n is 0x80000000, whose 2^n1 and 2^n2 come out finite: p carries the NaN.
  return {_mm256_mul_ps(_mm256_mul_ps(p, pow2i(n1)), pow2i(n2))};
}
#endif

}  // namespace tessera::cpu::fastv
