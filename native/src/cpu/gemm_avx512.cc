// @file AVX-512 GEMM micro-kernels (12x32 float32, 12x16 float64) and their A packers. A tile is
// 24 zmm accumulators: per k, two loads of B and twelve broadcasts of A (folded into the FMAs as
// embedded broadcasts) feed 24 independent FMAs, enough to hide the FMA latency on two ports. Each
// k also prefetches B and A 16 steps ahead into L1: a B sliver (KC x 32 floats, 64 KiB at KC 512)
// outgrows L1, and on a 2-core Xeon with both cores busy the hardware prefetchers alone left the
// products 4-6% slower at 1024-2048 (317 / 305 against 335 / 325 GFLOP/s, four runs each).
#if defined(__x86_64__)
// GCC 12's AVX-512 headers trip its own uninitialized-use warnings (_mm512_reduce_add_ps's
// _mm256_undefined_*).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "gemm_kernels.h"

#define TG_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma")))

namespace tessera::cpu::gemm_detail {

// The 12 x (2 vectors) tile body, shared by both element types through macros each kernel defines:
// T the element, V the vector type, L its lanes, ZERO/SET1/FMA/ADD the arithmetic, LOAD/STORE
// unaligned vector memory access.
#define TG_TILE_KERNEL                                                                           \
  for (int i = 0; i < 12; ++i) {                                                               \
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);                      \
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + 2 * L - 1), _MM_HINT_T0);          \
  }                                                                                             \
  V c00 = ZERO(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;  \
  V c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00, c71 = c00;      \
  V c80 = c00, c81 = c00, c90 = c00, c91 = c00, cA0 = c00, cA1 = c00, cB0 = c00, cB1 = c00;      \
  _Pragma("GCC unroll 2") for (int64_t k = 0; k < kc; ++k) {                                     \
    _mm_prefetch(reinterpret_cast<const char*>(b + 16 * 2 * L), _MM_HINT_T0);                   \
    _mm_prefetch(reinterpret_cast<const char*>(b + 16 * 2 * L + L), _MM_HINT_T0);               \
    _mm_prefetch(reinterpret_cast<const char*>(a + 16 * 12), _MM_HINT_T0);                      \
    const V b0 = LOAD(b), b1 = LOAD(b + L);                                                     \
    V ai;                                                                                       \
    TG_STEP(0, c00, c01) TG_STEP(1, c10, c11) TG_STEP(2, c20, c21) TG_STEP(3, c30, c31)          \
    TG_STEP(4, c40, c41) TG_STEP(5, c50, c51) TG_STEP(6, c60, c61) TG_STEP(7, c70, c71)          \
    TG_STEP(8, c80, c81) TG_STEP(9, c90, c91) TG_STEP(10, cA0, cA1) TG_STEP(11, cB0, cB1)        \
    a += 12;                                                                                    \
    b += 2 * L;                                                                                 \
  }                                                                                             \
  TG_STORE(0, c00, c01) TG_STORE(1, c10, c11) TG_STORE(2, c20, c21) TG_STORE(3, c30, c31)        \
  TG_STORE(4, c40, c41) TG_STORE(5, c50, c51) TG_STORE(6, c60, c61) TG_STORE(7, c70, c71)        \
  TG_STORE(8, c80, c81) TG_STORE(9, c90, c91) TG_STORE(10, cA0, cA1) TG_STORE(11, cB0, cB1)

#define TG_STEP(i, r0, r1) \
  ai = SET1(a[i]);         \
  r0 = FMA(ai, b0, r0);    \
  r1 = FMA(ai, b1, r1);
#define TG_STORE(i, r0, r1)                  \
  {                                          \
    T* p = c + (i) * ldc;                    \
    if (accumulate) {                        \
      r0 = ADD(LOAD(p), r0);                 \
      r1 = ADD(LOAD(p + L), r1);             \
    }                                        \
    STORE(p, r0);                            \
    STORE(p + L, r1);                        \
  }

// Rows [r0, r1) of C[M x N] = A B for a narrow product (N < 16) whose A rows and B columns are
// both contiguous in k (csA == 1, rsB == 1: x @ W^T with a weight stored [N, K], as a classifier
// head): every C element is a dot product of two contiguous rows, so nothing is packed. Two rows
// of A at a time against up to 8 columns of B: per 16 k, 2 + NC loads feed 2 NC independent FMAs,
// and each lane-wise sum is reduced once at the end. (The packed GEMM pads such a product to a
// 32-column tile: 10 of 32 lanes did work, 33-44 GFLOP/s for 256 x 512 x 10.)
template <int R, int NC>
TG_AVX512 static void dot_tile_f32(int64_t K, const float* a, int64_t rsA, const float* b, int64_t csB, float* c, int64_t ldc) {
  __m512 acc[R][NC];
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < NC; ++j) acc[i][j] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) {
    __m512 av[R];
    for (int i = 0; i < R; ++i) av[i] = _mm512_loadu_ps(a + i * rsA + k);
    for (int j = 0; j < NC; ++j) {
      const __m512 bv = _mm512_loadu_ps(b + j * csB + k);
      for (int i = 0; i < R; ++i) acc[i][j] = _mm512_fmadd_ps(av[i], bv, acc[i][j]);
    }
  }
  if (k < K) {
    const __mmask16 m = static_cast<__mmask16>((1u << (K - k)) - 1);
    __m512 av[R];
    for (int i = 0; i < R; ++i) av[i] = _mm512_maskz_loadu_ps(m, a + i * rsA + k);
    for (int j = 0; j < NC; ++j) {
      const __m512 bv = _mm512_maskz_loadu_ps(m, b + j * csB + k);
      for (int i = 0; i < R; ++i) acc[i][j] = _mm512_fmadd_ps(av[i], bv, acc[i][j]);
    }
  }
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < NC; ++j) c[i * ldc + j] = _mm512_reduce_add_ps(acc[i][j]);
}

