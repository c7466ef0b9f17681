// @file The vectorized inner loops of the float32/float64 reductions (reduce.cc drives them): a
// contiguous run reduced to one value, a block of rows reduced column-wise, and the index of a
// run's first extreme. reduce_simd.cc compiles them once per instruction set and picks one at run
// time (isa.h). The vectors have one fixed logical width on every instruction set (8 doubles,
// 16 floats) and every combination order is fixed, so results are bit-identical across
// TESSERA_CPU_ISA settings; only the instructions differ.
//
// Accuracy (u = 2^-53, u_f = 2^-24, S the exact sum, A = sum |x|):
// - float64 sums are pairwise over leaves of 1024 elements; inside a leaf 32 lanes add 32 terms
//   each and the lanes combine as a tree, the leaf's tail (< 32) serially. Every term passes
//   through at most 38 + ceil(log2(n / 1024)) additions, so |error| <= (log2(n) + 32) u A.
// - float32 sums add groups of eight float32 vectors (16 lanes) as a tree in float32 (three
//   roundings per term, so at most 3.01 u_f A), then accumulate those in double likewise (leaves
//   of 4096; a leaf's tail, < 256 terms, serially in double); with the final rounding to
//   float32: |error| <= 3.01 u_f A + u_f |S| + (log2(n) + 260) u A.
// - max/min are exact; a NaN anywhere makes the result NaN (the first NaN met by the fixed order).
// - products accumulate in double like sums (no float32 pre-combination: it could overflow).
#pragma once
#include <cstdint>

namespace tessera::cpu::rsimd {

enum class Kind : int { Sum = 0, Prod = 1, Max = 2, Min = 3 };

// Elements per leaf of the pairwise tree, and per block of a full reduction (a multiple of both
// leaves): reduce.cc splits long runs into blocks so threads can share them, then combines the
// block values with combine_tree, which gives the same value as a single-threaded run.
constexpr int64_t kBlock = 32768;
// Rows per leaf of cols()'s pairwise tree.
constexpr int64_t kColLeaf = 16;

// p[0, n) reduced to one value, in double (the identity when n == 0). n <= kBlock is expected
// (reduce.cc's blocking) but any n works.
double run(Kind k, const float* p, int64_t n);
double run(Kind k, const double* p, int64_t n);

// out[j] = the reduction over r < rows of p[r * ld + j], for j < c; rows >= 1.
// Pairwise over leaves of kColLeaf rows.
void cols(Kind k, const float* p, int64_t rows, int64_t c, int64_t ld, double* out);
void cols(Kind k, const double* p, int64_t rows, int64_t c, int64_t ld, double* out);

// The index of the first maximum (is_max) or minimum of p[0, n), n >= 1; a NaN counts as the
// extreme (the first NaN wins), as in NumPy.
int64_t arg(bool is_max, const float* p, int64_t n);
int64_t arg(bool is_max, const double* p, int64_t n);

// Combines v[0, n) (n >= 1) in a fixed pairwise tree: halves split at ceil(n / 2).
double combine_tree(Kind k, const double* v, int64_t n);

}  // namespace tessera::cpu::rsimd
