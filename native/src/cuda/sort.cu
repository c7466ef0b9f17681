// @file sort (and the selection behind partition and topk) on the gpu, with the cpu's semantics
// (cpu/scan.cc): stable, ascending, NaN last, -0 and +0 equal; values are the elements themselves.
// Each element becomes an unsigned key that orders like the cpu's comparison (NaNs one key above
// +inf, -0 as +0, signed and floating bits flipped into unsigned order), and CUB's stable
// segmented sort orders (key, position) pairs per line. A selection (ints [axis, kth, sort_tail])
// places elements by their rank in that order, as the cpu does: ranks below kth first and above it
// last, each side in its original order, or the side after kth sorted with sort_tail. An element's
// place among the lower side is the count of lower ranks before it in its line (an exclusive
// prefix sum over all lines, less the sum where its line starts), so every element is placed by
// its own thread, however long the line.
#include <cub/device/device_scan.cuh>
#include <cub/device/device_segmented_sort.cuh>

#include <algorithm>
#include <memory>

#include "device.cuh"

namespace tessera::cuda {
namespace {

template <class T> struct KeyOf { using type = std::conditional_t<sizeof(T) == 1, uint8_t, std::conditional_t<sizeof(T) == 2, uint16_t,
                                  std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>>>; };

template <class T, class K>
__device__ __forceinline__ K sort_key(T v) {
  constexpr K sign = K(1) << (8 * sizeof(K) - 1);
  if constexpr (std::is_same_v<T, bool>) {
    return K(v ? 1 : 0);
  } else if constexpr (std::is_integral_v<T>) {
    K bits;
    memcpy(&bits, &v, sizeof(K));
    return std::is_signed_v<T> ? K(bits ^ sign) : bits;
  } else {
    if (isnan(static_cast<compute_t<T>>(v))) return ~K(0);
    if (static_cast<compute_t<T>>(v) == compute_t<T>(0)) return sign;  // -0 and +0: the key of +0
    K bits;
    memcpy(&bits, &v, sizeof(K));
    return (bits & sign) ? K(~bits) : K(bits | sign);
  }
}

// Line l = o * inner + j of x (g's operand 0: its offset) into keys/positions [l, n].
template <class T, class K>
__global__ void __launch_bounds__(kThreads) keys_kernel(const T* x, K* keys, uint32_t* pos, int64_t total, int64_t n, int64_t sx,
                                                        Geometry g) {
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = tid; i < total; i += stride) {
    const int64_t l = i / n, k = i % n;
    int64_t off[1];
    locate<1>(g, l, false, off);
    keys[i] = sort_key<T, K>(x[off[0] + k * sx]);
    pos[i] = static_cast<uint32_t>(k);
  }
}

__global__ void __launch_bounds__(kThreads) offsets_kernel(int64_t* offsets, int64_t lines, int64_t n) {
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t l = tid; l <= lines; l += stride) offsets[l] = l * n;
}

// Sorted: out[o, k, j] = x[line, perm[l, k]].
template <class T>
__global__ void __launch_bounds__(kThreads) write_sorted_kernel(const T* x, const uint32_t* perm, T* values, uint32_t* indices,
                                                                int64_t total, int64_t n, int64_t inner, int64_t sx, Geometry g) {
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = tid; i < total; i += stride) {
    const int64_t l = i / n, k = i % n, o = l / inner, j = l % inner;
    int64_t off[1];
    locate<1>(g, l, false, off);
    const uint32_t p = perm[i];
    const int64_t dst = (o * n + k) * inner + j;
    values[dst] = x[off[0] + int64_t(p) * sx];
    indices[dst] = p;
  }
}

// rank[l, perm[l, k]] = k
__global__ void __launch_bounds__(kThreads) rank_kernel(const uint32_t* perm, uint32_t* rank, int64_t total, int64_t n) {
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = tid; i < total; i += stride) rank[(i / n) * n + perm[i]] = static_cast<uint32_t>(i % n);
}

// below[i] = 1 when element i ranks below kth in its line (then summed into its exclusive prefix).
__global__ void __launch_bounds__(kThreads) below_kernel(const uint32_t* rank, int64_t* below, int64_t total, int64_t kth) {
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = tid; i < total; i += stride) below[i] = rank[i] < kth ? 1 : 0;
}

