// @file The CUDA backend: registered as "gpu" when the addon finds a CUDA device. One stream per
// device runs everything in order (a recording spreads its instructions over lanes: lanes.h);
// memory comes from cudaMallocAsync's stream-ordered pool behind the shared caching Allocator (a
// block freed while queued kernels still read it is reused only by work queued after them, so
// releasing early is safe); transfers stage through pinned buffers.
// Ops not ported yet are refused by supports(), so a program asking the gpu for one fails before
// it runs, naming the op and the device (docs/cuda.md lists what is ported).
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels.h"
#include "lanes.h"

namespace tessera {
namespace cuda {

Geometry collapse(const Shape& shape, const Shape* const* strides, int num_operands, const char* op) {
  Geometry g;
  int nd = 0;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    // Merge into the previous kept axis when every operand steps through both as one.
    bool merge = nd > 0;
    for (int k = 0; k < num_operands && merge; ++k) merge = g.st[k][nd - 1] == (*strides[k])[d] * shape[d];
    if (merge) {
      g.shape[nd - 1] *= shape[d];
      for (int k = 0; k < num_operands; ++k) g.st[k][nd - 1] = (*strides[k])[d];
      continue;
    }
    if (nd == kMaxDims)
      throw std::runtime_error(std::string(op) + " on device gpu: more than " + std::to_string(kMaxDims) +
                               " axes after merging (not ported yet)");
    g.shape[nd] = shape[d];
    for (int k = 0; k < num_operands; ++k) g.st[k][nd] = (*strides[k])[d];
    ++nd;
  }
  g.nd = nd;
  return g;
}

int blocks_for(const Context& c, int64_t n) {
  const int64_t want = (n + kThreads - 1) / kThreads;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(want, int64_t(c.num_sms) * 32)));
}

uint64_t full_bits(DType t, Scalars sc) {
  uint64_t bits = 0;
  DISPATCH_ALL(t, {
    T v;
    if constexpr (std::is_same_v<T, int64_t> || std::is_same_v<T, uint64_t>) v = static_cast<T>(sc.i(0));
    else if constexpr (is_half_v<T>) v = T(sc.f(0));
    else v = convert<T>(sc.f(0));
    std::memcpy(&bits, &v, sizeof(T));
  });
  return bits;
}

void not_ported(const char* op, DType t) {
  throw std::runtime_error(std::string(op) + " of dtype " + dtype_name(t) + " is not ported to device gpu yet (docs/cuda.md)");
}

namespace {

class DeviceAllocator : public Allocator {
 public:
  cudaStream_t stream = nullptr;

 protected:
  void* raw_alloc(size_t nbytes) override {
    void* p = nullptr;
    if (cudaMallocAsync(&p, nbytes, stream) != cudaSuccess) {
      cudaGetLastError();  // clear the sticky-free allocation error; the caller retries after clear_cache
      return nullptr;
    }
    return p;
  }
  void raw_free(void* p) override { cudaFreeAsync(p, stream); }
};

// The ops this backend runs; everything else is refused at decode time.
bool ported(Op op) {
  switch (op_kind(op)) {
    case OpKind::unary: case OpKind::predicate: case OpKind::binary: case OpKind::compare: case OpKind::ternary:
    case OpKind::reduce: case OpKind::view:
      return true;
    default:
      break;
  }
  switch (op) {
    case Op::Full: case Op::Arange: case Op::Copy: case Op::Cast: case Op::Matmul: case Op::Transfer:
    case Op::Argmax: case Op::Argmin: case Op::Concatenate: case Op::SliceUpdate:
    case Op::RandomBits: case Op::Gather: case Op::Scatter: case Op::Scan: case Op::Sort:
    case Op::LayerNorm: case Op::LayerNormBwd: case Op::RmsNorm: case Op::RmsNormBwd: case Op::Rope:
    case Op::Softmax: case Op::SoftmaxBwd: case Op::LogSumExp: case Op::Attention: case Op::AttentionBwd:
    case Op::Conv: case Op::ConvWeightGrad: case Op::Window: case Op::WindowAdd: case Op::Divmod:
    case Op::Cholesky: case Op::Inv: case Op::Solve: case Op::Qr: case Op::Eigh: case Op::Svd:
      return true;
    default:
      return false;
  }
}

class CudaBackend : public Backend {
 public:
  explicit CudaBackend(int device) : device_(device) {
    check(cudaSetDevice(device), "cudaSetDevice");
    check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
    cudaDeviceProp prop;
    check(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
    // Keep freed pool memory instead of returning it to the driver at each synchronize.
    cudaMemPool_t pool;
    if (cudaDeviceGetDefaultMemPool(&pool, device) == cudaSuccess) {
      uint64_t keep = UINT64_MAX;
      cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep);
    }
    allocator_.stream = stream_;
    ctx_.stream = stream_;
    ctx_.num_sms = prop.multiProcessorCount;
    ctx_.allocator = &allocator_;
    ctx_.lanes = &lanes_;
    const char* tf32 = std::getenv("TESSERA_ALLOW_TF32");
    ctx_.allow_tf32 = tf32 && std::string(tf32) == "1";
    for (int k = 0; k < 2; ++k) check(cudaEventCreateWithFlags(&staged_[k], cudaEventDisableTiming), "cudaEventCreate");
  }

