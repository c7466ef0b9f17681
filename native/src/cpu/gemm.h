// @file Strided single-matrix multiply (C = A @ B) for float32 and float64 on the cpu backend.
#pragma once
#include <cstdint>

namespace tessera::cpu {

// C[M,N] = A[M,K] @ B[K,N]. A's element (i,k) is at A[i*rsA + k*csA]; B's (k,j) at B[k*rsB + j*csB]
// (any strides, including transposed views, so callers never copy). C is row-major with row stride ldc
// and is overwritten (not accumulated). K == 0 writes zeros. Multithreaded internally.
void gemm_f32(int64_t M, int64_t N, int64_t K, const float* A, int64_t rsA, int64_t csA,
              const float* B, int64_t rsB, int64_t csB, float* C, int64_t ldc);
void gemm_f64(int64_t M, int64_t N, int64_t K, const double* A, int64_t rsA, int64_t csA,
              const double* B, int64_t rsB, int64_t csB, double* C, int64_t ldc);

}  // namespace tessera::cpu
