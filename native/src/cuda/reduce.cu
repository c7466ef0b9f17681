// @file Reductions on the gpu: sum, prod, max and min over a set of axes, with the cpu's
// semantics (cpu/combine.h): floating sums and products accumulate in double, integer ones in 64
// bits wrapping like NumPy, and max/min propagate NaN. Three layouts: a block per output element
// when the reduced axes are the inner ones (threads stride through the reduced elements, then a
// tree in shared memory), blocks of 32 neighbouring outputs when the kept axes are the inner ones
// (reduce_short_columns_kernel for up to 512 reduced elements, else reduce_columns_kernel), and a
// thread per output element when the reduction is short. Also argmax and argmin along one axis.
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "device.cuh"

namespace tessera::cuda {
namespace {

template <class T>
using acc_t = std::conditional_t<is_float_v<T>, double,
              std::conditional_t<std::is_same_v<T, bool>, int64_t,
              std::conditional_t<std::is_signed_v<T>, int64_t, uint64_t>>>;

struct SumR {
  template <class T> using Acc = acc_t<T>;
  template <class A> __device__ static A init() { return A(0); }
  template <class A> __device__ static A step(A acc, A v) {
    if constexpr (std::is_integral_v<A>) return A(uint64_t(acc) + uint64_t(v));
    else return acc + v;
  }
};
struct ProdR {
  template <class T> using Acc = acc_t<T>;
  template <class A> __device__ static A init() { return A(1); }
  template <class A> __device__ static A step(A acc, A v) {
    if constexpr (std::is_integral_v<A>) return A(uint64_t(acc) * uint64_t(v));
    else return acc * v;
  }
};
struct MaxR {
  template <class T> using Acc = compute_t<T>;
  template <class A> __device__ static A init() {
    if constexpr (std::is_floating_point_v<A>) return -std::numeric_limits<A>::infinity();
    else return std::numeric_limits<A>::lowest();
  }
  template <class A> __device__ static A step(A acc, A v) {
    if constexpr (std::is_floating_point_v<A>) { if (isnan(v) || isnan(acc)) return v + acc; }
    return v > acc ? v : acc;
  }
};
struct MinR {
  template <class T> using Acc = compute_t<T>;
  template <class A> __device__ static A init() {
    if constexpr (std::is_floating_point_v<A>) return std::numeric_limits<A>::infinity();
    else return std::numeric_limits<A>::max();
  }
  template <class A> __device__ static A step(A acc, A v) {
    if constexpr (std::is_floating_point_v<A>) { if (isnan(v) || isnan(acc)) return v + acc; }
    return v < acc ? v : acc;
  }
};

// Kept axes (operand 0 of `kept` is unused, operand 1 the input) and reduced axes of the input.
struct Axes {
  Geometry kept, red;
  int64_t n_out = 1, n_red = 1;
};

// Work item w is output w / segments, segment w % segments of its reduced elements. With one
// segment the block writes the output; with several (few outputs, long reductions: a full sum)
// it writes its partial accumulator, and finish() combines each output's partials.
template <class T, class R>
__global__ void __launch_bounds__(kThreads) reduce_block_kernel(const T* x, T* out, typename R::template Acc<T>* partial,
                                                                Axes ax, int64_t segments) {
  using A = typename R::template Acc<T>;
  __shared__ A sm[kThreads];
  const int64_t per = (ax.n_red + segments - 1) / segments;
  for (int64_t w = blockIdx.x; w < ax.n_out * segments; w += gridDim.x) {
    const int64_t o = w / segments, seg = w % segments;
    int64_t base[2];
    locate<2>(ax.kept, o, false, base);
    A acc = R::template init<A>();
    const int64_t end = min(ax.n_red, (seg + 1) * per);
    for (int64_t r = seg * per + threadIdx.x; r < end; r += blockDim.x) {
      int64_t off[2];
      locate<2>(ax.red, r, ax.n_red < (int64_t(1) << 32), off);
      acc = R::step(acc, A(compute_t<T>(x[base[1] + off[1]])));
    }
    sm[threadIdx.x] = acc;
    __syncthreads();
    for (int s = kThreads / 2; s > 0; s >>= 1) {
      if (threadIdx.x < s) sm[threadIdx.x] = R::step(sm[threadIdx.x], sm[threadIdx.x + s]);
      __syncthreads();
    }
    if (threadIdx.x == 0) {
      if (segments == 1) out[o] = convert<T>(sm[0]);
      else partial[w] = sm[0];
    }
    __syncthreads();  // sm is reused by the next work item
  }
}

// Reductions that keep the input's fastest axis (a bias's gradient: 128 columns summed over 2,048
// rows): a block takes 32 neighbouring outputs and one segment of their reduced elements, its
// kColRows rows of threads stride through the segment (a warp reads 32 neighbours at a time), and
// the rows' partials combine in a fixed order. With several segments, finish() combines them.
constexpr int kColRows = 8;
template <class T, class R>
__global__ void __launch_bounds__(32 * kColRows) reduce_columns_kernel(const T* x, T* out, typename R::template Acc<T>* partial,
                                                                      Axes ax, int64_t segments) {
  using A = typename R::template Acc<T>;
  __shared__ A part[kColRows][33];
  const int64_t o = blockIdx.x * int64_t(32) + threadIdx.x, seg = blockIdx.y;
  const int64_t per = (ax.n_red + segments - 1) / segments, end = min(ax.n_red, (seg + 1) * per);
  A acc = R::template init<A>();
  if (o < ax.n_out) {
    int64_t base[2];
    locate<2>(ax.kept, o, ax.n_out < (int64_t(1) << 32), base);
    const bool small = ax.n_red < (int64_t(1) << 32);
#pragma unroll 4
    for (int64_t r = seg * per + threadIdx.y; r < end; r += kColRows) {
      int64_t off[2];
      if (ax.red.nd == 1) off[1] = r * ax.red.st[1][0];
      else locate<2>(ax.red, r, small, off);
      acc = R::step(acc, A(compute_t<T>(x[base[1] + off[1]])));
    }
  }
  part[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && o < ax.n_out) {
    A t = part[0][threadIdx.x];
    for (int k = 1; k < kColRows; ++k) t = R::step(t, part[k][threadIdx.x]);
    if (segments == 1) out[o] = convert<T>(t);
    else partial[o * segments + seg] = t;
  }
}

// The same layout for short columns (at most kShortRows reduced elements: a training step's bias
// gradients over a batch of 256), in one launch: a block of 32 x 32 threads takes 32 neighbouring
// outputs, each thread loads its rows (every 32nd) eight at a time before adding any, and the 32
// rows' partials combine in a tree of fixed order. The segmented kernel and its finishing kernel
// took 5.5-6 us for [256, 512] (a thread's rows were a chain of loads it waited through in turn).
constexpr int kShortRows = 512;
template <class T, class R>
__global__ void __launch_bounds__(1024) reduce_short_columns_kernel(const T* x, T* out, Axes ax) {
  using A = typename R::template Acc<T>;
  constexpr int kLoads = 8;
  __shared__ A part[32][33];
  const int64_t o = blockIdx.x * int64_t(32) + threadIdx.x;
  A acc = R::template init<A>();
  if (o < ax.n_out) {
    int64_t base[2];
    locate<2>(ax.kept, o, ax.n_out < (int64_t(1) << 32), base);
    for (int64_t r0 = threadIdx.y; r0 < ax.n_red; r0 += 32 * kLoads) {
      A v[kLoads];
#pragma unroll
      for (int u = 0; u < kLoads; ++u) {
        const int64_t r = r0 + 32 * u;
        int64_t off[2] = {0, 0};
        if (r < ax.n_red) {
          if (ax.red.nd == 1) off[1] = r * ax.red.st[1][0];
          else locate<2>(ax.red, r, true, off);
        }
        v[u] = r < ax.n_red ? A(compute_t<T>(x[base[1] + off[1]])) : R::template init<A>();
      }
#pragma unroll
      for (int u = 0; u < kLoads; ++u) acc = R::step(acc, v[u]);
    }
  }
  part[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  for (int h = 16; h > 0; h >>= 1) {
    if (threadIdx.y < h) part[threadIdx.y][threadIdx.x] = R::step(part[threadIdx.y][threadIdx.x], part[threadIdx.y + h][threadIdx.x]);
    __syncthreads();
  }
  if (threadIdx.y == 0 && o < ax.n_out) out[o] = convert<T>(part[0][threadIdx.x]);
}

// Combines each output's partials pairwise, so a rounding error passes through log2(segments)
// additions rather than segments of them: in step h (1, 2, 4, ...) partial s, for s a multiple of
// 2h, takes in partial s + h. A thread per output (few partials each).
template <class T, class R>
__global__ void __launch_bounds__(kThreads) finish_kernel(typename R::template Acc<T>* partial, T* out, int64_t n_out,
                                                          int64_t segments) {
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t o = tid; o < n_out; o += step) {
    auto* p = partial + o * segments;
    for (int64_t h = 1; h < segments; h *= 2)
      for (int64_t s = 0; s + h < segments; s += 2 * h) p[s] = R::step(p[s], p[s + h]);
    out[o] = convert<T>(p[0]);
  }
}

// Any accumulator of at most 8 bytes (double, int64, a bool or half's compute type) shuffled as
// bits: down by h lanes, or from lane `src`.
template <class A>
__device__ unsigned long long bits_of(A v) {
  static_assert(sizeof(A) <= 8, "an accumulator of at most 8 bytes");
  unsigned long long bits = 0;
  memcpy(&bits, &v, sizeof(A));
  return bits;
}
template <class A>
__device__ A from_bits(unsigned long long bits) {
  A v;
  memcpy(&v, &bits, sizeof(A));
  return v;
}
template <class A>
__device__ A shuffle_down(A v, int h) { return from_bits<A>(__shfl_down_sync(0xffffffffu, bits_of(v), h)); }
template <class A>
__device__ A shuffle_from(A v, int src) { return from_bits<A>(__shfl_sync(0xffffffffu, bits_of(v), src)); }

// The same pairwise tree over lanes 0..n-1 of a warp (lane 0 ends with the result): lane s takes
// in lane s + h, as partial s takes in partial s + h above.
template <class R, class A>
__device__ A warp_tree(A v, int lane, int n) {
  for (int h = 1; h < 32; h *= 2) {
    const A other = shuffle_down(v, h);
    if ((lane & (2 * h - 1)) == 0 && lane + h < n) v = R::step(v, other);
  }
  return v;
}

// finish_kernel's tree with a warp per output, for 8 to 1,024 partials: partials s of each run of
// 32 are lanes s % 32 (steps h < 32 stay within a run), and the runs' results are then combined
// by the same tree (steps h >= 32). The same additions in the same order, with the partials in
// registers rather than a round trip to memory per addition (a bias gradient's 32 partials took
// 10 us that way).
template <class T, class R>
__global__ void __launch_bounds__(kThreads) finish_warps_kernel(const typename R::template Acc<T>* partial, T* out, int64_t n_out,
                                                                int64_t segments) {
  using A = typename R::template Acc<T>;
  const int lane = threadIdx.x & 31;
  const int64_t first = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) >> 5, warps = (int64_t(gridDim.x) * blockDim.x) >> 5;
  const int runs = static_cast<int>((segments + 31) / 32);
  for (int64_t o = first; o < n_out; o += warps) {  // the same o for the whole warp
    const A* p = partial + o * segments;
    A mine = A();  // lane r: run r's result
    for (int r = 0; r < runs; ++r) {
      const int64_t left = segments - int64_t(r) * 32;
      const int n = left < 32 ? static_cast<int>(left) : 32;
      const A run = shuffle_from(warp_tree<R>(lane < n ? p[int64_t(r) * 32 + lane] : A(), lane, n), 0);
      if (lane == r) mine = run;
    }
    const A total = warp_tree<R>(mine, lane, runs);
    if (lane == 0) out[o] = convert<T>(total);
  }
}

// Queues the combination of n_out outputs' partials (`segments` each).
template <class T, class R>
void finish(const Context& c, typename R::template Acc<T>* partial, T* out, int64_t n_out, int64_t segments) {
  if (segments >= 8 && segments <= 1024)
    finish_warps_kernel<T, R><<<blocks_for(c, n_out * 32), kThreads, 0, c.stream>>>(partial, out, n_out, segments);
  else
    finish_kernel<T, R><<<blocks_for(c, n_out), kThreads, 0, c.stream>>>(partial, out, n_out, segments);
}

template <class T, class R>
__global__ void __launch_bounds__(kThreads) reduce_thread_kernel(const T* x, T* out, Axes ax) {
  using A = typename R::template Acc<T>;
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, step = int64_t(gridDim.x) * blockDim.x;
  const int nr = ax.red.nd;
  for (int64_t o = tid; o < ax.n_out; o += step) {
    int64_t base[2];
    locate<2>(ax.kept, o, ax.n_out < (int64_t(1) << 32), base);
    A acc = R::template init<A>();
    if (ax.n_red > 0) {
      // An odometer over the reduced axes: no division per element.
      int64_t idx[kMaxDims] = {}, off = base[1];
      const int64_t inner = nr ? ax.red.shape[nr - 1] : 1, inner_st = nr ? ax.red.st[1][nr - 1] : 0;
      for (int64_t r = 0; r < ax.n_red; r += inner) {
        for (int64_t i = 0; i < inner; ++i) acc = R::step(acc, A(compute_t<T>(x[off + i * inner_st])));
        for (int d = nr - 2; d >= 0; --d) {
          off += ax.red.st[1][d];
          if (++idx[d] < ax.red.shape[d]) break;
          off -= ax.red.st[1][d] * ax.red.shape[d];
          idx[d] = 0;
        }
      }
    }
    out[o] = convert<T>(acc);
  }
}

// Index of the first maximum (minimum) along one axis; a NaN counts as the extreme (the first
// one wins), as on the cpu. One thread per output: neighbouring outputs are usually neighbours.
template <class T, bool IsMax>
__global__ void __launch_bounds__(kThreads) arg_kernel(const T* x, uint32_t* out, Geometry kept, int64_t n_out, int64_t len,
                                                       int64_t stride) {
  using C = compute_t<T>;
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t o = tid; o < n_out; o += step) {
    int64_t base[2];
    locate<2>(kept, o, n_out < (int64_t(1) << 32), base);
    int64_t best = 0;
    C bv = C(x[base[1]]);
    for (int64_t i = 1; i < len; ++i) {
      const C v = C(x[base[1] + i * stride]);
      if constexpr (is_float_v<T>) {
        if (isnan(bv)) break;
        if (isnan(v)) { best = i; break; }
      }
      if (IsMax ? v > bv : v < bv) best = i, bv = v;
    }
    out[o] = static_cast<uint32_t>(best);
  }
}