  const char* name() const override { return "gpu"; }

  // Recording (graph.cc): work is captured on the stream, allocations come from the recording's
  // own memory and fill/fused constants from its patches, until end_capture.
  bool can_capture() const override { return true; }
  void begin_capture(const double* scalars) override {
    mutex_.lock();  // held until end_capture (which replay.cc calls even when this throws)
    capturing_ = true;
    recording_ = start_recording(ctx_, scalars);
  }
  std::unique_ptr<Capture> end_capture(bool keep) override {
    std::lock_guard<std::recursive_mutex> lock(mutex_);
    ctx_.allocator = &allocator_;
    ctx_.patches = nullptr;
    ctx_.stream = stream_;
    std::unique_ptr<Capture> graph = finish_recording(std::move(recording_), lanes_, stream_, mutex_, keep);
    if (capturing_) {
      capturing_ = false;
      mutex_.unlock();  // begin_capture's
    }
    return graph;
  }
  void copy(const ArrayDesc& src, const ArrayDesc& dst) override {
    std::lock_guard<std::recursive_mutex> lock(mutex_);
    if (src.is_row_contiguous() && src.nbytes() == dst.nbytes())
      check(cudaMemcpyAsync(dst.bytes(), src.bytes(), dst.nbytes(), cudaMemcpyDeviceToDevice, stream_), "copy");
    else
      copy_strided(ctx_, src, dst);
  }
  Allocator& allocator() override { return allocator_; }
  std::vector<std::pair<std::string, double>> counters() const override { return lt_counters(); }
  // Fused chains only where NVRTC can compile them (else the fusion pass leaves gpu nodes alone).
  bool supports(Op op) const override { return op == Op::Fused ? fused_available() : ported(op); }
  void synchronize() override {
    {
      std::lock_guard<std::recursive_mutex> lock(mutex_);  // not while another thread records
      check(cudaStreamSynchronize(stream_), "synchronize");
    }
    settle_replays();  // a bad index in a replayed call is reported here at the latest
  }

  void write(ArrayDesc& dst, const void* host_src) override {
    std::lock_guard<std::recursive_mutex> lock(mutex_);
    upload(dst, host_src);
  }

  // Device to host: a strided array is first made contiguous on the device; chunk k + 1 downloads
  // while chunk k is copied out of its pinned buffer.
  void read(const ArrayDesc& src, void* host_dst) override {
    settle_replays();
    std::lock_guard<std::recursive_mutex> lock(mutex_);
    const size_t n = src.nbytes();
    if (n == 0) return;
    ArrayDesc flat = src;
    if (!src.is_row_contiguous()) {
      flat.strides = row_major_strides(src.shape);
      flat.offset = 0;
      flat.storage = allocator_.allocate(n);
      copy_strided(ctx_, src, flat);
    }
    const uint8_t* d = flat.bytes();  // offset counts elements of the dtype, not bytes
    uint8_t* h = static_cast<uint8_t*>(host_dst);
    auto issue = [&](size_t off, int k) {
      check(cudaMemcpyAsync(pinned(k), d + off, std::min(kChunk, n - off), cudaMemcpyDeviceToHost, stream_), "download");
      check(cudaEventRecord(staged_[k], stream_), "download");
    };
    issue(0, 0);
    for (size_t off = 0, k = 0; off < n; off += kChunk, k ^= 1) {
      if (off + kChunk < n) issue(off + kChunk, static_cast<int>(k ^ 1));
      check(cudaEventSynchronize(staged_[k]), "download");
      std::memcpy(h + off, pinned(static_cast<int>(k)), std::min(kChunk, n - off));
    }
  }

