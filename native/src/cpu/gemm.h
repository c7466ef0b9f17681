// @file Strided single-matrix multiply (C = A @ B) for float32 and float64 on the cpu backend, and
// bfloat16 on CPUs with AMX tiles.
#pragma once
#include <cstdint>

#include "../dtype.h"

namespace tessera::cpu {

// C[M,N] = A[M,K] @ B[K,N]. A's element (i,k) is at A[i*rsA + k*csA]; B's (k,j) at B[k*rsB + j*csB]
// (any strides, including transposed views, so callers never copy). C is row-major with row stride ldc
// and is overwritten (not accumulated). K == 0 writes zeros. Multithreaded internally.
void gemm_f32(int64_t M, int64_t N, int64_t K, const float* A, int64_t rsA, int64_t csA,
              const float* B, int64_t rsB, int64_t csB, float* C, int64_t ldc);
void gemm_f64(int64_t M, int64_t N, int64_t K, const double* A, int64_t rsA, int64_t csA,
              const double* B, int64_t rsB, int64_t csB, double* C, int64_t ldc);

// Whether gemm_bf16_amx can run here: the CPU has AMX-BF16, the OS lets this process use its
// tiles, TESSERA_CPU_ISA allows avx512 and TESSERA_CPU_AMX is not 0. Decided once.
bool amx_bf16_usable();
// The same contract for bfloat16 (K >= 1), accumulated in float32 on AMX tiles and rounded once
// (gemm_amx.cc: subnormals flush to zero there). Only when amx_bf16_usable().
void gemm_bf16_amx(int64_t M, int64_t N, int64_t K, const bfloat16* A, int64_t rsA, int64_t csA,
                   const bfloat16* B, int64_t rsB, int64_t csB, bfloat16* C, int64_t ldc);

}  // namespace tessera::cpu