template <class T, class R>
void launch(const Context& c, const ArrayDesc& x, ArrayDesc& out, const std::vector<int64_t>& axes, const char* name) {
  std::vector<bool> reduced(x.ndim(), false);
  for (int64_t a : axes) {
    if (a < 0 || a >= x.ndim()) throw std::runtime_error(std::string(name) + ": axis out of range (this is a bug)");
    reduced[a] = true;
  }
  Shape ks, kst, rs, rst;
  for (int d = 0; d < x.ndim(); ++d) {
    (reduced[d] ? rs : ks).push_back(x.shape[d]);
    (reduced[d] ? rst : kst).push_back(x.strides[d]);
  }
  Axes ax;
  Shape kc = row_major_strides(ks), rc = row_major_strides(rs);
  const Shape* kp[2] = {&kc, &kst};
  const Shape* rp[2] = {&rc, &rst};
  ax.kept = collapse(ks, kp, 2, name);
  ax.red = collapse(rs, rp, 2, name);
  for (auto d : ks) ax.n_out *= d;
  for (auto d : rs) ax.n_red *= d;
  if (ax.n_out == 0) return;
  // The inner kept axis is the input's fastest-moving one: neighbouring outputs are neighbours.
  int64_t kept_min = INT64_MAX, red_min = INT64_MAX;
  for (int d = 0; d < ax.kept.nd; ++d) kept_min = std::min(kept_min, std::abs(ax.kept.st[1][d]));
  for (int d = 0; d < ax.red.nd; ++d) red_min = std::min(red_min, std::abs(ax.red.st[1][d]));
  using A = typename R::template Acc<T>;
  if (ax.n_red <= 16) {
    reduce_thread_kernel<T, R><<<blocks_for(c, ax.n_out), kThreads, 0, c.stream>>>(x.data<T>(), out.data<T>(), ax);
  } else if (kept_min < red_min && ax.n_red <= kShortRows) {
    const int64_t col_blocks = (ax.n_out + 31) / 32;
    if (col_blocks > INT32_MAX) throw std::runtime_error(std::string(name) + ": too many outputs for one launch");
    reduce_short_columns_kernel<T, R><<<static_cast<unsigned>(col_blocks), dim3(32, 32), 0, c.stream>>>(x.data<T>(), out.data<T>(), ax);
  } else if (kept_min < red_min) {
    // Segments of at least 64 reduced elements (8 per thread: the latency of a thread's loads in a
    // row is what a column reduction waits on), enough of them to give the chip ~2 blocks per
    // multiprocessor.
    const int64_t col_blocks = (ax.n_out + 31) / 32;
    const int64_t segments = std::max<int64_t>(1, std::min<int64_t>(ax.n_red / 64, (2 * c.num_sms + col_blocks - 1) / col_blocks));
    std::shared_ptr<Storage> partial;
    if (segments > 1) partial = c.allocator->allocate(sizeof(A) * ax.n_out * segments);
    A* pp = segments > 1 ? static_cast<A*>(partial->data) : nullptr;
    if (col_blocks > INT32_MAX) throw std::runtime_error(std::string(name) + ": too many outputs for one launch");
    const dim3 grid(static_cast<unsigned>(col_blocks), static_cast<unsigned>(segments)), block(32, kColRows);
    reduce_columns_kernel<T, R><<<grid, block, 0, c.stream>>>(x.data<T>(), out.data<T>(), pp, ax, segments);
    if (segments > 1) {
      check_launch(name);
      finish<T, R>(c, pp, out.data<T>(), ax.n_out, segments);
    }
  } else {
    // Few outputs over many elements: split each output's elements over enough blocks to fill
    // the chip (about 4 per multiprocessor), each taking at least 4K elements: a thread then adds
    // at most 16 of them in a row, which keeps float sums' rounding within the cpu's bounds.
    int64_t segments = 1;
    if (ax.n_out < 4 * c.num_sms && ax.n_red >= (int64_t(1) << 13))
      segments = std::max<int64_t>(1, std::min((ax.n_red >> 12), (4 * c.num_sms + ax.n_out - 1) / ax.n_out));
    std::shared_ptr<Storage> partial;  // released after the launches are queued: stream-ordered
    if (segments > 1) partial = c.allocator->allocate(sizeof(A) * ax.n_out * segments);
    A* pp = segments > 1 ? static_cast<A*>(partial->data) : nullptr;
    const int blocks = static_cast<int>(std::min<int64_t>(ax.n_out * segments, int64_t(c.num_sms) * 16));
    reduce_block_kernel<T, R><<<blocks, kThreads, 0, c.stream>>>(x.data<T>(), out.data<T>(), pp, ax, segments);
    if (segments > 1) {
      check_launch(name);
      finish<T, R>(c, pp, out.data<T>(), ax.n_out, segments);
    }
  }
  check_launch(name);
}

