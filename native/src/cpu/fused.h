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
//
// A batch (fuse.ts's batchChains) runs several chains of the same steps and constants, each over
// its own shape: ints then end with the member count M, and the inputs and outputs are member 0's,
// then member 1's, and so on (nIn / M and nOut each). Every operand of a member has its shape.
#pragma once
#include <cstdint>
#include <vector>

#include "../program.h"

namespace tessera::cpu {

// The number of chains a fused instruction's ints describe (1 unless it is a batch).
inline int64_t fused_members(const std::vector<int64_t>& v) {
  if (v.size() < 3) return 1;
  const int64_t n_steps = v[1];
  if (n_steps < 0 || static_cast<int64_t>(v.size()) < 3 + 5 * n_steps) return 1;
  const int64_t n_out = v[2 + 5 * n_steps];
  return static_cast<int64_t>(v.size()) == 4 + 5 * n_steps + n_out ? v.back() : 1;
}
// The most members one batch may have (fuse.ts's MAX_MEMBERS).
constexpr int64_t kMaxFusedMembers = 256;

// Calls f(member, inputs, outputs) for each member of a batch, with `member` the instruction of
// that chain alone (ints without the count, the member's shape). Scratch vectors are reused.
template <class F>
void for_each_member(const Instr& instr, const Inputs& in, const Outputs& outs, F&& f) {
  const int64_t m = fused_members(instr.ints);
  const size_t n_in = in.size() / m, n_out = outs.size() / m;
  thread_local Instr one;
  thread_local Inputs ins;
  thread_local Outputs os;
  one.op = instr.op, one.device = instr.device, one.dtype = instr.dtype, one.index = instr.index;
  one.scalar_index = instr.scalar_index, one.num_scalars = instr.num_scalars;
  one.ints.assign(instr.ints.begin(), instr.ints.end() - 1);
  for (int64_t k = 0; k < m; ++k) {
    ins.assign(in.begin() + k * n_in, in.begin() + (k + 1) * n_in);
    os.assign(outs.begin() + k * n_out, outs.begin() + (k + 1) * n_out);
    one.shape = os[0]->shape;
    one.outs.assign(instr.outs.begin() + k * n_out, instr.outs.begin() + (k + 1) * n_out);
    f(static_cast<const Instr&>(one), static_cast<const Inputs&>(ins), static_cast<const Outputs&>(os));
  }
}

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
