// @file gather and scatter along one axis on the gpu, with the cpu's semantics (cpu/indexing.cc):
// negative indices count from the end, and an index outside [-n, n) is never used to address
// memory: the kernel skips it and records it, and the op then throws the cpu's error ("index 7
// is out of bounds for an axis of size 5"). Reporting needs the stream to finish, so each
// gather and scatter synchronizes once (a deferred check at the program's end would save that).
// Scatter walks each line along the axis in order, as the cpu does, so repeated indices combine
// in the same order and the results are identical, "set" included (last wins). A line's walk is
// split by destination: each of `parts` threads walks the whole line but applies only the updates
// whose index lands in its own range of the axis. Every element is still written by one thread in
// the line's order.
// When every line reads the same indices (an embedding's gradient: 2,048 token ids broadcast over
// 128 columns) and lines are long, the indices are sorted once instead (CUB's stable radix sort of
// (destination, position) pairs): each destination's updates are then one run of positions in
// increasing order, and one thread per (line, run) combines them in that order. Each update is
// read once, where the split walk read every index once per part.
#include <cub/device/device_radix_sort.cuh>

#include <algorithm>
#include <memory>
#include <string>

#include "device.cuh"

namespace tessera::cuda {
namespace {

enum ScatterMode : int64_t { kSet = 0, kAdd = 1, kMul = 2, kMax = 3, kMin = 4 };

// The first bad index seen: [0] = 1 + whether it is unsigned (0: none), [1] = its bits.
struct BadIndex {
  unsigned long long* word;
};

template <class I>
__device__ __forceinline__ bool position(I v, int64_t n, int64_t& k, BadIndex bad) {
  if constexpr (std::is_unsigned_v<I>) {
    if (static_cast<uint64_t>(v) < static_cast<uint64_t>(n)) { k = static_cast<int64_t>(v); return true; }
  } else {
    const int64_t s = v;
    if (s >= -n && s < n) { k = s < 0 ? s + n : s; return true; }
  }
  if (atomicCAS(bad.word, 0ull, std::is_unsigned_v<I> ? 2ull : 1ull) == 0ull)
    bad.word[1] = static_cast<unsigned long long>(static_cast<int64_t>(v));
  return false;
}

template <class F>
void dispatch_index(DType t, F&& f) {
  switch (t) {
    case DType::U8: return f(uint8_t{});
    case DType::U16: return f(uint16_t{});
    case DType::U32: return f(uint32_t{});
    case DType::U64: return f(uint64_t{});
    case DType::I8: return f(int8_t{});
    case DType::I16: return f(int16_t{});
    case DType::I32: return f(int32_t{});
    case DType::I64: return f(int64_t{});
    default: throw std::runtime_error("indices must have an integer dtype");
  }
}

// Operands: 0 out, 1 idx, 2 x (its gathered axis zeroed; the index supplies that coordinate).
template <class W, class I>
__global__ void __launch_bounds__(kThreads) gather_kernel(const W* x, const I* idx, W* out, int64_t total, Geometry g,
                                                          bool small, int64_t n, int64_t step, BadIndex bad) {
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = tid; i < total; i += stride) {
    int64_t off[3], k;
    locate<3>(g, i, small, off);
    if (position(idx[off[1]], n, k, bad)) out[off[0]] = x[off[2] + k * step];
  }
}

// The cpu's combine(): integers wrap, bool adds as or and multiplies as and, float max/min
// propagate NaN, half types compute in float.
template <class T>
__device__ __forceinline__ void combine(T& dst, T v, int64_t mode) {
  using C = compute_t<T>;
  const C a = static_cast<C>(dst), b = static_cast<C>(v);
  C r;
  if constexpr (std::is_same_v<C, bool>) {
    r = (mode == kAdd || mode == kMax) ? (a || b) : (a && b);
  } else if constexpr (std::is_integral_v<C>) {
    using U = std::conditional_t<(sizeof(C) < sizeof(unsigned)), unsigned, std::make_unsigned_t<C>>;
    switch (mode) {
      case kAdd: r = C(U(a) + U(b)); break;
      case kMul: r = C(U(a) * U(b)); break;
      case kMax: r = a > b ? a : b; break;
      default: r = a < b ? a : b; break;
    }
  } else {
    switch (mode) {
      case kAdd: r = a + b; break;
      case kMul: r = a * b; break;
      case kMax: r = (isnan(a) || isnan(b)) ? a + b : (a > b ? a : b); break;
      default: r = (isnan(a) || isnan(b)) ? a + b : (a < b ? a : b); break;
    }
  }
  if constexpr (is_half_v<T>) dst = T(static_cast<float>(r));
  else dst = r;
}

// One thread per line along the axis and part of the axis (lines: the updates' other axes, each
// split into `parts` ranges of `part_len` destinations; operands 0 out, 1 idx, 2 upd). Neighbouring
// threads take neighbouring lines of one part, so their reads and writes coalesce.
template <class T, class I>
__global__ void __launch_bounds__(kThreads) scatter_kernel(const I* idx, const T* upd, T* out, int64_t lines, int64_t parts,
                                                           int64_t part_len, Geometry g, int64_t n, int64_t m,
                                                           int64_t out_step, int64_t idx_step, int64_t upd_step,
                                                           int64_t mode, BadIndex bad) {
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t t = tid; t < lines * parts; t += stride) {
    const int64_t l = t % lines, lo = t / lines * part_len, hi = lo + part_len;
    int64_t off[3], k;
    locate<3>(g, l, false, off);
    for (int64_t j = 0; j < m; ++j) {
      if (!position(idx[off[1] + j * idx_step], n, k, bad) || k < lo || k >= hi) continue;
      const T v = upd[off[2] + j * upd_step];
      if (mode == kSet) out[off[0] + k * out_step] = v;
      else combine(out[off[0] + k * out_step], v, mode);
    }
  }
}

