// @file The program format that eval() sends across the N-API boundary; the encoder is
// packages/core/src/eval/program.ts. A program is a body, decoded once, and its bindings, given
// per run, so one decoded body can be replayed with new inputs (what compile builds on).
//
// body (Int32Array):
//   kProgramVersion nSlots nInputs nScalars
//   nInstr instr*nInstr                       in execution order
//   nOutputs slot*nOutputs                    returned as new handles
// Slots [0, nInputs) are the inputs: run i binds them to the handles of bindings.inputs.
// instr:
//   opcode device nIn inSlot*nIn nOut (outSlot dtype ndim dim*ndim)*nOut nInt int*nInt nScalar scalarIndex
// Scalar parameters are the 8-byte words scalarIndex .. scalarIndex + nScalar - 1 of
// bindings.scalars: doubles, except the value of a fill whose dtype is int64 or uint64, which is
// the integer's two's-complement bits (so constants beyond 2^53 stay exact).
//
// Slots are the executor's registers, each written once; a slot is freed after its last read
// unless it is an output, which is what lets intermediates die early and donate their buffers.
#pragma once
#include <cstdint>
#include <cstring>
#include <vector>

#include "array.h"

namespace tessera {

constexpr int32_t kProgramVersion = 0x54530002;  // "TS", format 2

enum class Op : int32_t {
#define OP(name, str, kind) name,
#include "ops.def"
#undef OP
  Count
};
enum class OpKind { source, view, unary, predicate, binary, compare, ternary, reduce, special };
const char* op_name(int32_t op);
OpKind op_kind(Op op);

struct OutSpec {
  int32_t slot;
  DType dtype;
  Shape shape;
};

struct Instr {
  Op op;
  int32_t device = 0;           // index in the backend registry
  DType dtype;                  // of the first output (most instructions have one)
  Shape shape;                  // of the first output
  std::vector<int32_t> in;
  std::vector<OutSpec> outs;
  std::vector<int64_t> ints;
  int32_t scalar_index = 0;     // first word of this instruction's scalars in the bindings
  int32_t num_scalars = 0;
  int32_t index = 0;            // position in the program, for error messages
};

// The 8-byte scalar words of one run; an instruction reads its own through these accessors.
struct Scalars {
  const double* words = nullptr;
  double f(int k) const { return words[k]; }
  int64_t i(int k) const {
    int64_t v;
    std::memcpy(&v, &words[k], 8);
    return v;
  }
};

using Inputs = std::vector<const ArrayDesc*>;
using Outputs = std::vector<ArrayDesc*>;

// Matmul's optional epilogue, ints [flags], which the fusion pass sets on the gpu
// (packages/core/src/eval/epilogue.ts): out = a @ b (+ addend, out's shape) (+ bias [N] over the
// rows), the addend and then the bias following a and b among the inputs.
constexpr int64_t kMatmulAddend = 1, kMatmulBias = 2;
inline int64_t matmul_epilogue(const Instr& i) { return i.ints.empty() ? 0 : i.ints[0]; }
inline const ArrayDesc* matmul_addend(const Instr& i, const Inputs& in) {
  return matmul_epilogue(i) & kMatmulAddend ? in.at(2) : nullptr;
}
inline const ArrayDesc* matmul_bias(const Instr& i, const Inputs& in) {
  const int64_t e = matmul_epilogue(i);
  return e & kMatmulBias ? in.at(e & kMatmulAddend ? 3 : 2) : nullptr;
}

// A decoded, validated body. Immutable once built, so runs on several threads may share it.
struct Program {
  int32_t num_slots = 0;
  int32_t num_inputs = 0;
  int32_t num_scalars = 0;
  std::vector<Instr> instrs;
  std::vector<int32_t> outputs;
  std::vector<int32_t> last_use;  // per slot: the last instruction reading it, or -1
  std::vector<bool> is_output;    // per slot
  // Per slot: for an output that replaces an input (a compiled step's updated parameter), that
  // input's slot, else -1. Donation gives the output that input's buffer first, so a step's
  // results land where its inputs were and the next step binds the same buffers (replay.cc).
  std::vector<int32_t> replaces;
};

// The element count of an array of this shape and dtype; throws if a dimension is negative or
// the count or byte size does not fit in int64 (2^62 bytes at most).
int64_t checked_numel(const Shape& shape, DType dtype);

// Marks program output `output` (an index into p.outputs) as the update of input slot `input`
// (Program::replaces); the input then lives until that output is computed, so its buffer can take
// it even when the instruction computing it does not read the input (a new learning rate).
void set_replaced(Program& p, int32_t input, int32_t output);

// Decodes and validates a body; throws std::runtime_error naming what is malformed.
// `num_devices` bounds the device field.
Program decode_program(const int32_t* data, size_t n, int32_t num_devices);

}  // namespace tessera
