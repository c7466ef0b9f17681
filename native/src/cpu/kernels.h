// @file The cpu kernel entry points, one per family; cpu/backend.cc routes instructions here.
#pragma once
#include <vector>

#include "../array.h"
#include "../program.h"

namespace tessera::cpu {

// elementwise.cc: unary, predicate, binary, compare, ternary and cast ops. `out` is allocated.
void elementwise(const Instr& instr, const Inputs& in, ArrayDesc& out);
// divmod(a, b) -> [floorDivide(a, b), remainder(a, b)] in one pass.
void divmod(const Inputs& in, const Outputs& outs);
// reduce.cc: reduceSum/Prod/Max/Min over instr.ints (sorted axes), argmax/argmin over ints[0].
void reduce(const Instr& instr, const Inputs& in, ArrayDesc& out);
// movement.cc: copies and fills.
void copy_strided(const ArrayDesc& src, const ArrayDesc& dst);  // same shape, any strides, same dtype
void fill(const Instr& instr, Scalars sc, ArrayDesc& out);      // full, arange
// sliceUpdate(base, update): out = base with update written over the slice (ints: start, step per axis).
void slice_update(const Instr& instr, const Inputs& in, ArrayDesc& out);
void concatenate(const Instr& instr, const Inputs& in, ArrayDesc& out);
// matmul.cc
void matmul(const Instr& instr, const Inputs& in, ArrayDesc& out);

}  // namespace tessera::cpu