// The sorted path's keys: the destination of each position along the axis (n for a bad index, which
// sorts after every real one and is skipped), and the positions themselves.
template <class I>
__global__ void __launch_bounds__(kThreads) scatter_keys_kernel(const I* idx, int64_t m, int64_t idx_step, int64_t n,
                                                                uint32_t* keys, int32_t* pos, BadIndex bad) {
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t j = tid; j < m; j += stride) {
    int64_t k;
    keys[j] = position(idx[j * idx_step], n, k, bad) ? static_cast<uint32_t>(k) : static_cast<uint32_t>(n);
    pos[j] = static_cast<int32_t>(j);
  }
}

// One thread per (line, sorted position); the thread at the start of a destination's run combines
// the run's updates into a register in position order and writes the destination once. Neighbouring
// threads take neighbouring lines at one position, so they coalesce. A run is read kRunChunk
// positions at a time so that its loads overlap (a common token's run is hundreds long).
constexpr int kRunChunk = 8;
template <class T>
__global__ void __launch_bounds__(kThreads) scatter_sorted_kernel(const uint32_t* keys, const int32_t* pos, const T* upd, T* out,
                                                                  int64_t lines, int64_t m, Geometry g, int64_t n,
                                                                  int64_t out_step, int64_t upd_step, int64_t mode) {
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t t = tid; t < lines * m; t += stride) {
    const int64_t l = t % lines, p = t / lines;
    const uint32_t k = keys[p];
    if (k >= n || (p > 0 && keys[p - 1] == k)) continue;
    int64_t off[3];
    locate<3>(g, l, false, off);
    T* dst = out + off[0] + int64_t(k) * out_step;
    const T* src = upd + off[2];
    T acc = *dst;
    for (int64_t q = p;; q += kRunChunk) {
      bool in_run[kRunChunk];
      T v[kRunChunk];
#pragma unroll
      for (int c = 0; c < kRunChunk; ++c) in_run[c] = q + c < m && keys[q + c] == k;
#pragma unroll
      for (int c = 0; c < kRunChunk; ++c) if (in_run[c]) v[c] = src[int64_t(pos[q + c]) * upd_step];
#pragma unroll
      for (int c = 0; c < kRunChunk; ++c) {
        if (!in_run[c]) break;
        if (mode == kSet) acc = v[c];
        else combine(acc, v[c], mode);
      }
      if (!in_run[kRunChunk - 1]) break;
    }
    *dst = acc;
  }
}

