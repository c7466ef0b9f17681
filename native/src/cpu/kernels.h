// @file The cpu kernel entry points, one per family; cpu/backend.cc routes instructions here.
#pragma once
#include <vector>

#include "../array.h"
#include "../program.h"

namespace tessera::cpu {

// elementwise.cc: unary, predicate, binary, compare, ternary and cast ops. `out` is allocated.
void elementwise(const Instr& instr, const Inputs& in, ArrayDesc& out);
// fused.cc: a chain of elementwise ops over one shape in one pass (layout in fused.h).
void fused(const Instr& instr, const Inputs& in, const Outputs& outs, Scalars sc);
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
// indexing.cc: gather(x, idx) along ints[0] (out[.., i, ..] = x[.., idx[.., i, ..], ..]; idx has
// out's shape) and scatter(base, idx, updates) along ints[0] combining with mode ints[1].
enum ScatterMode : int64_t { kScatterSet = 0, kScatterAdd = 1, kScatterMul = 2, kScatterMax = 3, kScatterMin = 4 };
void gather(const Instr& instr, const Inputs& in, ArrayDesc& out);
void scatter(const Instr& instr, const Inputs& in, ArrayDesc& out);

// random.cc: randomBits(key [K..., 2] uint32) -> [K..., S...] uint32 Threefry-2x32 words.
void random_bits(const Instr& instr, const Inputs& in, ArrayDesc& out);

// scan.cc: scan along ints[1] combining with ints[0] (a ScanKind); ints[2] reverse, ints[3] inclusive.
enum class ScanKind : int64_t { Sum = 0, Prod = 1, Max = 2, Min = 3, LogAddExp = 4 };
void scan(const Instr& instr, const Inputs& in, ArrayDesc& out);
// sort(x) -> [values, uint32 indices] along ints[0]: stable, NaN last. With ints [axis, kth,
// sort_tail], a selection: only position kth is the sorted one (the rest split around it).
void sort(const Instr& instr, const Inputs& in, const Outputs& outs);

// conv.cc: conv(x [N, S..., Cin], w [Cout, K..., Cin/groups]) -> [N, O..., Cout]; ints: D, groups,
// flip, then per spatial dim stride, padLo, padHi, kernelDilation, inputDilation (see executor.cc).
void conv(const Instr& instr, const Inputs& in, ArrayDesc& out);
// convWeightGrad(x [N, S..., Cin], ct [N, O..., Cout]) -> [Cout, K..., Cin/groups]: conv's weight
// cotangent, ints as conv's.
void conv_weight_grad(const Instr& instr, const Inputs& in, ArrayDesc& out);
// window(x [N, S..., C]) -> [N, O..., K..., C] and windowAdd, its transpose; ints: D, kernel, stride, dilation.
void window(const Instr& instr, const Inputs& in, ArrayDesc& out);
void window_add(const Instr& instr, const Inputs& in, ArrayDesc& out);

// linalg.cc: cholesky, inv, solve, qr, eigh, svd on the last two axes (float32/float64), batched
// over the leading ones; instr.op picks the decomposition, outs as the primitives list them.
void linalg(const Instr& instr, const Inputs& in, const Outputs& outs);

// fast.cc: the fused ops, on the last axis (float32/float64), as executor.cc's check_operands
// describes them: layerNorm(Bwd), rmsNorm(Bwd), rope, softmax, logsumexp, attention(Bwd).
void fast(const Instr& instr, const Inputs& in, const Outputs& outs, Scalars sc);

}  // namespace tessera::cpu