template <int R>
TG_AVX512 static void dot_rows_f32(int64_t N, int64_t K, const float* a, int64_t rsA, const float* b, int64_t csB, float* c, int64_t ldc) {
  int64_t j = 0;
  for (; j + 8 <= N; j += 8) dot_tile_f32<R, 8>(K, a, rsA, b + j * csB, csB, c + j, ldc);
  switch (N - j) {
    case 1: return dot_tile_f32<R, 1>(K, a, rsA, b + j * csB, csB, c + j, ldc);
    case 2: return dot_tile_f32<R, 2>(K, a, rsA, b + j * csB, csB, c + j, ldc);
    case 3: return dot_tile_f32<R, 3>(K, a, rsA, b + j * csB, csB, c + j, ldc);
    case 4: return dot_tile_f32<R, 4>(K, a, rsA, b + j * csB, csB, c + j, ldc);
    case 5: return dot_tile_f32<R, 5>(K, a, rsA, b + j * csB, csB, c + j, ldc);
    case 6: return dot_tile_f32<R, 6>(K, a, rsA, b + j * csB, csB, c + j, ldc);
    case 7: return dot_tile_f32<R, 7>(K, a, rsA, b + j * csB, csB, c + j, ldc);
    default: return;
  }
}

TG_AVX512 void dot_narrow_f32_avx512(int64_t r0, int64_t r1, int64_t N, int64_t K, const float* A, int64_t rsA, const float* B,
                                     int64_t csB, float* C, int64_t ldc) {
  int64_t r = r0;
  for (; r + 2 <= r1; r += 2) dot_rows_f32<2>(N, K, A + r * rsA, rsA, B, csB, C + r * ldc, ldc);
  if (r < r1) dot_rows_f32<1>(N, K, A + r * rsA, rsA, B, csB, C + r * ldc, ldc);
}

TG_AVX512 void kernel_f32_12x32_avx512(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                                       bool accumulate) {
#define T float
#define V __m512
#define L 16
#define ZERO _mm512_setzero_ps
#define SET1 _mm512_set1_ps
#define FMA _mm512_fmadd_ps
#define ADD _mm512_add_ps
#define LOAD _mm512_loadu_ps
#define STORE _mm512_storeu_ps
  TG_TILE_KERNEL
#undef T
#undef V
#undef L
#undef ZERO
#undef SET1
#undef FMA
#undef ADD
#undef LOAD
#undef STORE
}

TG_AVX512 void kernel_f64_12x16_avx512(int64_t kc, const double* a, const double* b, double* c, int64_t ldc,
                                       bool accumulate) {
#define T double
#define V __m512d
#define L 8
#define ZERO _mm512_setzero_pd
#define SET1 _mm512_set1_pd
#define FMA _mm512_fmadd_pd
#define ADD _mm512_add_pd
#define LOAD _mm512_loadu_pd
#define STORE _mm512_storeu_pd
  TG_TILE_KERNEL
#undef T
#undef V
#undef L
#undef ZERO
#undef SET1
#undef FMA
#undef ADD
#undef LOAD
#undef STORE
}
#undef TG_STEP
#undef TG_STORE
#undef TG_TILE_KERNEL

