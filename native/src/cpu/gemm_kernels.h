// @file The GEMM's micro-kernel interface, shared by the driver (gemm.cc) and the per-ISA kernels
// (gemm_avx2.cc, gemm_avx512.cc): packed-panel layouts, the portable A packer, the kernels' names.
#pragma once
#include <algorithm>
#include <cstdint>

namespace tessera::cpu::gemm_detail {

// Micro-kernel: c[MR x NR] (row stride ldc) = (accumulate ? c : 0) + a_panel @ b_panel, where the
// packed a holds MR values per k and the packed b holds NR values per k.
template <class T>
using Kernel = void (*)(int64_t kc, const T* a, const T* b, T* c, int64_t ldc, bool accumulate);

// Packs an mc x kc block of A into MR-row micro-panels (see pack_a).
template <class T>
using PackA = void (*)(int64_t mc, int64_t kc, const T* A, int64_t rs, int64_t cs, T* dst);

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Packs rows [0, mc) x cols [0, kc) of A (already offset to the block) as MR-row micro-panels,
// k-major inside each panel; short panels are zero-padded so the kernel always runs full tiles.
template <class T, int MR>
void pack_a(int64_t mc, int64_t kc, const T* A, int64_t rs, int64_t cs, T* dst) {
  for (int64_t i0 = 0; i0 < mc; i0 += MR, dst += MR * kc) {
    const int64_t mr = std::min<int64_t>(MR, mc - i0);
    const T* src = A + i0 * rs;
    if (mr == MR && cs == 1) {
      const T* row[MR];
      for (int i = 0; i < MR; ++i) row[i] = src + i * rs;
      for (int64_t k = 0; k < kc; ++k)
        for (int i = 0; i < MR; ++i) dst[k * MR + i] = row[i][k];
    } else if (mr == MR && rs == 1) {
      for (int64_t k = 0; k < kc; ++k)
        for (int i = 0; i < MR; ++i) dst[k * MR + i] = src[k * cs + i];
    } else {
      for (int64_t k = 0; k < kc; ++k) {
        for (int64_t i = 0; i < mr; ++i) dst[k * MR + i] = src[i * rs + k * cs];
        for (int64_t i = mr; i < MR; ++i) dst[k * MR + i] = T(0);
      }
    }
  }
}

#if defined(__x86_64__)
// AVX2+FMA: 6-row tiles, 16 (float32) or 8 (float64) columns.
void kernel_f32_6x16_avx2(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool accumulate);
void kernel_f64_6x8_avx2(int64_t kc, const double* a, const double* b, double* c, int64_t ldc, bool accumulate);
void pack_a_f32_6_avx2(int64_t mc, int64_t kc, const float* A, int64_t rs, int64_t cs, float* dst);
void pack_a_f64_6_avx2(int64_t mc, int64_t kc, const double* A, int64_t rs, int64_t cs, double* dst);
void dot_narrow_f32_avx2(int64_t r0, int64_t r1, int64_t N, int64_t K, const float* A, int64_t rsA, const float* B, int64_t csB,
                         float* C, int64_t ldc);
// AVX-512: 12-row tiles, 32 (float32) or 16 (float64) columns.
void kernel_f32_12x32_avx512(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool accumulate);
void kernel_f64_12x16_avx512(int64_t kc, const double* a, const double* b, double* c, int64_t ldc, bool accumulate);
void pack_a_f32_12_avx512(int64_t mc, int64_t kc, const float* A, int64_t rs, int64_t cs, float* dst);
void pack_a_f64_12_avx512(int64_t mc, int64_t kc, const double* A, int64_t rs, int64_t cs, double* dst);
// Rows [r0, r1) of a narrow product (N < 16) with A's rows and B's columns contiguous in k.
void dot_narrow_f32_avx512(int64_t r0, int64_t r1, int64_t N, int64_t K, const float* A, int64_t rsA, const float* B,
                           int64_t csB, float* C, int64_t ldc);
#endif

}  // namespace tessera::cpu::gemm_detail
