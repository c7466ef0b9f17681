// @file The layout of a fused elementwise instruction (Op::Fused), shared by the executor's
// operand check and the cpu kernel (fused.cc). The encoder is packages/core/src/eval/fuse.ts.
//
// A fused instruction computes a chain of elementwise ops over one output shape S in a single
// pass over memory. Inputs are arrays broadcastable to S; outputs have shape S. Registers hold
// values of the chain: registers [0, nIn) are the inputs, register nIn + k the result of step k.
// ints: T nSteps (op type a b c)*nSteps nOut outReg*nOut
//   T     the dtype code of the chain's numbers (float32 or float64)
//   op    an elementwise opcode (unary, predicate, binary, compare, where, cast) or kFusedConst
//   type  the step's result: kRegNumber (T) or kRegBool
//   a b c operand registers (unused ones -1); for kFusedConst, a is the index of its value among
//         the instruction's scalars
// outReg: the register each output holds, in output order.
#pragma once
#include <cstdint>

#include "../program.h"

namespace tessera::cpu {

constexpr int64_t kFusedConst = -1;
constexpr int64_t kRegNumber = 0;
constexpr int64_t kRegBool = 1;

// Which operand of a binary step is a constant (a tile holding one value): its tile function then
// reads that value once (fused_tiles.inc).
constexpr int kOneNone = 0;
constexpr int kOneA = 1;
constexpr int kOneB = 2;

// One step of a chain over n elements: out = f(a, b, c), operands as raw tile pointers.
using TileFn = void (*)(const void* a, const void* b, const void* c, void* out, int64_t n);

// The tile functions of each instruction set (fused_avx2.cc, fused_avx512.cc): nullptr for an op
// not defined on those operand kinds (or, with `one` set, without a constant-operand form).
#if defined(__x86_64__)
namespace fused_avx2 {
TileFn find_tile_f32(Op op, int64_t in, int64_t out, int one);
TileFn find_tile_f64(Op op, int64_t in, int64_t out, int one);
}  // namespace fused_avx2
namespace fused_avx512 {
TileFn find_tile_f32(Op op, int64_t in, int64_t out, int one);
TileFn find_tile_f64(Op op, int64_t in, int64_t out, int one);
}  // namespace fused_avx512
#endif

}  // namespace tessera::cpu
