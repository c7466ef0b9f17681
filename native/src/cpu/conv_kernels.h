// @file float32 convolution micro-kernels that read the input through per-row pointers (an
// indirection buffer) instead of an im2col copy: the forward tile and the weight-gradient tile.
// conv.cc drives them; conv_avx512.cc has the AVX-512 versions (picked at run time, isa.h).
#pragma once
#include <cstdint>

namespace tessera::cpu::conv_detail {

// Rows per forward tile and output channels per weight-gradient tile.
constexpr int kFwdRows = 6;
constexpr int kWgradOuts = 6;
// Columns per tile: up to 4 vectors of 16 floats.
constexpr int kTileCols = 64;

#if defined(__x86_64__)
// Forward: out[i, j] (i < mr, j < ncols <= 64, row stride ldo) = sum over taps t and channels c of
// a[t * 6 + i][c] * w[(t * cg + c) * ldw + j]. a holds 6 pointers per tap (each to cg floats: an
// input pixel's channels or zeros; rows past mr may point anywhere readable); w's rows have at
// least ceil(ncols / 16) * 16 readable columns.
void conv_fwd_tile_f32_avx512(int64_t taps, int64_t cg, const float* const* a, const float* w, int64_t ldw,
                              float* out, int64_t ldo, int mr, int ncols);
// Weight gradient: dw[i, j] (i < mo, j < ncols <= 64, row stride lddw) (+)= sum over rows r of
// ct[r * ldct + i] * x[r][xoff + j]. ct has 6 readable values per row; x[r] + xoff points to at
// least ncols floats (read under a mask past them). accumulate adds to dw instead of overwriting it.
void conv_wgrad_tile_f32_avx512(int64_t rows, const float* ct, int64_t ldct, const float* const* x, int64_t xoff,
                                float* dw, int64_t lddw, int mo, int ncols, bool accumulate);
#endif

}  // namespace tessera::cpu::conv_detail
