// @file The cpu backend's thread pool: one pool sized to the machine, used by every kernel.
#pragma once
#include <cstdint>
#include "../function_ref.h"

namespace tessera::cpu {

// Number of worker threads (including the caller) that parallel_for spreads work over.
int num_threads();

// Runs fn(begin, end) over disjoint chunks covering [0, n), on the pool and the calling thread,
// and returns when all chunks are done. Work smaller than `grain` items runs inline on the
// caller. Nested calls (from inside fn) run inline, so kernels may call each other freely.
// An exception thrown by fn is rethrown on the caller after every chunk has finished.
void parallel_for(int64_t n, int64_t grain, FunctionRef<void(int64_t, int64_t)> fn);

}  // namespace tessera::cpu