  void run(const Instr& instr, const Inputs& in, const Outputs& outs, Scalars sc) override {
    std::lock_guard<std::recursive_mutex> lock(mutex_);
    if (!recording_) return run_here(instr, in, outs, sc);
    // Recording: on the lane lanes_ picks for it (after what it depends on), then back.
    struct Back {
      Context& c;
      cudaStream_t s;
      ~Back() { c.stream = s; }
    } back{ctx_, stream_};
    ctx_.stream = lanes_.enter(in, outs);
    run_here(instr, in, outs, sc);
    lanes_.leave(in, outs);
  }

 private:
  static constexpr size_t kChunk = size_t(4) << 20;

  // Queues one instruction on ctx_.stream.
  void run_here(const Instr& instr, const Inputs& in, const Outputs& outs, Scalars sc) {
    for (ArrayDesc* o : outs) {
      if (o->storage) continue;  // donated
      o->storage = ctx_.allocator->allocate(o->nbytes());  // the recording's memory while recording
      o->strides = row_major_strides(o->shape);
      o->offset = 0;
    }
    ArrayDesc& out = *outs.at(0);
    switch (op_kind(instr.op)) {
      case OpKind::unary: case OpKind::predicate: case OpKind::binary: case OpKind::compare: case OpKind::ternary:
        return elementwise(ctx_, instr, in, out);
      case OpKind::reduce:
        return reduce(ctx_, instr, *in.at(0), out);
      default:
        break;
    }
    switch (instr.op) {
      case Op::Copy: return copy_strided(ctx_, *in.at(0), out);
      case Op::Cast: return cast(ctx_, *in.at(0), out);
      case Op::Argmax: case Op::Argmin: return reduce(ctx_, instr, *in.at(0), out);
      case Op::Concatenate: return concatenate(instr, in, out);
      case Op::SliceUpdate: return slice_update(instr, in, out);
      case Op::Matmul:  // ints [epilogue]: 1 an addend follows the operands, 2 a bias (epilogue.ts)
        return matmul(ctx_, *in.at(0), *in.at(1), out, matmul_addend(instr, in), matmul_bias(instr, in));
      case Op::RandomBits: return random_bits(ctx_, *in.at(0), out);
      case Op::Gather: return gather(ctx_, instr, *in.at(0), *in.at(1), out);
      case Op::Scatter: return scatter(ctx_, instr, in, out);
      case Op::Scan: return scan(ctx_, instr, *in.at(0), out);
      case Op::Sort: return sort(ctx_, instr, *in.at(0), out, *outs.at(1));
      case Op::LayerNorm: case Op::LayerNormBwd: case Op::RmsNorm: case Op::RmsNormBwd: case Op::Rope:
      case Op::Softmax: case Op::SoftmaxBwd: case Op::LogSumExp:
        return fast(ctx_, instr, in, outs, sc);
      case Op::Attention: case Op::AttentionBwd: return attention(ctx_, instr, in, outs, sc);
      case Op::Conv: case Op::ConvWeightGrad: return conv(ctx_, instr, in, out);
      case Op::Window: case Op::WindowAdd: return window(ctx_, instr, in, out);
      case Op::Divmod: return divmod(instr, in, outs);
      case Op::Cholesky: case Op::Inv: case Op::Solve: case Op::Qr: case Op::Eigh: case Op::Svd:
        return linalg(ctx_, instr, in, outs);
      case Op::Fused: return fused(ctx_, instr, in, outs, sc);
      case Op::Full: return full(instr, sc, out);
      case Op::Arange: return arange(instr, sc, out);
      default:
        throw std::runtime_error(std::string(op_name(static_cast<int32_t>(instr.op))) + " is not supported on device gpu");
    }
  }

  // Host to device through two pinned buffers: the memcpy into one overlaps the upload of the
  // other. The caller holds mutex_.
  void upload(ArrayDesc& dst, const void* host_src) {
    // A graph would replay the copy from the staging buffer as it is then: refuse to record one.
    if (ctx_.patches) throw std::runtime_error("an upload from the host cannot be recorded in a CUDA graph");
    const size_t n = dst.nbytes();
    uint8_t* d = dst.bytes();
    const uint8_t* s = static_cast<const uint8_t*>(host_src);
    for (size_t off = 0, k = 0; off < n; off += kChunk, k ^= 1) {
      const size_t len = std::min(kChunk, n - off);
      check(cudaEventSynchronize(staged_[k]), "upload");  // the buffer's previous upload is done
      std::memcpy(pinned(static_cast<int>(k)), s + off, len);
      check(cudaMemcpyAsync(d + off, pinned(static_cast<int>(k)), len, cudaMemcpyHostToDevice, stream_), "upload");
      check(cudaEventRecord(staged_[k], stream_), "upload");
    }
  }

