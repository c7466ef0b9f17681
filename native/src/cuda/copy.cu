// @file Data movement on the gpu: strided copies (by item size, so 4 kernels serve every dtype;
// the engine behind copy, non-view reshapes, reads of strided arrays and operand preparation for
// cuBLAS), fills (full) and casts between any two dtypes.
#include <string>

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

template <class W>
void launch_copy(const Context& c, const ArrayDesc& src, const ArrayDesc& dst) {
  const int64_t n = dst.size();
  if (n == 0) return;
  if (src.is_row_contiguous() && dst.is_row_contiguous()) {
    check(cudaMemcpyAsync(dst.data<W>(), src.data<W>(), n * sizeof(W), cudaMemcpyDeviceToDevice, c.stream), "copy");
    return;
  }
  const Shape* st[2] = {&dst.strides, &src.strides};
  Geometry g = collapse(dst.shape, st, 2, "copy");
  copy_kernel<W><<<blocks_for(c, n), kThreads, 0, c.stream>>>(src.data<W>(), dst.data<W>(), n, g, uint64_t(n) < kSmall);
  check_launch("copy");
}

}  // namespace

void copy_strided(const Context& c, const ArrayDesc& src, const ArrayDesc& dst) {
  if (src.shape != dst.shape || itemsize(src.dtype) != itemsize(dst.dtype))
    throw std::runtime_error("copy between different shapes (this is a bug)");
  switch (itemsize(src.dtype)) {
    case 1: return launch_copy<uint8_t>(c, src, dst);
    case 2: return launch_copy<uint16_t>(c, src, dst);
    case 4: return launch_copy<uint32_t>(c, src, dst);
    default: return launch_copy<uint64_t>(c, src, dst);
  }
}

ArrayDesc contiguous(const Context& c, const ArrayDesc& a) {
  if (a.is_row_contiguous()) return a;
  ArrayDesc t = a;
  t.strides = row_major_strides(a.shape);
  t.offset = 0;
  t.storage = c.allocator->allocate(a.nbytes());
  copy_strided(c, a, t);
  return t;
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
