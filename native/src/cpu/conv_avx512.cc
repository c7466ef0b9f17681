// @file AVX-512 float32 convolution tiles (conv_kernels.h). Both keep a 6 x (up to 4 vectors)
// tile in 24 zmm accumulators for the whole reduction, so the output is written once: the forward
// broadcasts 6 input pixels' channels (read through the indirection pointers) against rows of the
// packed weights; the weight gradient broadcasts 6 cotangent channels against an input pixel row.
#if defined(__x86_64__)
#include <immintrin.h>

#include "conv_kernels.h"

#define TC_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma")))

namespace tessera::cpu::conv_detail {
namespace {

// The valid lanes of a tile's last vector.
TC_AVX512 inline __mmask16 last_mask(int ncols, int nv) {
  const int rem = ncols - 16 * (nv - 1);
  return rem >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << rem) - 1);
}

template <int NV>
TC_AVX512 void fwd(int64_t taps, int64_t cg, const float* const* a, const float* w, int64_t ldw, float* out,
                   int64_t ldo, int mr, int ncols) {
  __m512 acc[6][NV];
#pragma GCC unroll 6
  for (int i = 0; i < 6; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_ps();
  for (int64_t t = 0; t < taps; ++t, a += 6) {
    const float *p0 = a[0], *p1 = a[1], *p2 = a[2], *p3 = a[3], *p4 = a[4], *p5 = a[5];
    const float* b = w + t * cg * ldw;
#pragma GCC unroll 2
    for (int64_t c = 0; c < cg; ++c, b += ldw) {
      __m512 bv[NV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) bv[v] = _mm512_loadu_ps(b + 16 * v);
#define TC_ROW(i, p)                                                            \
  {                                                                             \
    const __m512 ai = _mm512_set1_ps(p[c]);                                     \
    _Pragma("GCC unroll 4") for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]); \
  }
      TC_ROW(0, p0) TC_ROW(1, p1) TC_ROW(2, p2) TC_ROW(3, p3) TC_ROW(4, p4) TC_ROW(5, p5)
#undef TC_ROW
    }
  }
  const __mmask16 last = last_mask(ncols, NV);
#pragma GCC unroll 6
  for (int i = 0; i < 6; ++i) {
    if (i >= mr) break;
    float* o = out + i * ldo;
#pragma GCC unroll 4
    for (int v = 0; v < NV - 1; ++v) _mm512_storeu_ps(o + 16 * v, acc[i][v]);
    _mm512_mask_storeu_ps(o + 16 * (NV - 1), last, acc[i][NV - 1]);
  }
}

template <int NV>
TC_AVX512 void wgrad(int64_t rows, const float* ct, int64_t ldct, const float* const* x, int64_t xoff, float* dw,
                     int64_t lddw, int mo, int ncols, bool accumulate) {
  __m512 acc[6][NV];
#pragma GCC unroll 6
  for (int i = 0; i < 6; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_ps();
  const __mmask16 last = last_mask(ncols, NV);
#pragma GCC unroll 2
  for (int64_t r = 0; r < rows; ++r, ct += ldct) {
    const float* p = x[r] + xoff;
    __m512 xv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV - 1; ++v) xv[v] = _mm512_loadu_ps(p + 16 * v);
    xv[NV - 1] = _mm512_maskz_loadu_ps(last, p + 16 * (NV - 1));
#pragma GCC unroll 6
    for (int i = 0; i < 6; ++i) {
      const __m512 ai = _mm512_set1_ps(ct[i]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_fmadd_ps(ai, xv[v], acc[i][v]);
    }
  }
#pragma GCC unroll 6
  for (int i = 0; i < 6; ++i) {
    if (i >= mo) break;
    float* o = dw + i * lddw;
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      const __mmask16 m = v == NV - 1 ? last : __mmask16(0xFFFF);
      __m512 s = acc[i][v];
      if (accumulate) s = _mm512_add_ps(_mm512_maskz_loadu_ps(m, o + 16 * v), s);
      _mm512_mask_storeu_ps(o + 16 * v, m, s);
    }
  }
}

}  // namespace

TC_AVX512 void conv_fwd_tile_f32_avx512(int64_t taps, int64_t cg, const float* const* a, const float* w, int64_t ldw,
                                        float* out, int64_t ldo, int mr, int ncols) {
  switch ((ncols + 15) / 16) {
    case 1: return fwd<1>(taps, cg, a, w, ldw, out, ldo, mr, ncols);
    case 2: return fwd<2>(taps, cg, a, w, ldw, out, ldo, mr, ncols);
    case 3: return fwd<3>(taps, cg, a, w, ldw, out, ldo, mr, ncols);
    default: return fwd<4>(taps, cg, a, w, ldw, out, ldo, mr, ncols);
  }
}

TC_AVX512 void conv_wgrad_tile_f32_avx512(int64_t rows, const float* ct, int64_t ldct, const float* const* x,
                                          int64_t xoff, float* dw, int64_t lddw, int mo, int ncols, bool accumulate) {
  switch ((ncols + 15) / 16) {
    case 1: return wgrad<1>(rows, ct, ldct, x, xoff, dw, lddw, mo, ncols, accumulate);
    case 2: return wgrad<2>(rows, ct, ldct, x, xoff, dw, lddw, mo, ncols, accumulate);
    case 3: return wgrad<3>(rows, ct, ldct, x, xoff, dw, lddw, mo, ncols, accumulate);
    default: return wgrad<4>(rows, ct, ldct, x, xoff, dw, lddw, mo, ncols, accumulate);
  }
}

}  // namespace tessera::cpu::conv_detail
#endif
