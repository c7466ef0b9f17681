// @file AVX2+FMA GEMM micro-kernels (6x16 float32, 6x8 float64), their A packers, and narrow
// products against a transposed B as dot products.
#if defined(__x86_64__)
#include <immintrin.h>

#include "gemm_kernels.h"

namespace tessera::cpu::gemm_detail {

// 6x16 float32 tile: 12 ymm accumulators, 2 B loads + 6 broadcasts per k, enough independent
// FMAs to cover the FMA latency on both ports.
__attribute__((target("avx2,fma"))) void kernel_f32_6x16_avx2(int64_t kc, const float* a,
                                                               const float* b, float* c,
                                                               int64_t ldc, bool accumulate) {
  for (int i = 0; i < 6; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + 15), _MM_HINT_T0);
  }
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
#define TG_STEP(i, r0, r1)                  \
  ai = _mm256_broadcast_ss(a + (i));        \
  r0 = _mm256_fmadd_ps(ai, b0, r0);         \
  r1 = _mm256_fmadd_ps(ai, b1, r1);
#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
    __m256 ai;
    TG_STEP(0, c00, c01) TG_STEP(1, c10, c11) TG_STEP(2, c20, c21)
    TG_STEP(3, c30, c31) TG_STEP(4, c40, c41) TG_STEP(5, c50, c51)
    a += 6;
    b += 16;
  }
#undef TG_STEP
#define TG_STORE(i, r0, r1)                                          \
  {                                                                  \
    float* p = c + (i) * ldc;                                        \
    if (accumulate) {                                                \
      r0 = _mm256_add_ps(_mm256_loadu_ps(p), r0);                    \
      r1 = _mm256_add_ps(_mm256_loadu_ps(p + 8), r1);                \
    }                                                                \
    _mm256_storeu_ps(p, r0);                                         \
    _mm256_storeu_ps(p + 8, r1);                                     \
  }
  TG_STORE(0, c00, c01) TG_STORE(1, c10, c11) TG_STORE(2, c20, c21)
  TG_STORE(3, c30, c31) TG_STORE(4, c40, c41) TG_STORE(5, c50, c51)
#undef TG_STORE
}

// 6x8 float64 tile: same shape of work as the float32 kernel, at 4 lanes per ymm.
__attribute__((target("avx2,fma"))) void kernel_f64_6x8_avx2(int64_t kc, const double* a,
                                                              const double* b, double* c,
                                                              int64_t ldc, bool accumulate) {
  for (int i = 0; i < 6; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + 7), _MM_HINT_T0);
  }
  __m256d c00 = _mm256_setzero_pd(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  __m256d c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
#define TG_STEP(i, r0, r1)                  \
  ai = _mm256_broadcast_sd(a + (i));        \
  r0 = _mm256_fmadd_pd(ai, b0, r0);         \
  r1 = _mm256_fmadd_pd(ai, b1, r1);
#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    const __m256d b0 = _mm256_load_pd(b), b1 = _mm256_load_pd(b + 4);
    __m256d ai;
    TG_STEP(0, c00, c01) TG_STEP(1, c10, c11) TG_STEP(2, c20, c21)
    TG_STEP(3, c30, c31) TG_STEP(4, c40, c41) TG_STEP(5, c50, c51)
    a += 6;
    b += 8;
  }
#undef TG_STEP
#define TG_STORE(i, r0, r1)                                          \
  {                                                                  \
    double* p = c + (i) * ldc;                                       \
    if (accumulate) {                                                \
      r0 = _mm256_add_pd(_mm256_loadu_pd(p), r0);                    \
      r1 = _mm256_add_pd(_mm256_loadu_pd(p + 4), r1);                \
    }                                                                \
    _mm256_storeu_pd(p, r0);                                         \
    _mm256_storeu_pd(p + 4, r1);                                     \
  }
  TG_STORE(0, c00, c01) TG_STORE(1, c10, c11) TG_STORE(2, c20, c21)
  TG_STORE(3, c30, c31) TG_STORE(4, c40, c41) TG_STORE(5, c50, c51)
#undef TG_STORE
}

