// @file Convolution on the gpu (cpu/conv.cc's semantics and ints): conv as im2col plus one cuBLAS
// GEMM per chunk of output rows (all groups in one batched call), convWeightGrad as the transposed
// product ct^T @ im2col(x) accumulated over the chunks, and the pooling helpers window (the
// sliding-window copy) and windowAdd (its transpose: each input point sums the windows it is in).
// Half types compute through float32 temporaries, as on the cpu. The im2col buffer holds a bounded
// number of rows (about 2^26 elements), so memory stays flat however large the batch.
#include <algorithm>
#include <string>

#include "device.cuh"

namespace tessera::cuda {
namespace {

// conv's geometry (ints: D, groups, flip, then per spatial dim stride, padLo, padHi,
// kernelDilation, inputDilation), and x's strides ([0] batch, [1, D] spatial, [D + 1] channel).
struct ConvG {
  int D = 0;
  bool flip = false;
  int64_t N = 0, Cout = 0, Cg = 0, Og = 0, G = 1, out_vol = 1, ker_vol = 1;
  int64_t dil_len[kMaxDims] = {}, ker[kMaxDims] = {}, out[kMaxDims] = {}, stride[kMaxDims] = {}, lo[kMaxDims] = {},
          kdil[kMaxDims] = {}, idil[kMaxDims] = {};
  int64_t xs[kMaxDims + 2] = {}, ws[kMaxDims + 2] = {};  // ws: conv's w (unused by convWeightGrad)
};

// w is the kernel-shaped operand ([Cout, K..., Cg]: conv's input 1, convWeightGrad's output) and
// y the output-shaped one ([N, O..., Cout]).
ConvG conv_geometry(const Instr& instr, const ArrayDesc& x, const ArrayDesc* wd, const Shape& w, const Shape& y) {
  ConvG g;
  g.D = static_cast<int>(instr.ints[0]);
  g.G = instr.ints[1];
  g.flip = instr.ints[2] != 0;
  g.N = x.shape[0];
  g.Cout = w[0];
  g.Cg = w[g.D + 1];
  g.Og = g.G ? g.Cout / g.G : 0;
  for (int d = 0; d < g.D; ++d) {
    auto p = [&](int k) { return instr.ints[3 + k * g.D + d]; };
    g.stride[d] = p(0), g.lo[d] = p(1), g.kdil[d] = p(3), g.idil[d] = p(4);
    g.dil_len[d] = x.shape[1 + d] == 0 ? 0 : (x.shape[1 + d] - 1) * p(4) + 1;
    g.ker[d] = w[1 + d];
    g.out[d] = y[1 + d];
    g.out_vol *= y[1 + d];
    g.ker_vol *= w[1 + d];
  }
  for (int d = 0; d < g.D + 2; ++d) g.xs[d] = x.strides[d], g.ws[d] = wd ? wd->strides[d] : 0;
  return g;
}

template <class C, class T>
__device__ __forceinline__ C to_c(T v) {
  if constexpr (is_half_v<T>) return C(static_cast<float>(v));
  else return C(v);
}

// cols [G][rows][KC] (KC = taps * Cg, tap-major) for output rows [r0, r0 + rows): the input pixel
// each tap of each row reads, zero where it is padding or between input-dilated points. With
// `mirror` column tap t holds the tap whose flipped index is t (convWeightGrad's physical taps).
template <class T, class C>
__global__ void __launch_bounds__(kThreads) im2col_kernel(const T* x, C* cols, ConvG g, int64_t r0, int64_t rows, bool mirror) {
  const int64_t KC = g.ker_vol * g.Cg, total = g.G * rows * KC;
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = tid; i < total; i += step) {
    const int64_t grp = i / (rows * KC), rem = i % (rows * KC), r = rem / KC, col = rem % KC;
    int64_t tap = col / g.Cg;
    const int64_t ci = col % g.Cg, row = r0 + r;
    int64_t o = row % g.out_vol, off = (row / g.out_vol) * g.xs[0] + (grp * g.Cg + ci) * g.xs[g.D + 1];
    bool inside = true;
    for (int d = g.D - 1; d >= 0; --d) {
      int64_t k = tap % g.ker[d];
      tap /= g.ker[d];
      if (mirror) k = g.ker[d] - 1 - k;
      const int64_t od = o % g.out[d];
      o /= g.out[d];
      const int64_t q = od * g.stride[d] + k * g.kdil[d] - g.lo[d];
      if (q < 0 || q >= g.dil_len[d] || q % g.idil[d] != 0) inside = false;
      else off += (q / g.idil[d]) * g.xs[1 + d];
    }
    cols[i] = inside ? to_c<C>(x[off]) : C(0);
  }
}

// wp [G][KC][Og] = w[g * Og + o, tap (flipped when flip), ci] (w [Cout, K..., Cg] of strides g.ws).
template <class T, class C>
__global__ void __launch_bounds__(kThreads) pack_weights_kernel(const T* w, C* wp, ConvG g) {
  const int64_t KC = g.ker_vol * g.Cg, total = g.G * KC * g.Og;
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = tid; i < total; i += step) {
    const int64_t grp = i / (KC * g.Og), rem = i % (KC * g.Og), kc = rem / g.Og, o = rem % g.Og;
    int64_t tap = kc / g.Cg;
    const int64_t ci = kc % g.Cg;
    int64_t off = (grp * g.Og + o) * g.ws[0] + ci * g.ws[g.D + 1];
    for (int d = g.D - 1; d >= 0; --d) {
      const int64_t k = tap % g.ker[d];
      tap /= g.ker[d];
      off += (g.flip ? g.ker[d] - 1 - k : k) * g.ws[1 + d];
    }
    wp[i] = to_c<C>(w[off]);
  }
}

