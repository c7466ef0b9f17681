// @file The strided iteration every cpu kernel is built on: collapse mergeable axes, then hand
// out rows (the last, collapsed axis) to the thread pool with each operand's offset and stride.
#pragma once
#include <cstdint>
#include <initializer_list>

#include "../array.h"
#include "threads.h"

namespace tessera::cpu {

// row(offsets, n, inner_strides): operand k's elements sit at offsets[k] + i * inner_strides[k].
using RowFn = FunctionRef<void(const int64_t* offsets, int64_t n, const int64_t* inner_strides)>;

// Calls row() for every row of the iteration space `shape`, given each operand's strides (at most
// 4 operands, offsets in elements). Axes of size 1 are dropped and adjacent axes merged when every
// operand allows it, so a contiguous array is one long row. Rows are spread over the pool in
// chunks of at least `grain` elements. Type-erased (without allocating: FunctionRef) on purpose: one instantiation serves every
// kernel, which keeps the build fast; the per-row indirect call is noise next to a row's work.
void strided_rows(const Shape& shape, std::initializer_list<const Shape*> strides, RowFn row, int64_t grain = 32768);

}  // namespace tessera::cpu