  uint8_t* pinned(int k) {
    if (!pinned_[k]) check(cudaMallocHost(&pinned_[k], kChunk), "cudaMallocHost");
    return static_cast<uint8_t*>(pinned_[k]);
  }

  // Each input copied into its slab of out (a strided view along the axis).
  void concatenate(const Instr& instr, const Inputs& in, ArrayDesc& out) {
    const int64_t axis = instr.ints.at(0);
    int64_t pos = 0;
    for (const ArrayDesc* x : in) {
      ArrayDesc part = out;
      part.shape = x->shape;
      part.offset = out.offset + pos * out.strides[axis];
      copy_strided(ctx_, *x, part);
      pos += x->shape[axis];
    }
  }

  // out = base, then update written over the slice (ints: start, step per axis).
  void slice_update(const Instr& instr, const Inputs& in, ArrayDesc& out) {
    const ArrayDesc &base = *in.at(0), &update = *in.at(1);
    copy_strided(ctx_, base, out);
    ArrayDesc view = out;
    view.shape = update.shape;
    for (int d = 0; d < out.ndim(); ++d) {
      const int64_t start = instr.ints.at(2 * d), step = instr.ints.at(2 * d + 1);
      if (update.shape[d] > 0) view.offset += start * out.strides[d];
      view.strides[d] = out.strides[d] * step;
    }
    copy_strided(ctx_, update, view);
  }

  // floorDivide then remainder, the binary kernels' own expressions (the cpu's divmod gives the same).
  void divmod(const Instr& instr, const Inputs& in, const Outputs& outs) {
    Instr part = instr;
    part.op = Op::FloorDivide;
    elementwise(ctx_, part, in, *outs.at(0));
    part.op = Op::Remainder;
    elementwise(ctx_, part, in, *outs.at(1));
  }

  // The value's bytes are computed on the host with the cpu's conversion rules, then broadcast
  // (while recording, read from a patch that each launch fills the same way).
  void full(const Instr& instr, Scalars sc, ArrayDesc& out) {
    if (instr.num_scalars != 1) throw std::runtime_error("full takes one scalar");
    if (ctx_.patches) return fill_device(ctx_, out, ctx_.patches->add(sc.words, Patches::Kind::FullBits, out.dtype));
    fill_bytes(ctx_, out, full_bits(out.dtype, sc));
  }

  // Computed on the host (like the cpu: start + i * step in double) and uploaded: aranges are
  // small, and this keeps one definition of the rounding.
  void arange(const Instr& instr, Scalars sc, ArrayDesc& out) {
    if (instr.num_scalars != 2) throw std::runtime_error("arange takes two scalars");
    const double start = sc.f(0), step = sc.f(1);
    std::vector<uint8_t> host(out.nbytes());
    DISPATCH_ALL(out.dtype, {
      T* p = reinterpret_cast<T*>(host.data());
      for (int64_t i = 0; i < out.size(); ++i) {
        const double v = start + static_cast<double>(i) * step;
        if constexpr (is_half_v<T>) p[i] = T(v);
        else p[i] = convert<T>(v);
      }
    });
    upload(out, host.data());
  }

  int device_;
  cudaStream_t stream_ = nullptr;
  DeviceAllocator allocator_;
  Context ctx_;
  // Recursive: a recording holds it from begin_capture to end_capture (other threads' work must
  // not enter the stream while it is captured), and the instructions it records lock it again.
  std::recursive_mutex mutex_;
  bool capturing_ = false;
  void* pinned_[2] = {nullptr, nullptr};
  cudaEvent_t staged_[2] = {nullptr, nullptr};
  std::shared_ptr<Recording> recording_;
  Lanes lanes_;  // the streams a recording spreads over (lanes.h)
};

}  // namespace
}  // namespace cuda

Backend* cuda_backend() {
  static Backend* b = []() -> Backend* {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {  // no driver (error 35) or no device
      cudaGetLastError();
      return nullptr;
    }
    try {
      return new cuda::CudaBackend(0);
    } catch (const std::exception&) {
      return nullptr;  // a device that cannot be set up is reported as absent
    }
  }();
  return b;
}

}  // namespace tessera
