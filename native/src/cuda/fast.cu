// @file The fused row kernels on the gpu (cpu/fast.cc's semantics): layerNorm, rmsNorm and their
// backward passes, rope, softmax, softmaxBwd and logsumexp over the last axis, float32/float64.
// A group of threads takes a row (a warp for rows up to 1024 elements, the whole block for longer
// ones), reduces its statistics with shuffles (and shared memory across warps), and writes it in
// one more pass. Strided operands are first copied contiguous. Weights, biases and rope offsets
// may carry leading axes (a prefix of x's): each applies to its own group of consecutive rows.
// The norms' dw and db sum over rows: a second kernel takes (row segment, column) pairs, so
// neighbouring threads read neighbouring columns, and a third adds the segments in order.
#include <algorithm>
#include <cstring>
#include <memory>
#include <string>

#include "device.cuh"
#include "group_reduce.cuh"

namespace tessera::cuda {
namespace {


// for (row r of this group) body: rows are spread over groups of G threads; `lane` is the
// thread's place in its group.
#define FOR_ROWS(G, rows)                                                          \
  const int lane = threadIdx.x % (G);                                              \
  const int64_t per_block = kThreads / (G);                                        \
  for (int64_t r = blockIdx.x * per_block + threadIdx.x / (G); r < (rows); r += gridDim.x * per_block)

template <class T, int G, bool kLayer>
__global__ void __launch_bounds__(kThreads) norm_fwd_kernel(const T* x, const T* w, const T* b, T* y, int64_t rows, int64_t n,
                                                            int64_t per_group, T eps) {
  __shared__ T sm[kThreads / 32];
  FOR_ROWS(G, rows) {
    const T* xr = x + r * n;
    T* yr = y + r * n;
    const int64_t gi = r / per_group;
    T mean = 0;
    if constexpr (kLayer) {
      T s = 0;
      for (int64_t j = lane; j < n; j += G) s += xr[j];
      mean = group_reduce<G>(s, Add{}, sm) / static_cast<T>(n);
    }
    T s2 = 0;
    for (int64_t j = lane; j < n; j += G) {
      const T d = xr[j] - mean;
      s2 += d * d;
    }
    const T rs = T(1) / sqrt(group_reduce<G>(s2, Add{}, sm) / static_cast<T>(n) + eps);
    for (int64_t j = lane; j < n; j += G) {
      T v = (xr[j] - mean) * rs;
      if (w) v *= w[gi * n + j];
      if (b) v += b[gi * n + j];
      yr[j] = v;
    }
  }
}

// a + b rounded once, never contracted with the multiply that made a (nvcc fuses a * b + c).
__device__ __forceinline__ float add_rn(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ double add_rn(double a, double b) { return __dadd_rn(a, b); }

// dx per row, and the row's (mean, 1/std) into stats for the parameter gradients. With `pw` given
// (one group of parameters), the block also sums its rows' parameter-gradient terms (g xhat, or
// g x / rms; and g) per column into pw[blockIdx.x * n + j] and pb, which sum_segments then
// combines across blocks: each group of G threads (a row slot) adds its rows into a slice of
// dynamic shared memory of its own, and the slices are added in slot order at the end.
template <class T, int G, bool kLayer>
__global__ void __launch_bounds__(kThreads) norm_bwd_kernel(const T* x, const T* w, const T* g, const T* plus, T* dx, T* stats,
                                                            int64_t rows, int64_t n, int64_t per_group, T eps, double* pw, double* pb) {
  __shared__ T sm[kThreads / 32];
  extern __shared__ double slices[];  // [slots][n] of dw terms, then (layer) [slots][n] of db terms
  constexpr int kSlots = kThreads / G;
  const int slot = threadIdx.x / G;
  if (pw) {
    for (int64_t i = threadIdx.x; i < kSlots * n * (kLayer ? 2 : 1); i += kThreads) slices[i] = 0;
    __syncthreads();
  }
  FOR_ROWS(G, rows) {
    const T *xr = x + r * n, *gr = g + r * n;
    const T* wr = w ? w + (r / per_group) * n : nullptr;
    T mean = 0;
    if constexpr (kLayer) {
      T s = 0;
      for (int64_t j = lane; j < n; j += G) s += xr[j];
      mean = group_reduce<G>(s, Add{}, sm) / static_cast<T>(n);
    }
    T s2 = 0;
    for (int64_t j = lane; j < n; j += G) {
      const T d = xr[j] - mean;
      s2 += d * d;
    }
    const T rs = T(1) / sqrt(group_reduce<G>(s2, Add{}, sm) / static_cast<T>(n) + eps);
    if (lane == 0) stats[2 * r] = mean, stats[2 * r + 1] = rs;
    if (pw)
      for (int64_t j = lane; j < n; j += G) {
        const double gv = gr[j];
        slices[slot * n + j] += gv * (double(xr[j]) - double(mean)) * double(rs);
        if constexpr (kLayer) slices[(kSlots + slot) * n + j] += gv;
      }
    T a1 = 0, a2 = 0;
    for (int64_t j = lane; j < n; j += G) {
      const T gh = wr ? gr[j] * wr[j] : gr[j];
      if constexpr (kLayer) a1 += gh, a2 += gh * (xr[j] - mean) * rs;
      else a2 += gh * xr[j];
    }
    T* dr = dx + r * n;
    const T* pr = plus ? plus + r * n : nullptr;
    // dx, then the addend (a residual's gradient) added with its own rounding, as a separate add would.
    auto store = [&](int64_t j, T v) { dr[j] = pr ? add_rn(v, pr[j]) : v; };
    if constexpr (kLayer) {
      const T m1 = group_reduce<G>(a1, Add{}, sm) / static_cast<T>(n), m2 = group_reduce<G>(a2, Add{}, sm) / static_cast<T>(n);
      for (int64_t j = lane; j < n; j += G) {
        const T gh = wr ? gr[j] * wr[j] : gr[j];
        store(j, rs * (gh - m1 - (xr[j] - mean) * rs * m2));
      }
    } else {  // dx = r g w - x r^3 mean(g w x)
      const T c = rs * rs * rs * group_reduce<G>(a2, Add{}, sm) / static_cast<T>(n);
      for (int64_t j = lane; j < n; j += G) store(j, rs * (wr ? gr[j] * wr[j] : gr[j]) - xr[j] * c);
    }
  }
  if (!pw) return;
  __syncthreads();
  for (int64_t j = threadIdx.x; j < n; j += kThreads) {
    double aw = 0, ab = 0;
    for (int q = 0; q < kSlots; ++q) {
      aw += slices[q * n + j];
      if constexpr (kLayer) ab += slices[(kSlots + q) * n + j];
    }
    pw[blockIdx.x * n + j] = aw;
    if constexpr (kLayer) pb[blockIdx.x * n + j] = ab;
  }
}

// Partial sums over segment s of each group's rows: dw += g xhat (layer) or g x / rms; db += g.
template <class T, bool kLayer>
__global__ void __launch_bounds__(kThreads) norm_param_kernel(const T* x, const T* g, const T* stats, double* pw, double* pb,
                                                              int64_t psize, int64_t n, int64_t per_group, int64_t segs) {
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = tid; i < segs * psize; i += stride) {
    const int64_t s = i / psize, c = i % psize, gi = c / n, j = c % n;
    const int64_t r0 = gi * per_group + per_group * s / segs, r1 = gi * per_group + per_group * (s + 1) / segs;
    double aw = 0, ab = 0;
    for (int64_t r = r0; r < r1; ++r) {
      const double xv = x[r * n + j], gv = g[r * n + j];
      aw += gv * (xv - double(stats[2 * r])) * double(stats[2 * r + 1]);
      if constexpr (kLayer) ab += gv;
    }
    pw[i] = aw;
    if constexpr (kLayer) pb[i] = ab;
  }
}

// out_k[c] = the sum over segments s of p[(k segs + s) psize + c], for plane k (dw, then db): a
// block takes 32 columns, each of its 8 rows of threads a stride of the segments (neighbouring
// threads read neighbouring columns), and a column's 8 partials are added in a fixed order. One
// thread per column walking all segments took 20-30 us for 128 columns of 256 segments.
constexpr int kSegRows = 8;
// The most shared memory norm_bwd_kernel's parameter-gradient slices take (a launch's default cap).
constexpr int64_t kFoldBytes = 48 << 10;
template <class T>
__global__ void __launch_bounds__(32 * kSegRows) sum_segments_kernel(const double* p, T* out0, T* out1, int64_t psize, int64_t segs) {
  __shared__ double part[kSegRows][33];
  const int64_t c = blockIdx.x * int64_t(32) + threadIdx.x;
  const double* plane = p + blockIdx.y * segs * psize;
  double a = 0;
  if (c < psize)
    for (int64_t s = threadIdx.y; s < segs; s += kSegRows) a += plane[s * psize + c];
  part[threadIdx.y][threadIdx.x] = a;
  __syncthreads();
  if (threadIdx.y == 0 && c < psize) {
    double t = part[0][threadIdx.x];
    for (int k = 1; k < kSegRows; ++k) t += part[k][threadIdx.x];
    (blockIdx.y ? out1 : out0)[c] = static_cast<T>(t);
  }
}

// Row r of x [..., L, D] is position l = r % L of group (r / L) / per_group.
template <class T>
__global__ void __launch_bounds__(kThreads) rope_kernel(const T* x, T* y, int64_t total, int64_t D, int64_t L, int64_t dims,
                                                        bool traditional, double base_log, double scale, const double* offs,
                                                        double off0, int64_t per_group) {
  const int64_t half = dims / 2;
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = tid; i < total; i += stride) {
    const int64_t r = i / D, d = i % D;
    const T* xr = x + r * D;
    if (d >= dims) {
      y[i] = xr[d];
      continue;
    }
    const double off = offs ? offs[(r / L) / per_group] : off0;
    const double pos = (off + static_cast<double>(r % L)) * scale;
    const int64_t p = traditional ? d / 2 : d % half;
    const double th = pos * exp(-static_cast<double>(p) * base_log / static_cast<double>(half));
    const T c = static_cast<T>(cos(th)), s = static_cast<T>(sin(th));
    const T a = traditional ? xr[2 * p] : xr[p], b = traditional ? xr[2 * p + 1] : xr[p + half];
    const bool first = traditional ? (d % 2 == 0) : (d < half);
    y[i] = first ? a * c - b * s : a * s + b * c;
  }
}

// softmax (kLse false: y = exp(x - max) / sum) or logsumexp (one value per row, shifted by 0 when
// the maximum is infinite).
template <class T, int G, bool kLse>
__global__ void __launch_bounds__(kThreads) softmax_kernel(const T* x, T* y, int64_t rows, int64_t n) {
  __shared__ T sm[kThreads / 32];
  FOR_ROWS(G, rows) {
    const T* xr = x + r * n;
    T m = -std::numeric_limits<T>::infinity();
    for (int64_t j = lane; j < n; j += G) m = fmax(m, xr[j]);
    m = group_reduce<G>(m, Max{}, sm);
    if (kLse && isinf(m)) m = 0;
    T s = 0;
    for (int64_t j = lane; j < n; j += G) {
      const T e = exp(xr[j] - m);
      if constexpr (!kLse) y[r * n + j] = e;
      s += e;
    }
    s = group_reduce<G>(s, Add{}, sm);
    if constexpr (kLse) {
      if (lane == 0) y[r] = m + log(s);
    } else {
      const T inv = T(1) / s;
      for (int64_t j = lane; j < n; j += G) y[r * n + j] *= inv;
    }
  }
}

template <class T, int G>
__global__ void __launch_bounds__(kThreads) softmax_bwd_kernel(const T* y, const T* g, T* dx, int64_t rows, int64_t n) {
  __shared__ T sm[kThreads / 32];
  FOR_ROWS(G, rows) {
    const T *yr = y + r * n, *gr = g + r * n;
    T s = 0;
    for (int64_t j = lane; j < n; j += G) s += yr[j] * gr[j];
    s = group_reduce<G>(s, Add{}, sm);
    for (int64_t j = lane; j < n; j += G) dx[r * n + j] = yr[j] * (gr[j] - s);
  }
}

// Launches kernel<G> for rows of n elements: a warp per row up to 1024 elements, else a block.
template <class Launch>
void by_row_length(const Context& c, int64_t rows, int64_t n, Launch launch) {
  if (rows == 0) return;
  if (n <= 1024) launch(std::integral_constant<int, 32>{}, blocks_for(c, rows * 32));
  else launch(std::integral_constant<int, kThreads>{}, static_cast<int>(std::min<int64_t>(rows, int64_t(c.num_sms) * 16)));
}

template <class T>
const T* ptr(const ArrayDesc* a) { return a ? a->data<T>() : nullptr; }

template <class T>
void norm_fwd(const Context& c, bool layer, const Instr& instr, const Inputs& in, ArrayDesc& out, T eps) {
  if (out.size() == 0) return;
  const bool has_w = instr.ints[0] != 0, has_b = layer && instr.ints[1] != 0;
  const ArrayDesc x = contiguous(c, *in[0]);
  std::unique_ptr<ArrayDesc> w, b;
  if (has_w) w = std::make_unique<ArrayDesc>(contiguous(c, *in[1]));
  if (has_b) b = std::make_unique<ArrayDesc>(contiguous(c, *in[1 + has_w]));
  const int64_t n = x.shape.back(), rows = x.size() / n;
  const ArrayDesc* p = w ? w.get() : b.get();
  const int64_t per_group = p ? rows / std::max<int64_t>(1, p->size() / n) : std::max<int64_t>(1, rows);
  by_row_length(c, rows, n, [&](auto g, int blocks) {
    constexpr int G = decltype(g)::value;
    if (layer) norm_fwd_kernel<T, G, true><<<blocks, kThreads, 0, c.stream>>>(x.data<T>(), ptr<T>(w.get()), ptr<T>(b.get()),
                                                                             out.data<T>(), rows, n, per_group, eps);
    else norm_fwd_kernel<T, G, false><<<blocks, kThreads, 0, c.stream>>>(x.data<T>(), ptr<T>(w.get()), nullptr, out.data<T>(),
                                                                        rows, n, per_group, eps);
  });
  check_launch(layer ? "layerNorm" : "rmsNorm");
}

template <class T>
void norm_bwd(const Context& c, bool layer, const Instr& instr, const Inputs& in, const Outputs& outs, T eps) {
  const bool has_w = instr.ints[0] != 0;
  const char* name = layer ? "layerNormBwd" : "rmsNormBwd";
  ArrayDesc &dx = *outs[0], &dw = *outs[1];
  ArrayDesc* db = layer ? outs[2] : nullptr;
  const int64_t psize = dw.size();
  if (in[0]->size() == 0) {
    if (psize > 0) {
      check(cudaMemsetAsync(dw.data<T>(), 0, psize * sizeof(T), c.stream), name);
      if (db) check(cudaMemsetAsync(db->data<T>(), 0, psize * sizeof(T), c.stream), name);
    }
    return;
  }
  const ArrayDesc x = contiguous(c, *in[0]), g = contiguous(c, *in[1 + has_w]);
  // ints[1]: an addend follows g (the fusion pass's: dx + a residual's gradient, epilogue.ts).
  const bool has_plus = instr.ints.size() > 1 && instr.ints[1];
  const ArrayDesc plus = has_plus ? contiguous(c, *in.back()) : ArrayDesc();
  const T* pp = has_plus ? plus.data<T>() : nullptr;
  std::unique_ptr<ArrayDesc> w;
  if (has_w) w = std::make_unique<ArrayDesc>(contiguous(c, *in[1]));
  const int64_t n = x.shape.back(), rows = x.size() / n, groups = psize / n, per_group = rows / groups;
  auto stats = c.allocator->allocate(rows * 2 * sizeof(T));
  T* st = static_cast<T*>(stats->data);
  // One group of parameters whose per-slot column sums fit the shared memory: the backward kernel
  // sums the parameter gradients' terms too, and sum_segments combines its blocks' partials.
  const int64_t planes = layer ? 2 : 1, slots = n <= 1024 ? kThreads / 32 : 1;
  if (groups == 1 && slots * n * planes * int64_t(sizeof(double)) <= kFoldBytes) {
    by_row_length(c, rows, n, [&](auto gsz, int blocks) {
      constexpr int G = decltype(gsz)::value;
      auto partial = c.allocator->allocate(blocks * psize * sizeof(double) * planes);
      double* pw = static_cast<double*>(partial->data);
      double* pb = layer ? pw + blocks * psize : nullptr;
      const size_t smem = static_cast<size_t>((kThreads / G) * n * planes) * sizeof(double);
      if (layer) norm_bwd_kernel<T, G, true><<<blocks, kThreads, smem, c.stream>>>(x.data<T>(), ptr<T>(w.get()), g.data<T>(), pp, dx.data<T>(),
                                                                                  st, rows, n, per_group, eps, pw, pb);
      else norm_bwd_kernel<T, G, false><<<blocks, kThreads, smem, c.stream>>>(x.data<T>(), ptr<T>(w.get()), g.data<T>(), pp, dx.data<T>(),
                                                                             st, rows, n, per_group, eps, pw, pb);
      check_launch(name);
      const dim3 grid(static_cast<unsigned>((psize + 31) / 32), layer ? 2 : 1), block(32, kSegRows);
      sum_segments_kernel<T><<<grid, block, 0, c.stream>>>(pw, dw.data<T>(), layer ? db->data<T>() : nullptr, psize, blocks);
    });
    check_launch(name);
    return;
  }
  by_row_length(c, rows, n, [&](auto gsz, int blocks) {
    constexpr int G = decltype(gsz)::value;
    if (layer) norm_bwd_kernel<T, G, true><<<blocks, kThreads, 0, c.stream>>>(x.data<T>(), ptr<T>(w.get()), g.data<T>(), pp, dx.data<T>(),
                                                                             st, rows, n, per_group, eps, nullptr, nullptr);
    else norm_bwd_kernel<T, G, false><<<blocks, kThreads, 0, c.stream>>>(x.data<T>(), ptr<T>(w.get()), g.data<T>(), pp, dx.data<T>(),
                                                                        st, rows, n, per_group, eps, nullptr, nullptr);
  });
  check_launch(name);
  // Enough (segment, column) work items to fill the gpu, each segment a run of one group's rows.
  const int64_t segs = std::max<int64_t>(1, std::min<int64_t>({per_group, 256, (int64_t(c.num_sms) * 2048 + psize - 1) / psize}));
  auto partial = c.allocator->allocate(segs * psize * sizeof(double) * (layer ? 2 : 1));
  double* pw = static_cast<double*>(partial->data);
  double* pb = layer ? pw + segs * psize : nullptr;
  if (layer) norm_param_kernel<T, true><<<blocks_for(c, segs * psize), kThreads, 0, c.stream>>>(x.data<T>(), g.data<T>(), st, pw, pb,
                                                                                              psize, n, per_group, segs);
  else norm_param_kernel<T, false><<<blocks_for(c, segs * psize), kThreads, 0, c.stream>>>(x.data<T>(), g.data<T>(), st, pw, pb,
                                                                                          psize, n, per_group, segs);
  const dim3 grid(static_cast<unsigned>((psize + 31) / 32), layer ? 2 : 1), block(32, kSegRows);
  sum_segments_kernel<T><<<grid, block, 0, c.stream>>>(pw, dw.data<T>(), layer ? db->data<T>() : nullptr, psize, segs);
  check_launch(name);
}

template <class T>
void rope(const Context& c, const Instr& instr, const Inputs& in, ArrayDesc& out, Scalars sc) {
  if (out.size() == 0) return;
  const ArrayDesc x = contiguous(c, *in[0]);
  const int64_t dims = instr.ints[0];
  const bool traditional = instr.ints[1] != 0, has_off = instr.ints[2] != 0;
  const int nd = x.ndim();
  const int64_t D = x.shape[nd - 1], L = x.shape[nd - 2], leads = x.size() / (D * L);
  std::unique_ptr<ArrayDesc> off;
  int64_t per_group = leads;
  if (has_off) {
    off = std::make_unique<ArrayDesc>(contiguous(c, *in[1]));
    per_group = leads / off->size();
  }
  rope_kernel<T><<<blocks_for(c, out.size()), kThreads, 0, c.stream>>>(x.data<T>(), out.data<T>(), out.size(), D, L, dims, traditional,
                                                                      std::log(sc.f(0)), sc.f(1), ptr<double>(off.get()), sc.f(2),
                                                                      std::max<int64_t>(1, per_group));
  check_launch("rope");
}

template <class T>
void softmax(const Context& c, bool lse, const Inputs& in, ArrayDesc& out) {
  if (out.size() == 0) return;
  const int64_t n = in[0]->shape.back();
  if (n == 0) {  // logsumexp of empty rows: -inf
    uint64_t bits = 0;
    const T v = -std::numeric_limits<T>::infinity();
    std::memcpy(&bits, &v, sizeof(T));
    return fill_bytes(c, out, bits);
  }
  const ArrayDesc x = contiguous(c, *in[0]);
  const int64_t rows = x.size() / n;
  by_row_length(c, rows, n, [&](auto g, int blocks) {
    constexpr int G = decltype(g)::value;
    if (lse) softmax_kernel<T, G, true><<<blocks, kThreads, 0, c.stream>>>(x.data<T>(), out.data<T>(), rows, n);
    else softmax_kernel<T, G, false><<<blocks, kThreads, 0, c.stream>>>(x.data<T>(), out.data<T>(), rows, n);
  });
  check_launch(lse ? "logsumexp" : "softmax");
}

template <class T>
void softmax_bwd(const Context& c, const Inputs& in, ArrayDesc& out) {
  if (out.size() == 0) return;
  const ArrayDesc y = contiguous(c, *in[0]), g = contiguous(c, *in[1]);
  const int64_t n = y.shape.back(), rows = y.size() / n;
  by_row_length(c, rows, n, [&](auto gsz, int blocks) {
    constexpr int G = decltype(gsz)::value;
    softmax_bwd_kernel<T, G><<<blocks, kThreads, 0, c.stream>>>(y.data<T>(), g.data<T>(), out.data<T>(), rows, n);
  });
  check_launch("softmaxBwd");
}

template <class T>
void fast_typed(const Context& c, const Instr& instr, const Inputs& in, const Outputs& outs, Scalars sc) {
  ArrayDesc& out = *outs[0];
  switch (instr.op) {
    case Op::LayerNorm: case Op::RmsNorm: return norm_fwd<T>(c, instr.op == Op::LayerNorm, instr, in, out, static_cast<T>(sc.f(0)));
    case Op::LayerNormBwd: case Op::RmsNormBwd:
      return norm_bwd<T>(c, instr.op == Op::LayerNormBwd, instr, in, outs, static_cast<T>(sc.f(0)));
    case Op::Rope: return rope<T>(c, instr, in, out, sc);
    case Op::Softmax: case Op::LogSumExp: return softmax<T>(c, instr.op == Op::LogSumExp, in, out);
    case Op::SoftmaxBwd: return softmax_bwd<T>(c, in, out);
    default: throw std::runtime_error(std::string(op_name(static_cast<int32_t>(instr.op))) + " is not supported on device gpu");
  }
}

}  // namespace

void fast(const Context& c, const Instr& instr, const Inputs& in, const Outputs& outs, Scalars sc) {
  switch (in.at(0)->dtype) {
    case DType::F32: return fast_typed<float>(c, instr, in, outs, sc);
    case DType::F64: return fast_typed<double>(c, instr, in, outs, sc);
    default: not_ported(op_name(static_cast<int32_t>(instr.op)), in.at(0)->dtype);
  }
}

}  // namespace tessera::cuda
