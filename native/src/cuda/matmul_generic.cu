// @file matmul of the dtypes cuBLAS is not used for (integers and bool; cpu/matmul.cc's
// matmul_generic): integers accumulate in uint64 and wrap like NumPy, bool is "any a && b". One
// thread per output element, reading the operands through their strides and broadcast batch axes:
// plain loops, correct before fast.
#include <string>

#include "device.cuh"

namespace tessera::cuda {
namespace {

// Leading (batch) axes and the strides of a and b along them; the last two axes' strides apart.
struct MatG {
  int nb = 0;
  int64_t shape[kMaxDims] = {}, sa[kMaxDims] = {}, sb[kMaxDims] = {};
  int64_t M = 0, N = 0, K = 0, rsA = 0, csA = 0, rsB = 0, csB = 0;
};

template <class T>
__global__ void __launch_bounds__(kThreads) matmul_generic_kernel(const T* a, const T* b, T* out, MatG g, int64_t total) {
  using Acc = std::conditional_t<is_float_v<T>, double, uint64_t>;
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t idx = tid; idx < total; idx += step) {
    const int64_t j = idx % g.N, i = (idx / g.N) % g.M;
    int64_t bt = idx / (g.N * g.M), offA = i * g.rsA, offB = j * g.csB;
    for (int d = g.nb - 1; d >= 0; --d) {
      const int64_t k = bt % g.shape[d];
      bt /= g.shape[d];
      offA += k * g.sa[d], offB += k * g.sb[d];
    }
    Acc acc = 0;
    for (int64_t k = 0; k < g.K; ++k) {
      const T x = a[offA + k * g.csA], y = b[offB + k * g.rsB];
      if constexpr (std::is_same_v<T, bool>) acc += Acc(x && y);
      else if constexpr (is_half_v<T>) acc += Acc(static_cast<float>(x)) * Acc(static_cast<float>(y));
      else acc += Acc(x) * Acc(y);
    }
    if constexpr (std::is_same_v<T, bool>) out[idx] = acc != 0;
    else out[idx] = convert<T>(acc);
  }
}

}  // namespace

void matmul_generic(const Context& c, const ArrayDesc& a, const ArrayDesc& b, ArrayDesc& out) {
  const int nd = a.ndim();
  MatG g;
  g.nb = nd - 2;
  if (g.nb > kMaxDims) throw std::runtime_error("matmul on device gpu: more than 8 batch axes (not ported yet)");
  for (int d = 0; d < g.nb; ++d) g.shape[d] = a.shape[d], g.sa[d] = a.strides[d], g.sb[d] = b.strides[d];
  g.M = a.shape[nd - 2], g.K = a.shape[nd - 1], g.N = b.shape[nd - 1];
  g.rsA = a.strides[nd - 2], g.csA = a.strides[nd - 1], g.rsB = b.strides[nd - 2], g.csB = b.strides[nd - 1];
  const int64_t total = out.size();
  if (total == 0) return;
  CUDA_DISPATCH(a.dtype, {
    matmul_generic_kernel<T><<<blocks_for(c, total), kThreads, 0, c.stream>>>(a.data<T>(), b.data<T>(), out.data<T>(), g, total);
  });
  check_launch("matmul");
}

}  // namespace tessera::cuda
