// @file Run-time choice of the SIMD instruction set (see isa.h).
#include "isa.h"

#include <cstdlib>
#include <cstring>

namespace tessera::cpu {
namespace {

Isa detect() {
#if defined(__x86_64__) && !defined(TESSERA_GEMM_GENERIC_ONLY)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
    return Isa::Avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::Avx2;
#endif
  return Isa::Generic;
}

Isa requested(Isa best) {
  const char* env = std::getenv("TESSERA_CPU_ISA");
  if (!env || !*env) return best;
  Isa want = best;
  if (std::strcmp(env, "generic") == 0) want = Isa::Generic;
  else if (std::strcmp(env, "avx2") == 0) want = Isa::Avx2;
  else if (std::strcmp(env, "avx512") == 0) want = Isa::Avx512;
  return static_cast<int>(want) < static_cast<int>(best) ? want : best;
}

}  // namespace

Isa cpu_isa() {
  static const Isa isa = requested(detect());
  return isa;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Avx512: return "avx512";
    case Isa::Avx2: return "avx2";
    default: return "generic";
  }
}

}  // namespace tessera::cpu