// Row-major A (cs == 1) is the common case and the scalar gather dominates packing time, so full
// 6-row panels are transposed in registers: 8 k at a time, as 4-row groups plus a 2-row pair.
__attribute__((target("avx2,fma"))) void pack_a_f32_6_avx2(int64_t mc, int64_t kc, const float* A,
                                                            int64_t rs, int64_t cs, float* dst) {
  if (cs != 1) return pack_a<float, 6>(mc, kc, A, rs, cs, dst);
  const int64_t full = mc / 6 * 6;
  for (int64_t i0 = 0; i0 < full; i0 += 6, dst += 6 * kc) {
    const float* r0 = A + i0 * rs;
    const float *r1 = r0 + rs, *r2 = r1 + rs, *r3 = r2 + rs, *r4 = r3 + rs, *r5 = r4 + rs;
    float* d = dst;
    int64_t k = 0;
    for (; k + 8 <= kc; k += 8, d += 48) {
      const __m256 a0 = _mm256_loadu_ps(r0 + k), a1 = _mm256_loadu_ps(r1 + k);
      const __m256 a2 = _mm256_loadu_ps(r2 + k), a3 = _mm256_loadu_ps(r3 + k);
      const __m256 a4 = _mm256_loadu_ps(r4 + k), a5 = _mm256_loadu_ps(r5 + k);
      const __m256 t0 = _mm256_unpacklo_ps(a0, a1), t1 = _mm256_unpackhi_ps(a0, a1);
      const __m256 t2 = _mm256_unpacklo_ps(a2, a3), t3 = _mm256_unpackhi_ps(a2, a3);
      // cK holds rows 0-3 at k+K (low lane) and k+4+K (high lane).
      const __m256 c0 = _mm256_shuffle_ps(t0, t2, 0x44), c1 = _mm256_shuffle_ps(t0, t2, 0xEE);
      const __m256 c2 = _mm256_shuffle_ps(t1, t3, 0x44), c3 = _mm256_shuffle_ps(t1, t3, 0xEE);
      // u0: rows 4-5 at k, k+1 | k+4, k+5; u1: at k+2, k+3 | k+6, k+7.
      const __m256 u0 = _mm256_unpacklo_ps(a4, a5), u1 = _mm256_unpackhi_ps(a4, a5);
      const __m128 u0l = _mm256_castps256_ps128(u0), u0h = _mm256_extractf128_ps(u0, 1);
      const __m128 u1l = _mm256_castps256_ps128(u1), u1h = _mm256_extractf128_ps(u1, 1);
      _mm_storeu_ps(d + 0, _mm256_castps256_ps128(c0));
      _mm_storel_pi(reinterpret_cast<__m64*>(d + 4), u0l);
      _mm_storeu_ps(d + 6, _mm256_castps256_ps128(c1));
      _mm_storeh_pi(reinterpret_cast<__m64*>(d + 10), u0l);
      _mm_storeu_ps(d + 12, _mm256_castps256_ps128(c2));
      _mm_storel_pi(reinterpret_cast<__m64*>(d + 16), u1l);
      _mm_storeu_ps(d + 18, _mm256_castps256_ps128(c3));
      _mm_storeh_pi(reinterpret_cast<__m64*>(d + 22), u1l);
      _mm_storeu_ps(d + 24, _mm256_extractf128_ps(c0, 1));
      _mm_storel_pi(reinterpret_cast<__m64*>(d + 28), u0h);
      _mm_storeu_ps(d + 30, _mm256_extractf128_ps(c1, 1));
      _mm_storeh_pi(reinterpret_cast<__m64*>(d + 34), u0h);
      _mm_storeu_ps(d + 36, _mm256_extractf128_ps(c2, 1));
      _mm_storel_pi(reinterpret_cast<__m64*>(d + 40), u1h);
      _mm_storeu_ps(d + 42, _mm256_extractf128_ps(c3, 1));
      _mm_storeh_pi(reinterpret_cast<__m64*>(d + 46), u1h);
    }
    for (; k < kc; ++k, d += 6) {
      d[0] = r0[k], d[1] = r1[k], d[2] = r2[k], d[3] = r3[k], d[4] = r4[k], d[5] = r5[k];
    }
  }
  if (full < mc) pack_a<float, 6>(mc - full, kc, A + full * rs, rs, cs, dst);
}

// float64 version of the above: 4 k at a time.
__attribute__((target("avx2,fma"))) void pack_a_f64_6_avx2(int64_t mc, int64_t kc, const double* A,
                                                            int64_t rs, int64_t cs, double* dst) {
  if (cs != 1) return pack_a<double, 6>(mc, kc, A, rs, cs, dst);
  const int64_t full = mc / 6 * 6;
  for (int64_t i0 = 0; i0 < full; i0 += 6, dst += 6 * kc) {
    const double* r0 = A + i0 * rs;
    const double *r1 = r0 + rs, *r2 = r1 + rs, *r3 = r2 + rs, *r4 = r3 + rs, *r5 = r4 + rs;
    double* d = dst;
    int64_t k = 0;
    for (; k + 4 <= kc; k += 4, d += 24) {
      const __m256d a0 = _mm256_loadu_pd(r0 + k), a1 = _mm256_loadu_pd(r1 + k);
      const __m256d a2 = _mm256_loadu_pd(r2 + k), a3 = _mm256_loadu_pd(r3 + k);
      const __m256d a4 = _mm256_loadu_pd(r4 + k), a5 = _mm256_loadu_pd(r5 + k);
      const __m256d t0 = _mm256_unpacklo_pd(a0, a1), t1 = _mm256_unpackhi_pd(a0, a1);
      const __m256d t2 = _mm256_unpacklo_pd(a2, a3), t3 = _mm256_unpackhi_pd(a2, a3);
      const __m256d u0 = _mm256_unpacklo_pd(a4, a5), u1 = _mm256_unpackhi_pd(a4, a5);
      _mm256_storeu_pd(d + 0, _mm256_permute2f128_pd(t0, t2, 0x20));
      _mm_storeu_pd(d + 4, _mm256_castpd256_pd128(u0));
      _mm256_storeu_pd(d + 6, _mm256_permute2f128_pd(t1, t3, 0x20));
      _mm_storeu_pd(d + 10, _mm256_castpd256_pd128(u1));
      _mm256_storeu_pd(d + 12, _mm256_permute2f128_pd(t0, t2, 0x31));
      _mm_storeu_pd(d + 16, _mm256_extractf128_pd(u0, 1));
      _mm256_storeu_pd(d + 18, _mm256_permute2f128_pd(t1, t3, 0x31));
      _mm_storeu_pd(d + 22, _mm256_extractf128_pd(u1, 1));
    }
    for (; k < kc; ++k, d += 6) {
      d[0] = r0[k], d[1] = r1[k], d[2] = r2[k], d[3] = r3[k], d[4] = r4[k], d[5] = r5[k];
    }
  }
  if (full < mc) pack_a<double, 6>(mc - full, kc, A + full * rs, rs, cs, dst);
}

