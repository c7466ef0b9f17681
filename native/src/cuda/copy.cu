// @file Data movement on the gpu: strided copies (by word: the item's size, or 8 or 16 bytes when
// rows allow, so 5 kernels serve every dtype; the engine behind copy, non-view reshapes, reads of
// strided arrays and operand preparation for cuBLAS, several at once for attention), fills (full)
// and casts between any two dtypes.
#include <algorithm>
#include <string>
#include <vector>

#include "device.cuh"

namespace tessera::cuda {
namespace {

constexpr uint64_t kSmall = uint64_t(1) << 32;

template <class W>
__global__ void __launch_bounds__(kThreads) copy_kernel(const W* src, W* dst, int64_t n, Geometry g, bool small) {
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = tid; i < n; i += step) {
    int64_t off[2];
    locate<2>(g, i, small, off);
    dst[off[0]] = src[off[1]];
  }
}

template <class W>
__global__ void __launch_bounds__(kThreads) fill_kernel(W* dst, int64_t n, W v) {
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = tid; i < n; i += step) dst[i] = v;
}

template <class W>
__global__ void __launch_bounds__(kThreads) fill_device_kernel(W* dst, int64_t n, const W* v) {
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, step = int64_t(gridDim.x) * blockDim.x;
  const W x = *v;
  for (int64_t i = tid; i < n; i += step) dst[i] = x;
}

// out is contiguous; x is addressed through g's operand 1 (nd 1 and stride 1 when contiguous).
template <class From, class To>
__global__ void __launch_bounds__(kThreads) cast_kernel(const From* x, To* o, int64_t n, bool contig, Geometry g, bool small) {
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = tid; i < n; i += step) {
    int64_t xi = i;
    if (!contig) {
      int64_t off[2];
      locate<2>(g, i, small, off);
      xi = off[1];
    }
    o[i] = convert<To>(x[xi]);
  }
}

// Rewrites a copy's geometry (operand 0 the destination, 1 the source, in items of `item` bytes)
// into words of `word` bytes: possible when both operands step contiguously through their last
// axis and its length, every other stride and both addresses are whole words. The index
// arithmetic per byte then drops by word / item, and loads and stores use the full width (the
// transposes around attention, [B, L, H, D] <-> [B, H, L, D], move rows of D floats).
bool widen(Geometry& g, int64_t& n, const void* src, const void* dst, size_t item, size_t word) {
  if (word <= item) return word == item;
  const int64_t k = static_cast<int64_t>(word / item);
  const int last = g.nd - 1;
  if (last < 0 || g.st[0][last] != 1 || g.st[1][last] != 1 || g.shape[last] % k != 0) return false;
  if (reinterpret_cast<uintptr_t>(src) % word || reinterpret_cast<uintptr_t>(dst) % word) return false;
  for (int d = 0; d < last; ++d)
    if (g.st[0][d] % k || g.st[1][d] % k) return false;
  g.shape[last] /= k;
  for (int d = 0; d < last; ++d) g.st[0][d] /= k, g.st[1][d] /= k;
  n /= k;
  return true;
}

// The widest word (16, 8 or the item's own bytes) a copy can move; rewrites g and n to it.
size_t widest(Geometry& g, int64_t& n, const void* src, const void* dst, size_t item) {
  for (size_t word : {size_t(16), size_t(8)}) {
    if (word <= item) break;
    Geometry w = g;
    int64_t m = n;
    if (widen(w, m, src, dst, item, word)) {
      g = w, n = m;
      return word;
    }
  }
  return item;
}

template <class W>
void launch_copy_words(const Context& c, const void* src, void* dst, int64_t n, const Geometry& g) {
  copy_kernel<W><<<blocks_for(c, n), kThreads, 0, c.stream>>>(static_cast<const W*>(src), static_cast<W*>(dst), n, g, uint64_t(n) < kSmall);
  check_launch("copy");
}