// Rows of im2col per chunk: about 2^26 elements of patches over all groups.
int64_t chunk_rows(const ConvG& g, int64_t M) {
  const int64_t per_row = std::max<int64_t>(1, g.G * g.ker_vol * g.Cg);
  return std::max<int64_t>(1, std::min<int64_t>(M, (int64_t(1) << 26) / per_row));
}

// A contiguous temporary of dtype t and shape s.
ArrayDesc temp(const Context& c, DType t, const Shape& s) {
  ArrayDesc a;
  a.dtype = t;
  a.shape = s;
  a.strides = row_major_strides(s);
  a.storage = c.allocator->allocate(std::max<size_t>(a.nbytes(), 1));
  return a;
}

template <class T>
void conv_fwd(const Context& c, const ConvG& g, const ArrayDesc& x, const ArrayDesc& w, ArrayDesc& out) {
  using C = std::conditional_t<std::is_same_v<T, double>, double, float>;
  constexpr DType ct = std::is_same_v<C, double> ? DType::F64 : DType::F32;
  const int64_t KC = g.ker_vol * g.Cg, M = g.N * g.out_vol;
  if (KC == 0) return fill_bytes(c, out, 0);  // an empty sum over every tap and channel
  const ArrayDesc wp = temp(c, ct, {g.G, KC, g.Og});
  pack_weights_kernel<T, C><<<blocks_for(c, wp.size()), kThreads, 0, c.stream>>>(w.data<T>(), wp.data<C>(), g);
  check_launch("conv");
  ArrayDesc res = std::is_same_v<T, C> ? out : temp(c, ct, out.shape);
  const int64_t chunk = chunk_rows(g, M);
  const ArrayDesc cols = temp(c, ct, {g.G, chunk, KC});
  for (int64_t r0 = 0; r0 < M; r0 += chunk) {
    const int64_t rows = std::min(chunk, M - r0);
    im2col_kernel<T, C><<<blocks_for(c, g.G * rows * KC), kThreads, 0, c.stream>>>(x.data<T>(), cols.data<C>(), g, r0, rows, false);
    check_launch("conv");
    // out[r0 + r, grp * Og + o] = cols[grp][r] . wp[grp][:, o]: group grp's columns of out.
    gemm(c, ct, false, false, rows, g.Og, KC, cols.data<C>(), KC, rows * KC, wp.data<C>(), g.Og, KC * g.Og,
         res.data<C>() + r0 * g.Cout, g.Cout, g.Og, g.G, false);
  }
  if (!std::is_same_v<T, C>) cast(c, res, out);
}

