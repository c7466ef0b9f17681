// @file The fused kernel's tile functions compiled for AVX2 (see fused_tiles.inc).
#if defined(__x86_64__)
#include <algorithm>
#include <type_traits>

#include "elementwise_ops.h"
#include "fused.h"
#include "vmath.h"

namespace tessera::cpu::fused_avx2 {
#define TILE_TARGET __attribute__((target("avx2,fma")))
#include "fused_tiles.inc"
#undef TILE_TARGET
}  // namespace tessera::cpu::fused_avx2
#endif
