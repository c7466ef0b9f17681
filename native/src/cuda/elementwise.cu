// @file Elementwise kernels on the gpu: a device functor per unary, predicate, binary and compare
// op of ops.def (its kernel expression there, with scalar.cuh's helpers), instantiated for the
// dtypes the op allows, and where(). One kernel per op and dtype serves every layout: contiguous
// operands (or scalars) move as 16-byte packs; strided and broadcast ones are addressed through
// a collapsed Geometry. The branch between the two is uniform, so it costs nothing per element.
#include <string>

#include "device.cuh"
#include "scalar.cuh"

namespace tessera::cuda {
namespace {

#define OP(name, str, kind)
#define UNARY(NAME, STR, OK, EXPR)                                 \
  struct NAME##F {                                                 \
    template <class T> static constexpr bool ok = OK;              \
    template <class C> __device__ static C f(C x) { return EXPR; } \
  };
#define PREDICATE(NAME, STR, OK, EXPR)                                \
  struct NAME##F {                                                    \
    template <class T> static constexpr bool ok = OK;                 \
    template <class C> __device__ static bool f(C x) { return EXPR; } \
  };
#define BINARY(NAME, STR, OK, EXPR)                                     \
  struct NAME##F {                                                      \
    template <class T> static constexpr bool ok = OK;                   \
    template <class C> __device__ static C f(C a, C b) { return EXPR; } \
  };
#define COMPARE(NAME, STR, EXPR)                                           \
  struct NAME##F {                                                         \
    template <class T> static constexpr bool ok = true;                    \
    template <class C> __device__ static bool f(C a, C b) { return EXPR; } \
  };
#include "../ops.def"

// The output element type: bool for predicates and comparisons, else the operands' type.
template <class T, class R> using out_t = std::conditional_t<std::is_same_v<R, bool>, bool, T>;

// vec: x and o are 16-byte aligned and contiguous; else strided through g (operand 1 is x).
template <class T, class Fn>
__global__ void __launch_bounds__(kThreads) unary_kernel(const T* x, void* out, int64_t n, bool vec, Geometry g, bool small) {
  using C = compute_t<T>;
  using U = out_t<T, decltype(Fn::f(C()))>;
  U* o = static_cast<U*>(out);
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, step = int64_t(gridDim.x) * blockDim.x;
  if (vec) {
    constexpr int N = kVec<T>;
    const int64_t packs = n / N;
    for (int64_t p = tid; p < packs; p += step) {
      Pack<T, N> a = reinterpret_cast<const Pack<T, N>*>(x)[p];
      Pack<U, N> r;
#pragma unroll
      for (int k = 0; k < N; ++k) r.v[k] = U(Fn::f(C(a.v[k])));
      reinterpret_cast<Pack<U, N>*>(o)[p] = r;
    }
    for (int64_t i = packs * N + tid; i < n; i += step) o[i] = U(Fn::f(C(x[i])));
    return;
  }
  for (int64_t i = tid; i < n; i += step) {
    int64_t off[2];
    locate<2>(g, i, small, off);
    o[i] = U(Fn::f(C(x[off[1]])));
  }
}

// mode 0: strided through g (operands 1 and 2 are a and b); else contiguous, 16-byte aligned,
// with bit 1 (a) and bit 2 (b) marking an operand that is a single broadcast element.
template <class T, class Fn>
__global__ void __launch_bounds__(kThreads) binary_kernel(const T* a, const T* b, void* out, int64_t n, int mode, Geometry g,
                                                          bool small) {
  using C = compute_t<T>;
  using U = out_t<T, decltype(Fn::f(C(), C()))>;
  U* o = static_cast<U*>(out);
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, step = int64_t(gridDim.x) * blockDim.x;
  if (mode != 0) {
    constexpr int N = kVec<T>;
    const bool as = mode & 2, bs = mode & 4;
    const C a0 = as ? C(a[0]) : C(), b0 = bs ? C(b[0]) : C();
    const int64_t packs = n / N;
    for (int64_t p = tid; p < packs; p += step) {
      Pack<T, N> pa, pb;
      if (!as) pa = reinterpret_cast<const Pack<T, N>*>(a)[p];
      if (!bs) pb = reinterpret_cast<const Pack<T, N>*>(b)[p];
      Pack<U, N> r;
#pragma unroll
      for (int k = 0; k < N; ++k) r.v[k] = U(Fn::f(as ? a0 : C(pa.v[k]), bs ? b0 : C(pb.v[k])));
      reinterpret_cast<Pack<U, N>*>(o)[p] = r;
    }
    for (int64_t i = packs * N + tid; i < n; i += step) o[i] = U(Fn::f(as ? a0 : C(a[i]), bs ? b0 : C(b[i])));
    return;
  }
  for (int64_t i = tid; i < n; i += step) {
    int64_t off[3];
    locate<3>(g, i, small, off);
    o[i] = U(Fn::f(C(a[off[1]]), C(b[off[2]])));
  }
}

// where(c, x, y) by item size W: selection moves bytes, so 4 instantiations serve every dtype.
template <class W>
__global__ void __launch_bounds__(kThreads) where_kernel(const bool* c, const W* x, const W* y, W* o, int64_t n, Geometry g,
                                                         bool small) {
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = tid; i < n; i += step) {
    int64_t off[4];
    locate<4>(g, i, small, off);
    o[i] = c[off[1]] ? x[off[2]] : y[off[3]];
  }
}