// Row-major A (cs == 1): each 12-row panel is packed as three 4-row groups, 4 x 4 blocks
// transposed in registers (the scalar gather would dominate packing time).
TG_AVX512 void pack_a_f32_12_avx512(int64_t mc, int64_t kc, const float* A, int64_t rs, int64_t cs, float* dst) {
  if (cs != 1) return pack_a<float, 12>(mc, kc, A, rs, cs, dst);
  const int64_t full = mc / 12 * 12;
  for (int64_t i0 = 0; i0 < full; i0 += 12, dst += 12 * kc) {
    for (int g = 0; g < 3; ++g) {
      const float* r0 = A + (i0 + 4 * g) * rs;
      const float *r1 = r0 + rs, *r2 = r1 + rs, *r3 = r2 + rs;
      float* d = dst + 4 * g;
      int64_t k = 0;
      for (; k + 4 <= kc; k += 4) {
        __m128 x0 = _mm_loadu_ps(r0 + k), x1 = _mm_loadu_ps(r1 + k);
        __m128 x2 = _mm_loadu_ps(r2 + k), x3 = _mm_loadu_ps(r3 + k);
        _MM_TRANSPOSE4_PS(x0, x1, x2, x3);
        _mm_storeu_ps(d + k * 12, x0);
        _mm_storeu_ps(d + (k + 1) * 12, x1);
        _mm_storeu_ps(d + (k + 2) * 12, x2);
        _mm_storeu_ps(d + (k + 3) * 12, x3);
      }
      for (; k < kc; ++k) d[k * 12] = r0[k], d[k * 12 + 1] = r1[k], d[k * 12 + 2] = r2[k], d[k * 12 + 3] = r3[k];
    }
  }
  if (full < mc) pack_a<float, 12>(mc - full, kc, A + full * rs, rs, cs, dst);
}

TG_AVX512 void pack_a_f64_12_avx512(int64_t mc, int64_t kc, const double* A, int64_t rs, int64_t cs,
                                    double* dst) {
  if (cs != 1) return pack_a<double, 12>(mc, kc, A, rs, cs, dst);
  const int64_t full = mc / 12 * 12;
  for (int64_t i0 = 0; i0 < full; i0 += 12, dst += 12 * kc) {
    for (int g = 0; g < 3; ++g) {
      const double* r0 = A + (i0 + 4 * g) * rs;
      const double *r1 = r0 + rs, *r2 = r1 + rs, *r3 = r2 + rs;
      double* d = dst + 4 * g;
      int64_t k = 0;
      for (; k + 4 <= kc; k += 4) {
        const __m256d a0 = _mm256_loadu_pd(r0 + k), a1 = _mm256_loadu_pd(r1 + k);
        const __m256d a2 = _mm256_loadu_pd(r2 + k), a3 = _mm256_loadu_pd(r3 + k);
        const __m256d t0 = _mm256_unpacklo_pd(a0, a1), t1 = _mm256_unpackhi_pd(a0, a1);
        const __m256d t2 = _mm256_unpacklo_pd(a2, a3), t3 = _mm256_unpackhi_pd(a2, a3);
        _mm256_storeu_pd(d + k * 12, _mm256_permute2f128_pd(t0, t2, 0x20));
        _mm256_storeu_pd(d + (k + 1) * 12, _mm256_permute2f128_pd(t1, t3, 0x20));
        _mm256_storeu_pd(d + (k + 2) * 12, _mm256_permute2f128_pd(t0, t2, 0x31));
        _mm256_storeu_pd(d + (k + 3) * 12, _mm256_permute2f128_pd(t1, t3, 0x31));
      }
      for (; k < kc; ++k) d[k * 12] = r0[k], d[k * 12 + 1] = r1[k], d[k * 12 + 2] = r2[k], d[k * 12 + 3] = r3[k];
    }
  }
  if (full < mc) pack_a<double, 12>(mc - full, kc, A + full * rs, rs, cs, dst);
}

}  // namespace tessera::cpu::gemm_detail
#endif  // __x86_64__