template <class R>
void dispatch(const Context& c, const ArrayDesc& x, ArrayDesc& out, const std::vector<int64_t>& axes, const char* name) {
  if (x.dtype != out.dtype) throw std::runtime_error(std::string(name) + ": output dtype differs (this is a bug)");
  CUDA_DISPATCH(x.dtype, launch<T, R>(c, x, out, axes, name));
}

void arg_reduce(const Context& c, const Instr& instr, const ArrayDesc& x, ArrayDesc& out) {
  const char* name = instr.op == Op::Argmax ? "argmax" : "argmin";
  if (instr.ints.size() != 1) throw std::runtime_error(std::string(name) + ": expected one axis (this is a bug)");
  const int axis = static_cast<int>(instr.ints[0]);
  if (x.shape[axis] == 0) throw std::runtime_error(std::string("attempt to get the arg-extreme of an empty axis"));
  Shape ks, kst;
  for (int d = 0; d < x.ndim(); ++d)
    if (d != axis) ks.push_back(x.shape[d]), kst.push_back(x.strides[d]);
  const Shape kc = row_major_strides(ks);
  const Shape* kp[2] = {&kc, &kst};
  const Geometry kept = collapse(ks, kp, 2, name);
  const int64_t n_out = out.size();
  if (n_out == 0) return;
  const int blocks = blocks_for(c, n_out);
  const bool is_max = instr.op == Op::Argmax;
  CUDA_DISPATCH(x.dtype, {
    if (is_max) arg_kernel<T, true><<<blocks, kThreads, 0, c.stream>>>(x.data<T>(), out.data<uint32_t>(), kept, n_out, x.shape[axis], x.strides[axis]);
    else arg_kernel<T, false><<<blocks, kThreads, 0, c.stream>>>(x.data<T>(), out.data<uint32_t>(), kept, n_out, x.shape[axis], x.strides[axis]);
  });
  check_launch(name);
}

}  // namespace

void reduce(const Context& c, const Instr& instr, const ArrayDesc& x, ArrayDesc& out) {
  switch (instr.op) {
    case Op::ReduceSum: return dispatch<SumR>(c, x, out, instr.ints, "reduceSum");
    case Op::ReduceProd: return dispatch<ProdR>(c, x, out, instr.ints, "reduceProd");
    case Op::ReduceMax: return dispatch<MaxR>(c, x, out, instr.ints, "reduceMax");
    case Op::ReduceMin: return dispatch<MinR>(c, x, out, instr.ints, "reduceMin");
    case Op::Argmax: case Op::Argmin: return arg_reduce(c, instr, x, out);
    default: throw std::runtime_error(std::string(op_name(static_cast<int32_t>(instr.op))) + " is not a reduction (this is a bug)");
  }
}

}  // namespace tessera::cuda