// Places element k of line l by its rank r (the cpu's selection): below kth, after the lower ranks
// before it; kth at kth; above, at its rank (sort_tail) or after kth and the higher ranks before it.
// `before` holds the exclusive prefix sums of below_kernel's flags; perm[l, kth] is where line l's
// kth element was.
template <class T>
__global__ void __launch_bounds__(kThreads) select_kernel(const T* x, const uint32_t* rank, const uint32_t* perm, const int64_t* before,
                                                          T* values, uint32_t* indices, int64_t total, int64_t n, int64_t inner,
                                                          int64_t sx, Geometry g, int64_t kth, bool sort_tail) {
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = tid; i < total; i += stride) {
    const int64_t l = i / n, k = i % n, o = l / inner, j = l % inner, r = rank[i];
    const int64_t lower = before[i] - before[l * n];                // lower ranks before k in the line
    const int64_t higher = k - lower - (perm[l * n + kth] < k ? 1 : 0);  // the rest before k, less kth
    const int64_t p = r < kth ? lower : r == kth ? kth : sort_tail ? r : kth + 1 + higher;
    int64_t off[1];
    locate<1>(g, l, false, off);
    const int64_t dst = (o * n + p) * inner + j;
    values[dst] = x[off[0] + k * sx];
    indices[dst] = static_cast<uint32_t>(k);
  }
}

template <class T>
void sort_typed(const Context& c, const ArrayDesc& x, int axis, int64_t kth, bool sort_tail, ArrayDesc& values, ArrayDesc& indices) {
  using K = typename KeyOf<T>::type;
  const int64_t n = x.shape[axis], total = values.size(), lines = total / n;
  if (n > (int64_t(1) << 32)) throw std::runtime_error("sort on device gpu: an axis longer than 2^32 (indices are uint32)");
  Shape dims, st;
  int64_t inner = 1;
  for (int d = 0; d < x.ndim(); ++d) {
    if (d == axis) continue;
    dims.push_back(x.shape[d]), st.push_back(x.strides[d]);
    if (d > axis) inner *= x.shape[d];
  }
  const Shape* sts[1] = {&st};
  const Geometry g = collapse(dims, sts, 1, "sort");
  auto buffer = [&](size_t bytes) { return c.allocator->allocate(std::max<size_t>(bytes, 16)); };
  auto keys_in = buffer(total * sizeof(K)), keys_out = buffer(total * sizeof(K));
  auto pos_in = buffer(total * 4), perm = buffer(total * 4), offsets = buffer((lines + 1) * 8);
  K* ki = static_cast<K*>(keys_in->data);
  K* ko = static_cast<K*>(keys_out->data);
  uint32_t* pi = static_cast<uint32_t*>(pos_in->data);
  uint32_t* po = static_cast<uint32_t*>(perm->data);
  int64_t* offs = static_cast<int64_t*>(offsets->data);
  const int blocks = blocks_for(c, total);
  keys_kernel<T, K><<<blocks, kThreads, 0, c.stream>>>(x.data<T>(), ki, pi, total, n, x.strides[axis], g);
  offsets_kernel<<<blocks_for(c, lines + 1), kThreads, 0, c.stream>>>(offs, lines, n);
  check_launch("sort");
  size_t temp_bytes = 0;
  check(cub::DeviceSegmentedSort::StableSortPairs(nullptr, temp_bytes, ki, ko, pi, po, total, lines, offs, offs + 1, c.stream), "sort");
  auto temp = buffer(temp_bytes);
  check(cub::DeviceSegmentedSort::StableSortPairs(temp->data, temp_bytes, ki, ko, pi, po, total, lines, offs, offs + 1, c.stream), "sort");
  if (kth < 0) {
    write_sorted_kernel<T><<<blocks, kThreads, 0, c.stream>>>(x.data<T>(), po, values.data<T>(), indices.data<uint32_t>(), total, n,
                                                             inner, x.strides[axis], g);
  } else {
    uint32_t* rank = pi;  // the positions are no longer needed
    rank_kernel<<<blocks, kThreads, 0, c.stream>>>(po, rank, total, n);
    auto below = buffer(total * 8);
    int64_t* b = static_cast<int64_t*>(below->data);
    below_kernel<<<blocks, kThreads, 0, c.stream>>>(rank, b, total, kth);
    check_launch("sort");
    size_t scan_bytes = 0;
    check(cub::DeviceScan::ExclusiveSum(nullptr, scan_bytes, b, total, c.stream), "sort");
    auto scan_temp = buffer(scan_bytes);
    check(cub::DeviceScan::ExclusiveSum(scan_temp->data, scan_bytes, b, total, c.stream), "sort");
    select_kernel<T><<<blocks, kThreads, 0, c.stream>>>(x.data<T>(), rank, po, b, values.data<T>(), indices.data<uint32_t>(), total, n,
                                                       inner, x.strides[axis], g, kth, sort_tail);
  }
  check_launch("sort");
}

}  // namespace

void sort(const Context& c, const Instr& instr, const ArrayDesc& x, ArrayDesc& values, ArrayDesc& indices) {
  if (values.size() == 0) return;
  const int axis = static_cast<int>(instr.ints.at(0));
  const int64_t kth = instr.ints.size() == 3 ? instr.ints[1] : -1;
  const bool sort_tail = instr.ints.size() == 3 && instr.ints[2] != 0;
  CUDA_DISPATCH(x.dtype, sort_typed<T>(c, x, axis, kth, sort_tail, values, indices));
}

}  // namespace tessera::cuda