void launch_copy(const Context& c, const ArrayDesc& src, const ArrayDesc& dst) {
  int64_t n = dst.size();
  if (n == 0) return;
  const size_t item = itemsize(src.dtype);
  if (src.is_row_contiguous() && dst.is_row_contiguous()) {
    check(cudaMemcpyAsync(dst.bytes(), src.bytes(), n * item, cudaMemcpyDeviceToDevice, c.stream), "copy");
    return;
  }
  const Shape* st[2] = {&dst.strides, &src.strides};
  Geometry g = collapse(dst.shape, st, 2, "copy");
  switch (widest(g, n, src.bytes(), dst.bytes(), item)) {
    case 1: return launch_copy_words<uint8_t>(c, src.bytes(), dst.bytes(), n, g);
    case 2: return launch_copy_words<uint16_t>(c, src.bytes(), dst.bytes(), n, g);
    case 4: return launch_copy_words<uint32_t>(c, src.bytes(), dst.bytes(), n, g);
    case 8: return launch_copy_words<uint64_t>(c, src.bytes(), dst.bytes(), n, g);
    default: return launch_copy_words<uint4>(c, src.bytes(), dst.bytes(), n, g);
  }
}

// Several copies in one launch: blockIdx.y picks the copy (contiguous_all).
constexpr int kMaxBatch = 6;
struct CopyBatch {
  const void* src[kMaxBatch];
  void* dst[kMaxBatch];
  int64_t n[kMaxBatch];
  Geometry g[kMaxBatch];
};

template <class W>
__global__ void __launch_bounds__(kThreads) copy_batch_kernel(const CopyBatch b) {
  const int k = blockIdx.y;
  const W* src = static_cast<const W*>(b.src[k]);
  W* dst = static_cast<W*>(b.dst[k]);
  const int64_t n = b.n[k];
  const Geometry& g = b.g[k];
  const bool small = uint64_t(n) < kSmall;
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = tid; i < n; i += step) {
    int64_t off[2];
    locate<2>(g, i, small, off);
    dst[off[0]] = src[off[1]];
  }
}

}  // namespace

void copy_strided(const Context& c, const ArrayDesc& src, const ArrayDesc& dst) {
  if (src.shape != dst.shape || itemsize(src.dtype) != itemsize(dst.dtype))
    throw std::runtime_error("copy between different shapes (this is a bug)");
  launch_copy(c, src, dst);
}

namespace {
ArrayDesc row_major_like(const Context& c, const ArrayDesc& a) {
  ArrayDesc t = a;
  t.strides = row_major_strides(a.shape);
  t.offset = 0;
  t.storage = c.allocator->allocate(a.nbytes());
  return t;
}
}  // namespace

ArrayDesc contiguous(const Context& c, const ArrayDesc& a) {
  if (a.is_row_contiguous()) return a;
  ArrayDesc t = row_major_like(c, a);
  copy_strided(c, a, t);
  return t;
}

std::vector<ArrayDesc> contiguous_all(const Context& c, std::initializer_list<const ArrayDesc*> in) {
  std::vector<ArrayDesc> out;
  std::vector<int> todo;  // the inputs that need a copy
  for (const ArrayDesc* a : in) {
    out.push_back(*a);
    if (!a->is_row_contiguous() && a->size() > 0) todo.push_back(static_cast<int>(out.size() - 1));
  }
  if (todo.size() > static_cast<size_t>(kMaxBatch)) throw std::runtime_error("contiguous_all: more than 6 arrays (this is a bug)");
  for (int i : todo) out[i] = row_major_like(c, out[i]);
  bool same_items = true;
  for (int i : todo) same_items &= itemsize(out[i].dtype) == itemsize(out[todo[0]].dtype);
  if (todo.size() == 1 || !same_items) {
    for (int i : todo) copy_strided(c, *in.begin()[i], out[i]);
    return out;
  }
  if (todo.empty()) return out;
  // One word size for every copy of the launch: the widest that all of them allow.
  CopyBatch b{};
  size_t word = 16;
  for (size_t j = 0; j < todo.size(); ++j) {
    const ArrayDesc &src = *in.begin()[todo[j]], &dst = out[todo[j]];
    const Shape* st[2] = {&dst.strides, &src.strides};
    b.g[j] = collapse(dst.shape, st, 2, "copy");
    b.n[j] = dst.size();
    b.src[j] = src.bytes();
    b.dst[j] = dst.bytes();
    Geometry g = b.g[j];
    int64_t n = b.n[j];
    word = std::min(word, widest(g, n, b.src[j], b.dst[j], itemsize(src.dtype)));
  }
  int64_t most = 0;
  for (size_t j = 0; j < todo.size(); ++j) {
    if (!widen(b.g[j], b.n[j], b.src[j], b.dst[j], itemsize(out[todo[j]].dtype), word))
      throw std::runtime_error("contiguous_all: a copy narrower than its batch's word (this is a bug)");
    most = std::max(most, b.n[j]);
  }
  for (size_t j = todo.size(); j < static_cast<size_t>(kMaxBatch); ++j) b.n[j] = 0;
  const dim3 grid(static_cast<unsigned>(blocks_for(c, most)), static_cast<unsigned>(todo.size()));
  switch (word) {
    case 1: copy_batch_kernel<uint8_t><<<grid, kThreads, 0, c.stream>>>(b); break;
    case 2: copy_batch_kernel<uint16_t><<<grid, kThreads, 0, c.stream>>>(b); break;
    case 4: copy_batch_kernel<uint32_t><<<grid, kThreads, 0, c.stream>>>(b); break;
    case 8: copy_batch_kernel<uint64_t><<<grid, kThreads, 0, c.stream>>>(b); break;
    default: copy_batch_kernel<uint4><<<grid, kThreads, 0, c.stream>>>(b); break;
  }
  check_launch("copy");
  return out;
}

