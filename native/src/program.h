// @file The program format that eval() sends across the N-API boundary in one call; the encoder
// is packages/core/src/eval/program.ts. All integers, in one Int32Array:
//
//   program := nSlots
//              nInputs  { handle slot }*nInputs             arrays already computed
//              nInstr   instr*nInstr                         in execution order
//              nOutputs { slot }*nOutputs                    returned as new handles
//   instr   := opcode dtype ndim shape[ndim] nIn inSlot[nIn] outSlot
//              nInt int[nInt] nScalar scalarOffset           params; scalars index a Float64Array
//
// Slots are the executor's registers; a slot is freed after its last read (unless it is an
// output), which is what lets intermediates die early and donate their buffers.
#pragma once
#include <cstdint>
#include <vector>

#include "array.h"

namespace tessera {

enum class Op : int32_t {
#define OP(name, str, kind) name,
#include "ops.def"
#undef OP
  Count
};
enum class OpKind { source, view, unary, predicate, binary, compare, ternary, reduce, special };
const char* op_name(int32_t op);
OpKind op_kind(Op op);

struct Instr {
  Op op;
  DType dtype;
  Shape shape;
  std::vector<int32_t> in;
  int32_t out;
  std::vector<int64_t> ints;
  const double* scalars = nullptr;
  int32_t num_scalars = 0;
  int32_t index = 0;  // position in the program, for error messages
};

struct Program {
  int32_t num_slots = 0;
  std::vector<std::pair<int32_t, int32_t>> inputs;  // (handle, slot)
  std::vector<Instr> instrs;
  std::vector<int32_t> outputs;
};

// Decodes and validates the encoding; throws std::runtime_error on malformed input.
Program decode_program(const int32_t* data, size_t n, const double* scalars, size_t num_scalars);

}  // namespace tessera