// A zeroed bad-index record on the device; check_bad() waits for the stream and throws if set.
// While recording a graph the record is one of the recording's (see Patches) and is read later.
struct BadRecord {
  std::shared_ptr<Storage> storage;
  BadIndex bad;
  int slot = -1;
  explicit BadRecord(const Context& c) {
    if (c.patches) {
      slot = c.patches->new_check();
      bad.word = c.patches->record(slot);
      return;
    }
    storage = c.allocator->allocate(16);
    bad.word = static_cast<unsigned long long*>(storage->data);
    check(cudaMemsetAsync(bad.word, 0, 16, c.stream), "index check");
  }
  void check_bad(const Context& c, int64_t n, const char* op) {
    if (slot >= 0) {
      c.patches->checks[slot] = {n, op};
      return;
    }
    unsigned long long host[2];
    check(cudaMemcpyAsync(host, bad.word, 16, cudaMemcpyDeviceToHost, c.stream), "index check");
    check(cudaStreamSynchronize(c.stream), "index check");
    if (host[0] != 0) throw std::runtime_error(bad_index_message(host, n));
  }
};

}  // namespace

std::string bad_index_message(const unsigned long long* record, int64_t n) {
  const std::string v = record[0] == 2 ? std::to_string(record[1]) : std::to_string(static_cast<int64_t>(record[1]));
  return "index " + v + " is out of bounds for an axis of size " + std::to_string(n);
}

namespace {

template <class W>
void gather_words(const Context& c, const ArrayDesc& x, const ArrayDesc& idx, ArrayDesc& out, int axis) {
  const int64_t total = out.size(), n = x.shape[axis];
  if (total == 0) return;
  Shape xs = x.strides;
  xs[axis] = 0;
  const Shape* st[3] = {&out.strides, &idx.strides, &xs};
  const Geometry g = collapse(out.shape, st, 3, "gather");
  BadRecord rec(c);
  dispatch_index(idx.dtype, [&](auto tag) {
    using I = decltype(tag);
    gather_kernel<W, I><<<blocks_for(c, total), kThreads, 0, c.stream>>>(x.data<W>(), idx.data<I>(), out.data<W>(), total, g,
                                                                         uint64_t(total) < (uint64_t(1) << 32), n,
                                                                         x.strides[axis], rec.bad);
  });
  check_launch("gather");
  rec.check_bad(c, n, "gather");
}

// Lines at least this long take the sorted path when they share their indices: below it the
// sort's launches cost more than the split walk's re-reads.
constexpr int64_t kSortedMin = 64;

void scatter_sorted(const Context& c, const ArrayDesc& idx, const ArrayDesc& upd, ArrayDesc& out, int64_t lines, int64_t m,
                    int64_t n, const Geometry& g, int axis, int64_t mode, BadIndex bad) {
  auto work = c.allocator->allocate(size_t(m) * 16);  // keys and positions, sorted and not
  uint32_t* keys_in = static_cast<uint32_t*>(work->data);
  uint32_t* keys = keys_in + m;
  int32_t* pos_in = reinterpret_cast<int32_t*>(keys + m);
  int32_t* pos = pos_in + m;
  dispatch_index(idx.dtype, [&](auto tag) {
    using I = decltype(tag);
    scatter_keys_kernel<I><<<blocks_for(c, m), kThreads, 0, c.stream>>>(idx.data<I>(), m, idx.strides[axis], n, keys_in, pos_in, bad);
  });
  check_launch("scatter");
  int bits = 1;  // enough for every key, n (a bad index) included
  while (bits < 32 && (uint64_t(1) << bits) <= uint64_t(n)) ++bits;
  size_t temp_bytes = 0;
  const int items = static_cast<int>(m);
  check(cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, keys_in, keys, pos_in, pos, items, 0, bits, c.stream), "scatter");
  auto temp = c.allocator->allocate(std::max<size_t>(temp_bytes, 16));
  check(cub::DeviceRadixSort::SortPairs(temp->data, temp_bytes, keys_in, keys, pos_in, pos, items, 0, bits, c.stream), "scatter");
  CUDA_DISPATCH(out.dtype, {
    scatter_sorted_kernel<T><<<blocks_for(c, lines * m), kThreads, 0, c.stream>>>(
        keys, pos, upd.data<T>(), out.data<T>(), lines, m, g, n, out.strides[axis], upd.strides[axis], mode);
  });
  check_launch("scatter");
}

}  // namespace

