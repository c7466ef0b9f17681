// @file Which SIMD instruction set the cpu kernels use, decided once at run time from the CPU's
// features (never from build flags: the addon built on one machine runs on another).
#pragma once

namespace tessera::cpu {

enum class Isa { Generic = 0, Avx2 = 1, Avx512 = 2 };

// The widest instruction set both the CPU and the environment allow. TESSERA_CPU_ISA=generic|avx2|
// avx512 lowers it (never raises it past the CPU), so tests can run every path on one machine.
// Avx2 means AVX2+FMA; Avx512 means AVX-512 F, BW, DQ and VL.
Isa cpu_isa();

// The name of an instruction set, as TESSERA_CPU_ISA spells it.
const char* isa_name(Isa isa);

}  // namespace tessera::cpu