bool contiguous(const ArrayDesc& a) { return a.is_row_contiguous(); }
bool single(const ArrayDesc& a) {  // every element is the same one (a scalar broadcast)
  for (int d = 0; d < a.ndim(); ++d)
    if (a.shape[d] != 1 && a.strides[d] != 0) return false;
  return true;
}
constexpr uint64_t kSmall = uint64_t(1) << 32;

template <class T, class Fn>
void launch_unary(const Context& c, const char* name, const ArrayDesc& x, ArrayDesc& out) {
  const int64_t n = out.size();
  if (n == 0) return;
  const T* xp = x.data<T>();
  const bool vec = contiguous(x) && aligned16(xp) && aligned16(out.data<uint8_t>());
  Geometry g;
  if (!vec) {
    const Shape* st[2] = {&out.strides, &x.strides};
    g = collapse(out.shape, st, 2, name);
  }
  const int64_t work = vec ? n / kVec<T> + 1 : n;
  unary_kernel<T, Fn><<<blocks_for(c, work), kThreads, 0, c.stream>>>(xp, out.storage->data, n, vec, g, uint64_t(n) < kSmall);
  check_launch(name);
}

template <class T, class Fn>
void launch_binary(const Context& c, const char* name, const ArrayDesc& a, const ArrayDesc& b, ArrayDesc& out) {
  const int64_t n = out.size();
  if (n == 0) return;
  const T *ap = a.data<T>(), *bp = b.data<T>();
  const bool as = single(a), bs = single(b);
  const bool ac = as || (contiguous(a) && aligned16(ap)), bc = bs || (contiguous(b) && aligned16(bp));
  int mode = ac && bc && aligned16(out.data<uint8_t>()) ? 1 | (as ? 2 : 0) | (bs ? 4 : 0) : 0;
  Geometry g;
  if (mode == 0) {
    const Shape* st[3] = {&out.strides, &a.strides, &b.strides};
    g = collapse(out.shape, st, 3, name);
  }
  const int64_t work = mode ? n / kVec<T> + 1 : n;
  binary_kernel<T, Fn><<<blocks_for(c, work), kThreads, 0, c.stream>>>(ap, bp, out.storage->data, n, mode, g,
                                                                         uint64_t(n) < kSmall);
  check_launch(name);
}

template <class Fn>
void unary(const Context& c, const char* name, const ArrayDesc& x, ArrayDesc& out) {
  CUDA_DISPATCH(x.dtype, if constexpr (Fn::template ok<T>) launch_unary<T, Fn>(c, name, x, out); else not_ported(name, x.dtype));
}
template <class Fn>
void binary(const Context& c, const char* name, const ArrayDesc& a, const ArrayDesc& b, ArrayDesc& out) {
  if (a.dtype != b.dtype) throw std::runtime_error(std::string(name) + ": operand dtypes differ (this is a bug)");
  CUDA_DISPATCH(a.dtype, if constexpr (Fn::template ok<T>) launch_binary<T, Fn>(c, name, a, b, out); else not_ported(name, a.dtype));
}

template <class W>
void launch_where(const Context& c, const Inputs& in, ArrayDesc& out) {
  const int64_t n = out.size();
  if (n == 0) return;
  const Shape* st[4] = {&out.strides, &in[0]->strides, &in[1]->strides, &in[2]->strides};
  Geometry g = collapse(out.shape, st, 4, "where");
  where_kernel<W><<<blocks_for(c, n), kThreads, 0, c.stream>>>(in[0]->data<bool>(), in[1]->data<W>(), in[2]->data<W>(),
                                                               out.data<W>(), n, g, uint64_t(n) < kSmall);
  check_launch("where");
}

}  // namespace

void elementwise(const Context& c, const Instr& instr, const Inputs& in, ArrayDesc& out) {
  switch (instr.op) {
#define OP(name, str, kind)
#define UNARY(NAME, STR, OK, EXPR) case Op::NAME: return unary<NAME##F>(c, STR, *in.at(0), out);
#define PREDICATE(NAME, STR, OK, EXPR) case Op::NAME: return unary<NAME##F>(c, STR, *in.at(0), out);
#define BINARY(NAME, STR, OK, EXPR) case Op::NAME: return binary<NAME##F>(c, STR, *in.at(0), *in.at(1), out);
#define COMPARE(NAME, STR, EXPR) case Op::NAME: return binary<NAME##F>(c, STR, *in.at(0), *in.at(1), out);
#include "../ops.def"
    case Op::Where: {
      if (in.size() != 3 || in[0]->dtype != DType::Bool) throw std::runtime_error("where: malformed operands (this is a bug)");
      switch (itemsize(out.dtype)) {
        case 1: return launch_where<uint8_t>(c, in, out);
        case 2: return launch_where<uint16_t>(c, in, out);
        case 4: return launch_where<uint32_t>(c, in, out);
        default: return launch_where<uint64_t>(c, in, out);
      }
    }
    default: throw std::runtime_error(std::string(op_name(static_cast<int32_t>(instr.op))) + " is not an elementwise op (this is a bug)");
  }
}

}  // namespace tessera::cuda