// A narrow product against a transposed B as dot products (dot_narrow_f32_avx512's scheme at 8
// lanes): two rows of A against up to 6 columns per tile, 12 accumulators of the 16 registers.
template <int R, int NC>
__attribute__((target("avx2,fma"))) static void dot_tile_f32_avx2(int64_t K, const float* a, int64_t rsA, const float* b,
                                                                   int64_t csB, float* c, int64_t ldc) {
  __m256 acc[R][NC];
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < NC; ++j) acc[i][j] = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) {
    __m256 av[R];
    for (int i = 0; i < R; ++i) av[i] = _mm256_loadu_ps(a + i * rsA + k);
    for (int j = 0; j < NC; ++j) {
      const __m256 bv = _mm256_loadu_ps(b + j * csB + k);
      for (int i = 0; i < R; ++i) acc[i][j] = _mm256_fmadd_ps(av[i], bv, acc[i][j]);
    }
  }
  if (k < K) {
    const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(K - k)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256 av[R];
    for (int i = 0; i < R; ++i) av[i] = _mm256_maskload_ps(a + i * rsA + k, m);
    for (int j = 0; j < NC; ++j) {
      const __m256 bv = _mm256_maskload_ps(b + j * csB + k, m);
      for (int i = 0; i < R; ++i) acc[i][j] = _mm256_fmadd_ps(av[i], bv, acc[i][j]);
    }
  }
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < NC; ++j) {
      const __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc[i][j]), _mm256_extractf128_ps(acc[i][j], 1));
      const __m128 q = _mm_add_ps(h, _mm_movehl_ps(h, h));
      c[i * ldc + j] = _mm_cvtss_f32(_mm_add_ss(q, _mm_shuffle_ps(q, q, 1)));
    }
}

template <int R>
__attribute__((target("avx2,fma"))) static void dot_rows_f32_avx2(int64_t N, int64_t K, const float* a, int64_t rsA, const float* b,
                                                                   int64_t csB, float* c, int64_t ldc) {
  int64_t j = 0;
  for (; j + 6 <= N; j += 6) dot_tile_f32_avx2<R, 6>(K, a, rsA, b + j * csB, csB, c + j, ldc);
  switch (N - j) {
    case 1: return dot_tile_f32_avx2<R, 1>(K, a, rsA, b + j * csB, csB, c + j, ldc);
    case 2: return dot_tile_f32_avx2<R, 2>(K, a, rsA, b + j * csB, csB, c + j, ldc);
    case 3: return dot_tile_f32_avx2<R, 3>(K, a, rsA, b + j * csB, csB, c + j, ldc);
    case 4: return dot_tile_f32_avx2<R, 4>(K, a, rsA, b + j * csB, csB, c + j, ldc);
    case 5: return dot_tile_f32_avx2<R, 5>(K, a, rsA, b + j * csB, csB, c + j, ldc);
    default: return;
  }
}

__attribute__((target("avx2,fma"))) void dot_narrow_f32_avx2(int64_t r0, int64_t r1, int64_t N, int64_t K, const float* A, int64_t rsA,
                                                             const float* B, int64_t csB, float* C, int64_t ldc) {
  int64_t r = r0;
  for (; r + 2 <= r1; r += 2) dot_rows_f32_avx2<2>(N, K, A + r * rsA, rsA, B, csB, C + r * ldc, ldc);
  if (r < r1) dot_rows_f32_avx2<1>(N, K, A + r * rsA, rsA, B, csB, C + r * ldc, ldc);
}

}  // namespace tessera::cpu::gemm_detail
#endif  // __x86_64__