template <class T>
void conv_wgrad(const Context& c, const ConvG& g, const ArrayDesc& x, const ArrayDesc& ctg, ArrayDesc& dw) {
  using C = std::conditional_t<std::is_same_v<T, double>, double, float>;
  constexpr DType ct = std::is_same_v<C, double> ? DType::F64 : DType::F32;
  const int64_t KC = g.ker_vol * g.Cg, M = g.N * g.out_vol;
  if (M == 0 || g.Og == 0) return fill_bytes(c, dw, 0);
  // The cotangent as a contiguous [M, Cout] matrix of the compute type.
  ArrayDesc cot = contiguous(c, ctg);
  if (!std::is_same_v<T, C>) {
    ArrayDesc f = temp(c, ct, cot.shape);
    cast(c, cot, f);
    cot = f;
  }
  ArrayDesc res = std::is_same_v<T, C> ? dw : temp(c, ct, dw.shape);
  const int64_t chunk = chunk_rows(g, M);
  const ArrayDesc cols = temp(c, ct, {g.G, chunk, KC});
  for (int64_t r0 = 0; r0 < M; r0 += chunk) {
    const int64_t rows = std::min(chunk, M - r0);
    im2col_kernel<T, C><<<blocks_for(c, g.G * rows * KC), kThreads, 0, c.stream>>>(x.data<T>(), cols.data<C>(), g, r0, rows, g.flip);
    check_launch("convWeightGrad");
    // dw[grp] [Og, KC] (+)= ct[r0:, grp * Og:]^T [Og, rows] @ cols[grp] [rows, KC]; dw is [G, Og, KC].
    gemm(c, ct, true, false, g.Og, KC, rows, cot.data<C>() + r0 * g.Cout, g.Cout, g.Og, cols.data<C>(), KC, rows * KC,
         res.data<C>(), KC, g.Og * KC, g.G, r0 > 0);
  }
  if (!std::is_same_v<T, C>) cast(c, res, dw);
}

// window's geometry (ints: D, then per dim kernel, stride, dilation) and the source's strides
// (x [N, S..., C] for window, ct [N, O..., K..., C] for windowAdd).
struct WinG {
  int D = 0;
  int64_t C = 0, in_vol = 1, out_vol = 1, ker_vol = 1;
  int64_t in[kMaxDims] = {}, out[kMaxDims] = {}, ker[kMaxDims] = {}, stride[kMaxDims] = {}, dil[kMaxDims] = {};
  int64_t st[2 * kMaxDims + 2] = {};
};

WinG window_geometry(const Instr& instr, const Shape& x, const Shape& windows, const ArrayDesc& src) {
  WinG g;
  g.D = static_cast<int>(instr.ints[0]);
  g.C = x[g.D + 1];
  for (int d = 0; d < g.D; ++d) {
    g.ker[d] = instr.ints[1 + d], g.stride[d] = instr.ints[1 + g.D + d], g.dil[d] = instr.ints[1 + 2 * g.D + d];
    g.in[d] = x[1 + d], g.out[d] = windows[1 + d];
    g.in_vol *= x[1 + d], g.out_vol *= windows[1 + d], g.ker_vol *= g.ker[d];
  }
  for (int d = 0; d < src.ndim(); ++d) g.st[d] = src.strides[d];
  return g;
}

// out [N, O..., K..., C] (contiguous) = x[n, o * stride + k * dilation, c], moved as W-sized words.
template <class W>
__global__ void __launch_bounds__(kThreads) window_kernel(const W* x, W* out, WinG g, int64_t total) {
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = tid; i < total; i += step) {
    const int64_t ch = i % g.C, t = i / g.C;
    int64_t kk = t % g.ker_vol, o = (t / g.ker_vol) % g.out_vol;
    int64_t off = (t / g.ker_vol / g.out_vol) * g.st[0] + ch * g.st[g.D + 1];
    for (int d = g.D - 1; d >= 0; --d) {
      const int64_t k = kk % g.ker[d], od = o % g.out[d];
      kk /= g.ker[d], o /= g.out[d];
      off += (od * g.stride[d] + k * g.dil[d]) * g.st[1 + d];
    }
    out[i] = x[off];
  }
}

