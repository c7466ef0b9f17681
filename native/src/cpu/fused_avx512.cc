// @file The fused kernel's tile functions compiled for AVX512 (see fused_tiles.inc).
#if defined(__x86_64__)
#include <algorithm>
#include <type_traits>

#include "elementwise_ops.h"
#include "fused.h"
#include "vmath.h"

namespace tessera::cpu::fused_avx512 {
#define TILE_TARGET __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma")))
#include "fused_tiles.inc"
#undef TILE_TARGET
}  // namespace tessera::cpu::fused_avx512
#endif
