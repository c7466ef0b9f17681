// @file Vectorized float32 math over contiguous rows (16 lanes on AVX-512, 8 on AVX2+FMA, chosen at
// run time; bit-identical results either way). Each returns false when the machine has neither, and
// the caller uses its scalar loop instead.
#pragma once
#include <cstdint>

namespace tessera::cpu {

bool vexp_f32(const float* x, float* y, int64_t n);
bool vtanh_f32(const float* x, float* y, int64_t n);
bool vsigmoid_f32(const float* x, float* y, int64_t n);

}  // namespace tessera::cpu
