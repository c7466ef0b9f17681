// @file Scans on the gpu (cumsum, cumprod, cummax, cummin, logcumsumexp along one axis, inclusive
// or exclusive, either direction) with the cpu's semantics and order of operations (cpu/scan.cc):
// floating scans accumulate in double, integer sums and products wrap in 64 bits. Many lines: one
// thread walks each line along the axis, so results equal the cpu's; neighbouring threads take
// neighbouring lines (the inner axes), which keeps reads and writes coalesced. A long axis with few
// lines (which would leave the gpu nearly idle, one thread walking millions of elements) is cut
// into chunks of 4,096 scanned by a block each: the chunks' totals, then each line's carries from
// chunk to chunk, then each chunk's scan from its carry (a fixed order, so the same bits every run).
// Max, min and integer scans equal the cpu's; floating sums and products are grouped otherwise than
// the cpu's loop, within the rounding of double accumulation (float32 results are rounded once
// from double, so they nearly always equal the cpu's; a float64 cumsum of non-negative terms may
// step down by an ulp where two groups meet, which the loop never does).
#include "device.cuh"

namespace tessera::cuda {
namespace {

enum ScanKind : int64_t { kSum = 0, kProd = 1, kMax = 2, kMin = 3, kLogAddExp = 4 };

template <class A, int K>
__device__ __forceinline__ A init() {
  if constexpr (K == kSum) return A(0);
  else if constexpr (K == kProd) return A(1);
  else if constexpr (K == kMax) {
    if constexpr (std::is_floating_point_v<A>) return -std::numeric_limits<A>::infinity();
    else return std::numeric_limits<A>::lowest();
  } else if constexpr (K == kMin) {
    if constexpr (std::is_floating_point_v<A>) return std::numeric_limits<A>::infinity();
    else return std::numeric_limits<A>::max();
  } else {
    return -std::numeric_limits<A>::infinity();
  }
}

template <class A, int K>
__device__ __forceinline__ A step(A a, A v) {
  if constexpr (K == kSum) {
    if constexpr (std::is_integral_v<A>) return A(uint64_t(a) + uint64_t(v));
    else return a + v;
  } else if constexpr (K == kProd) {
    if constexpr (std::is_integral_v<A>) return A(uint64_t(a) * uint64_t(v));
    else return a * v;
  } else if constexpr (K == kMax || K == kMin) {
    if constexpr (std::is_floating_point_v<A>) { if (isnan(v) || isnan(a)) return v + a; }
    if constexpr (K == kMax) return v > a ? v : a;
    else return v < a ? v : a;
  } else {
    if (isnan(a) || isnan(v)) return a + v;
    const A m = a > v ? a : v;
    if (isinf(m)) return m;  // both -inf -> -inf; any +inf -> +inf
    return m + log1p(exp(-fabs(a - v)));
  }
}

// Line l (row-major over x's other axes, g's operand 0 its offset in x) writes out[o, :, j]
// where o = l / inner, j = l % inner.
template <class T, class A, int K>
__global__ void __launch_bounds__(kThreads) scan_kernel(const T* x, T* out, int64_t lines, int64_t inner, int64_t n,
                                                        int64_t sx, Geometry g, bool reverse, bool inclusive) {
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t l = tid; l < lines; l += stride) {
    int64_t off[1];
    locate<1>(g, l, false, off);
    const int64_t o = l / inner, j = l % inner;
    T* ob = out + o * n * inner + j;
    A acc = init<A, K>();
    for (int64_t t = 0; t < n; ++t) {
      const int64_t k = reverse ? n - 1 - t : t;
      const A v = A(compute_t<T>(x[off[0] + k * sx]));
      if (inclusive) acc = step<A, K>(acc, v);
      if constexpr (is_half_v<T>) ob[k * inner] = convert<T>(acc);
      else ob[k * inner] = static_cast<T>(acc);
      if (!inclusive) acc = step<A, K>(acc, v);
    }
  }
}

// The blocked scan of few long lines. Block b takes chunk b % chunks of line b / chunks.
constexpr int kPer = 16;                       // elements per thread
constexpr int64_t kChunk = int64_t(kThreads) * kPer;

// Stages the chunk's values in scan order (as A) in s, and each thread's fold of its kPer of them
// in tot; returns the chunk's length.
template <class T, class A, int K>
__device__ int64_t stage_chunk(const T* x, int64_t n, int64_t sx, const Geometry& g, bool reverse, int64_t chunks, A* s, A* tot) {
  const int64_t line = blockIdx.x / chunks, p0 = (blockIdx.x % chunks) * kChunk, len = min(kChunk, n - p0);
  int64_t off[1];
  locate<1>(g, line, false, off);
  for (int64_t e = threadIdx.x; e < len; e += blockDim.x) {
    const int64_t p = p0 + e, k = reverse ? n - 1 - p : p;
    s[e] = A(compute_t<T>(x[off[0] + k * sx]));
  }
  __syncthreads();
  A acc = init<A, K>();
  for (int64_t e = int64_t(threadIdx.x) * kPer; e < min(len, int64_t(threadIdx.x + 1) * kPer); ++e) acc = step<A, K>(acc, s[e]);
  tot[threadIdx.x] = acc;
  __syncthreads();
  return len;
}

// Rewrites tot[0, kThreads) as exclusive prefixes folded from `start`, in order; returns the fold of
// all (one thread: the order is fixed).
template <class A, int K>
__device__ A exclusive_fold(A* tot, A start) {
  for (int t = 0; t < kThreads; ++t) {
    const A here = tot[t];
    tot[t] = start;
    start = step<A, K>(start, here);
  }
  return start;
}

template <class T, class A, int K>
__global__ void __launch_bounds__(kThreads) chunk_totals_kernel(const T* x, int64_t n, int64_t sx, Geometry g, bool reverse,
                                                                int64_t chunks, A* totals) {
  __shared__ A s[kChunk];
  __shared__ A tot[kThreads];
  stage_chunk<T, A, K>(x, n, sx, g, reverse, chunks, s, tot);
  if (threadIdx.x == 0) totals[blockIdx.x] = exclusive_fold<A, K>(tot, init<A, K>());
}

// A block per line: each chunk's total becomes the fold of the totals before it. Each thread folds
// a run of totals, thread 0 the threads' folds in order, then each thread rewrites its run.
template <class A, int K>
__global__ void __launch_bounds__(kThreads) chunk_carries_kernel(A* totals, int64_t chunks) {
  __shared__ A tot[kThreads];
  A* line = totals + blockIdx.x * chunks;
  const int64_t per = (chunks + kThreads - 1) / kThreads, lo = min(chunks, threadIdx.x * per), hi = min(chunks, lo + per);
  A acc = init<A, K>();
  for (int64_t c = lo; c < hi; ++c) acc = step<A, K>(acc, line[c]);
  tot[threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.x == 0) exclusive_fold<A, K>(tot, init<A, K>());
  __syncthreads();
  acc = tot[threadIdx.x];
  for (int64_t c = lo; c < hi; ++c) {
    const A t = line[c];
    line[c] = acc;
    acc = step<A, K>(acc, t);
  }
}

template <class T, class A, int K>
__global__ void __launch_bounds__(kThreads) chunk_scan_kernel(const T* x, T* out, int64_t inner, int64_t n, int64_t sx, Geometry g,
                                                              bool reverse, bool inclusive, int64_t chunks, const A* carries) {
  __shared__ A s[kChunk];
  __shared__ A tot[kThreads];
  const int64_t len = stage_chunk<T, A, K>(x, n, sx, g, reverse, chunks, s, tot);
  if (threadIdx.x == 0) exclusive_fold<A, K>(tot, carries[blockIdx.x]);  // the chunk's carry, then the threads before
  __syncthreads();
  A acc = tot[threadIdx.x];
  for (int64_t e = int64_t(threadIdx.x) * kPer; e < min(len, int64_t(threadIdx.x + 1) * kPer); ++e) {
    const A v = s[e];
    if (inclusive) acc = step<A, K>(acc, v);
    s[e] = acc;
    if (!inclusive) acc = step<A, K>(acc, v);
  }
  __syncthreads();
  const int64_t line = blockIdx.x / chunks, p0 = (blockIdx.x % chunks) * kChunk;
  T* ob = out + (line / inner) * n * inner + line % inner;
  for (int64_t e = threadIdx.x; e < len; e += blockDim.x) {
    const int64_t p = p0 + e, k = reverse ? n - 1 - p : p;
    if constexpr (is_half_v<T>) ob[k * inner] = convert<T>(s[e]);
    else ob[k * inner] = static_cast<T>(s[e]);
  }
}

template <class T, int K>
void launch(const Context& c, const ArrayDesc& x, int axis, bool reverse, bool inclusive, ArrayDesc& out) {
  constexpr bool kWide = K == kSum || K == kProd;
  using A = std::conditional_t<is_float_v<T>, double,
            std::conditional_t<kWide, std::conditional_t<std::is_signed_v<T>, int64_t, uint64_t>, T>>;
  Shape dims, st;
  int64_t inner = 1;
  for (int d = 0; d < x.ndim(); ++d) {
    if (d == axis) continue;
    dims.push_back(x.shape[d]), st.push_back(x.strides[d]);
    if (d > axis) inner *= x.shape[d];
  }
  const int64_t lines = out.size() / x.shape[axis];
  const Shape* sts[1] = {&st};
  const Geometry g = collapse(dims, sts, 1, "scan");
  const int64_t n = x.shape[axis];
  if (n >= 2048 && lines <= 16384) {  // few long lines: a block per chunk (above)
    const int64_t chunks = (n + kChunk - 1) / kChunk;
    auto totals = c.allocator->allocate(lines * chunks * sizeof(A));
    A* t = static_cast<A*>(totals->data);
    chunk_totals_kernel<T, A, K><<<static_cast<unsigned>(lines * chunks), kThreads, 0, c.stream>>>(x.data<T>(), n, x.strides[axis], g, reverse, chunks, t);
    check_launch("scan");
    chunk_carries_kernel<A, K><<<static_cast<unsigned>(lines), kThreads, 0, c.stream>>>(t, chunks);
    check_launch("scan");
    chunk_scan_kernel<T, A, K><<<static_cast<unsigned>(lines * chunks), kThreads, 0, c.stream>>>(x.data<T>(), out.data<T>(), inner, n, x.strides[axis], g,
                                                                          reverse, inclusive, chunks, t);
    check_launch("scan");
    return;  // (totals is released in stream order: kernels queued before its reuse read it)
  }
  scan_kernel<T, A, K><<<blocks_for(c, lines), kThreads, 0, c.stream>>>(x.data<T>(), out.data<T>(), lines, inner, x.shape[axis],
                                                                        x.strides[axis], g, reverse, inclusive);
  check_launch("scan");
}

template <int K>
void dispatch(const Context& c, const ArrayDesc& x, int axis, bool reverse, bool inclusive, ArrayDesc& out) {
  CUDA_DISPATCH(x.dtype, {
    if constexpr (K == kLogAddExp && !is_float_v<T>) throw std::runtime_error("scan: logaddexp is defined on floating dtypes (this is a bug)");
    else if constexpr ((K == kSum || K == kProd) && std::is_same_v<T, bool>) throw std::runtime_error("scan: bool sums and products are int32 (this is a bug)");
    else launch<T, K>(c, x, axis, reverse, inclusive, out);
  });
}

}  // namespace

void scan(const Context& c, const Instr& instr, const ArrayDesc& x, ArrayDesc& out) {
  if (instr.ints.size() != 4) throw std::runtime_error("scan expects 4 ints (this is a bug)");
  if (out.size() == 0) return;
  const int axis = static_cast<int>(instr.ints[1]);
  const bool reverse = instr.ints[2] != 0, inclusive = instr.ints[3] != 0;
  switch (instr.ints[0]) {
    case kSum: return dispatch<kSum>(c, x, axis, reverse, inclusive, out);
    case kProd: return dispatch<kProd>(c, x, axis, reverse, inclusive, out);
    case kMax: return dispatch<kMax>(c, x, axis, reverse, inclusive, out);
    case kMin: return dispatch<kMin>(c, x, axis, reverse, inclusive, out);
    case kLogAddExp: return dispatch<kLogAddExp>(c, x, axis, reverse, inclusive, out);
    default: throw std::runtime_error("scan: unknown kind (this is a bug)");
  }
}

}  // namespace tessera::cuda