void fill_bytes(const Context& c, ArrayDesc& out, uint64_t bits) {
  const int64_t n = out.size();
  if (n == 0) return;
  const int blocks = blocks_for(c, n);
  switch (itemsize(out.dtype)) {
    case 1: fill_kernel<uint8_t><<<blocks, kThreads, 0, c.stream>>>(out.data<uint8_t>(), n, uint8_t(bits)); break;
    case 2: fill_kernel<uint16_t><<<blocks, kThreads, 0, c.stream>>>(out.data<uint16_t>(), n, uint16_t(bits)); break;
    case 4: fill_kernel<uint32_t><<<blocks, kThreads, 0, c.stream>>>(out.data<uint32_t>(), n, uint32_t(bits)); break;
    default: fill_kernel<uint64_t><<<blocks, kThreads, 0, c.stream>>>(out.data<uint64_t>(), n, bits); break;
  }
  check_launch("full");
}

void fill_device(const Context& c, ArrayDesc& out, const void* bits) {
  const int64_t n = out.size();
  if (n == 0) return;
  const int blocks = blocks_for(c, n);
  switch (itemsize(out.dtype)) {
    case 1: fill_device_kernel<<<blocks, kThreads, 0, c.stream>>>(out.data<uint8_t>(), n, static_cast<const uint8_t*>(bits)); break;
    case 2: fill_device_kernel<<<blocks, kThreads, 0, c.stream>>>(out.data<uint16_t>(), n, static_cast<const uint16_t*>(bits)); break;
    case 4: fill_device_kernel<<<blocks, kThreads, 0, c.stream>>>(out.data<uint32_t>(), n, static_cast<const uint32_t*>(bits)); break;
    default: fill_device_kernel<<<blocks, kThreads, 0, c.stream>>>(out.data<uint64_t>(), n, static_cast<const uint64_t*>(bits)); break;
  }
  check_launch("full");
}

void cast(const Context& c, const ArrayDesc& x, ArrayDesc& out) {
  const int64_t n = out.size();
  if (n == 0) return;
  const bool contig = x.is_row_contiguous();
  Geometry g;
  if (!contig) {
    const Shape* st[2] = {&out.strides, &x.strides};
    g = collapse(out.shape, st, 2, "cast");
  }
  const int blocks = blocks_for(c, n);
  CUDA_DISPATCH(x.dtype, {
    using From = T;
    const From* xp = x.data<From>();
    CUDA_DISPATCH(out.dtype, cast_kernel<From, T><<<blocks, kThreads, 0, c.stream>>>(xp, out.data<T>(), n, contig, g, uint64_t(n) < kSmall));
  });
  check_launch("cast");
}

}  // namespace tessera::cuda