// out [N, S..., C] (contiguous): each point sums, in tap order, the windows of ct that hold it.
template <class T, class A>
__global__ void __launch_bounds__(kThreads) window_add_kernel(const T* ct, T* out, WinG g, int64_t total) {
  const int D = g.D;
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = tid; i < total; i += step) {
    const int64_t ch = i % g.C, row = i / g.C, n = row / g.in_vol;
    int64_t pos[kMaxDims];
    for (int64_t d = D - 1, r = row % g.in_vol; d >= 0; --d) pos[d] = r % g.in[d], r /= g.in[d];
    A acc = 0;
    for (int64_t kk = 0; kk < g.ker_vol; ++kk) {
      int64_t off = n * g.st[0] + ch * g.st[2 * D + 1];
      bool hit = true;
      for (int64_t d = D - 1, r = kk; d >= 0 && hit; --d) {
        const int64_t k = r % g.ker[d], q = pos[d] - k * g.dil[d];
        r /= g.ker[d];
        if (q < 0 || q % g.stride[d] != 0 || q / g.stride[d] >= g.out[d]) hit = false;
        else off += (q / g.stride[d]) * g.st[1 + d] + k * g.st[1 + D + d];
      }
      if (hit) acc += A(to_c<A>(ct[off]));
    }
    out[i] = T(acc);
  }
}

template <class W>
void launch_window(const Context& c, const WinG& g, const ArrayDesc& x, ArrayDesc& out) {
  window_kernel<W><<<blocks_for(c, out.size()), kThreads, 0, c.stream>>>(x.data<W>(), out.data<W>(), g, out.size());
  check_launch("window");
}

template <class T>
void launch_window_add(const Context& c, const WinG& g, const ArrayDesc& ct, ArrayDesc& out) {
  using A = std::conditional_t<std::is_same_v<T, double>, double, float>;
  window_add_kernel<T, A><<<blocks_for(c, out.size()), kThreads, 0, c.stream>>>(ct.data<T>(), out.data<T>(), g, out.size());
  check_launch("windowAdd");
}

}  // namespace

void conv(const Context& c, const Instr& instr, const Inputs& in, ArrayDesc& out) {
  const ArrayDesc &x = *in.at(0), &y = *in.at(1);
  if (out.size() == 0) return;
  const bool fwd = instr.op == Op::Conv;
  const ConvG g = conv_geometry(instr, x, fwd ? &y : nullptr, fwd ? y.shape : out.shape, fwd ? out.shape : y.shape);
  switch (x.dtype) {
#define TESSERA_CONV_CASE(D, T) \
  case DType::D: return fwd ? conv_fwd<T>(c, g, x, y, out) : conv_wgrad<T>(c, g, x, y, out);
    TESSERA_CONV_CASE(F16, __half)
    TESSERA_CONV_CASE(BF16, __nv_bfloat16)
    TESSERA_CONV_CASE(F32, float)
    TESSERA_CONV_CASE(F64, double)
#undef TESSERA_CONV_CASE
    default: not_ported(fwd ? "conv" : "convWeightGrad", x.dtype);
  }
}

void window(const Context& c, const Instr& instr, const Inputs& in, ArrayDesc& out) {
  const ArrayDesc& src = *in.at(0);
  if (out.size() == 0) return;
  if (instr.op == Op::Window) {
    const WinG g = window_geometry(instr, src.shape, out.shape, src);
    switch (itemsize(src.dtype)) {
      case 1: return launch_window<uint8_t>(c, g, src, out);
      case 2: return launch_window<uint16_t>(c, g, src, out);
      case 4: return launch_window<uint32_t>(c, g, src, out);
      default: return launch_window<uint64_t>(c, g, src, out);
    }
  }
  const WinG g = window_geometry(instr, out.shape, src.shape, src);
  switch (src.dtype) {
    case DType::F16: return launch_window_add<__half>(c, g, src, out);
    case DType::BF16: return launch_window_add<__nv_bfloat16>(c, g, src, out);
    case DType::F32: return launch_window_add<float>(c, g, src, out);
    case DType::F64: return launch_window_add<double>(c, g, src, out);
    default: not_ported("windowAdd", src.dtype);
  }
}

}  // namespace tessera::cuda
