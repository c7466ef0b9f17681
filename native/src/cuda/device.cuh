// @file Device-side helpers shared by the kernel families: the element types behind each DType
// (CUDA's __half and __nv_bfloat16 for the half types), the dispatch from a runtime DType, the
// conversions (the cpu's rules: saturating float to int, NaN to 0, one rounding to half types),
// and strided addressing over a Geometry.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <limits>
#include <type_traits>

#include "kernels.h"

namespace tessera::cuda {

template <class T> constexpr bool is_half_v = std::is_same_v<T, __half> || std::is_same_v<T, __nv_bfloat16>;
template <class T> constexpr bool is_float_v = is_half_v<T> || std::is_floating_point_v<T>;
// The type arithmetic on T happens in: half types compute in float, as on the cpu.
template <class T> using compute_t = std::conditional_t<is_half_v<T>, float, T>;

// CUDA_DISPATCH(dtype, body): runs body with T bound to the device type of dtype.
#define TESSERA_CUDA_CASE(D, CT, ...) \
  case ::tessera::DType::D: { using T = CT; __VA_ARGS__; break; }
#define CUDA_DISPATCH(dtype, ...)                                  \
  switch (dtype) {                                                 \
    TESSERA_CUDA_CASE(Bool, bool, __VA_ARGS__)                     \
    TESSERA_CUDA_CASE(U8, uint8_t, __VA_ARGS__)                    \
    TESSERA_CUDA_CASE(U16, uint16_t, __VA_ARGS__)                  \
    TESSERA_CUDA_CASE(U32, uint32_t, __VA_ARGS__)                  \
    TESSERA_CUDA_CASE(U64, uint64_t, __VA_ARGS__)                  \
    TESSERA_CUDA_CASE(I8, int8_t, __VA_ARGS__)                     \
    TESSERA_CUDA_CASE(I16, int16_t, __VA_ARGS__)                   \
    TESSERA_CUDA_CASE(I32, int32_t, __VA_ARGS__)                   \
    TESSERA_CUDA_CASE(I64, int64_t, __VA_ARGS__)                   \
    TESSERA_CUDA_CASE(F16, __half, __VA_ARGS__)                    \
    TESSERA_CUDA_CASE(BF16, __nv_bfloat16, __VA_ARGS__)            \
    TESSERA_CUDA_CASE(F32, float, __VA_ARGS__)                     \
    TESSERA_CUDA_CASE(F64, double, __VA_ARGS__)                    \
    default: throw std::runtime_error("unsupported dtype");        \
  }

// Converts between element types like the cpu's convert() (dtype.h).
template <class To, class From>
__device__ __forceinline__ To convert(From v) {
  if constexpr (std::is_same_v<To, From>) {
    return v;
  } else if constexpr (std::is_same_v<To, bool>) {
    if constexpr (is_half_v<From>) return static_cast<float>(v) != 0.0f;
    else return v != From(0);
  } else if constexpr (is_half_v<From>) {
    return convert<To>(static_cast<float>(v));
  } else if constexpr (std::is_same_v<To, __half>) {
    return __double2half(static_cast<double>(v));  // one rounding, like the cpu's round-to-odd path
  } else if constexpr (std::is_same_v<To, __nv_bfloat16>) {
    return __double2bfloat16(static_cast<double>(v));
  } else if constexpr (is_float_v<From> && std::is_integral_v<To>) {
    if (!(v == v)) return To(0);
    if (v >= static_cast<From>(std::numeric_limits<To>::max())) return std::numeric_limits<To>::max();
    if (v <= static_cast<From>(std::numeric_limits<To>::lowest())) return std::numeric_limits<To>::lowest();
    return static_cast<To>(v);
  } else {
    return static_cast<To>(v);
  }
}

// Element offsets of linear index i (row-major over g.shape) in operands [0, K).
template <int K>
__device__ __forceinline__ void locate(const Geometry& g, int64_t i, bool small, int64_t (&off)[K]) {
#pragma unroll
  for (int k = 0; k < K; ++k) off[k] = 0;
  if (small) {  // 32-bit division is several times cheaper than 64-bit
    uint32_t r = static_cast<uint32_t>(i);
    for (int d = g.nd - 1; d >= 0; --d) {
      uint32_t s = static_cast<uint32_t>(g.shape[d]), q = r / s, idx = r - q * s;
      r = q;
#pragma unroll
      for (int k = 0; k < K; ++k) off[k] += static_cast<int64_t>(idx) * g.st[k][d];
    }
  } else {
    int64_t r = i;
    for (int d = g.nd - 1; d >= 0; --d) {
      int64_t s = g.shape[d], q = r / s, idx = r - q * s;
      r = q;
#pragma unroll
      for (int k = 0; k < K; ++k) off[k] += idx * g.st[k][d];
    }
  }
}

// N elements of T moved as one aligned access (16 bytes for N = 16 / sizeof(T)).
template <class T, int N> struct alignas(sizeof(T) * N) Pack { T v[N]; };
template <class T> constexpr int kVec = sizeof(T) >= 16 ? 1 : 16 / sizeof(T);

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

}  // namespace tessera::cuda