void gather(const Context& c, const Instr& instr, const ArrayDesc& x, const ArrayDesc& idx, ArrayDesc& out) {
  const int axis = static_cast<int>(instr.ints.at(0));
  switch (itemsize(x.dtype)) {
    case 1: return gather_words<uint8_t>(c, x, idx, out, axis);
    case 2: return gather_words<uint16_t>(c, x, idx, out, axis);
    case 4: return gather_words<uint32_t>(c, x, idx, out, axis);
    default: return gather_words<uint64_t>(c, x, idx, out, axis);
  }
}

void scatter(const Context& c, const Instr& instr, const Inputs& in, ArrayDesc& out) {
  const ArrayDesc &base = *in.at(0), &idx = *in.at(1), &upd = *in.at(2);
  const int axis = static_cast<int>(instr.ints.at(0));
  const int64_t mode = instr.ints.at(1);
  copy_strided(c, base, out);
  if (upd.size() == 0) return;
  const int64_t n = out.shape[axis], m = upd.shape[axis];
  Shape lines, os, is, us;
  for (int d = 0; d < upd.ndim(); ++d) {
    if (d == axis) continue;
    lines.push_back(upd.shape[d]), os.push_back(out.strides[d]), is.push_back(idx.strides[d]), us.push_back(upd.strides[d]);
  }
  int64_t num_lines = 1;
  for (int64_t d : lines) num_lines *= d;
  const Shape* st[3] = {&os, &is, &us};
  const Geometry g = collapse(lines, st, 3, "scatter");
  // Enough threads to fill the device, never more parts than destinations, and at most 64 (each
  // part re-reads the whole line's indices: a million-update line read 32K times would cost more
  // than its serial walk saves).
  constexpr int64_t kWanted = 1 << 15, kMaxParts = 64;
  const int64_t parts = std::max<int64_t>(1, std::min<int64_t>({n, kMaxParts, (kWanted + num_lines - 1) / num_lines}));
  const int64_t part_len = (n + parts - 1) / parts;
  BadRecord rec(c);
  const bool shared_indices = std::all_of(is.begin(), is.end(), [](int64_t s) { return s == 0; });
  if (shared_indices && m >= kSortedMin && m < (int64_t(1) << 31) && n < (int64_t(1) << 31)) {
    scatter_sorted(c, idx, upd, out, num_lines, m, n, g, axis, mode, rec.bad);
    rec.check_bad(c, n, "scatter");
    return;
  }
  CUDA_DISPATCH(out.dtype, {
    dispatch_index(idx.dtype, [&](auto tag) {
      using I = decltype(tag);
      scatter_kernel<T, I><<<blocks_for(c, num_lines * parts), kThreads, 0, c.stream>>>(
          idx.data<I>(), upd.data<T>(), out.data<T>(), num_lines, parts, part_len, g, n, m, out.strides[axis],
          idx.strides[axis], upd.strides[axis], mode, rec.bad);
    });
  });
  check_launch("scatter");
  rec.check_bad(c, n, "scatter");
}

}  // namespace tessera::cuda
