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

// How bfloat16 products run on this CPU (gemm_bf16.cc), decided once: on AMX tiles (Intel
// Sapphire Rapids and later, where the OS allows them), as AVX-512 BF16 dot products (AMD Zen 4
// and later: the instruction runs at the float32 FMA's rate and does twice its work; on Intel it
// runs at a quarter of it, so Intel CPUs without tiles take float32), or widened to float32 for
// gemm_f32. TESSERA_CPU_BF16=dot|float32 lowers it (dot only where the CPU has the instruction);
// TESSERA_CPU_ISA below avx512 means float32.
enum class Bf16Path { Float32, Dot, Amx };
Bf16Path bf16_path();
const char* bf16_path_name(Bf16Path path);
// gemm_f32's contract for bfloat16 (K >= 1), accumulated in float32 and rounded once, on
// bf16_path() (not float32). Subnormal inputs and results (below 2^-126) count as zero there.
void gemm_bf16(int64_t M, int64_t N, int64_t K, const bfloat16* A, int64_t rsA, int64_t csA,
               const bfloat16* B, int64_t rsB, int64_t csB, bfloat16* C, int64_t ldc);

}  // namespace tessera::cpu
