// @file The row-group reduction the fused row kernels share (fast.cu, attention.cu): rows are
// handled by groups of G threads, a warp (G = 32) or the whole block (G = kThreads).
#pragma once

namespace tessera::cuda {

// Reduces v over the G threads of a row group (G = 32: one warp; G = kThreads: the block, which
// every thread of it must call). sm holds G / 32 values; it is free again once this returns.
template <int G, class T, class F>
__device__ __forceinline__ T group_reduce(T v, F op, T* sm) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  if constexpr (G == 32) {
    return v;
  } else {
    __syncthreads();  // sm is free (the previous reduction has read it)
    if ((threadIdx.x & 31) == 0) sm[threadIdx.x >> 5] = v;
    __syncthreads();
    v = sm[0];
    for (int k = 1; k < G / 32; ++k) v = op(v, sm[k]);
    return v;
  }
}
struct Add { template <class T> __device__ T operator()(T a, T b) const { return a + b; } };
struct Max { template <class T> __device__ T operator()(T a, T b) const { return fmax(a, b); } };

}  // namespace tessera::cuda
