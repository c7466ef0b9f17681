// @file The cpu backend: host allocations (64-byte aligned, cached) and the routing of each
// instruction to its kernel family.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#include "../backend.h"
#include "fused.h"
#include "kernels.h"

namespace tessera {

const char* dtype_name(DType t) {
  static const char* names[] = {"bool",  "uint8", "uint16",  "uint32",   "uint64",  "int8",   "int16",
                                "int32", "int64", "float16", "bfloat16", "float32", "float64"};
  int i = static_cast<int>(t);
  return i >= 0 && i < kNumDTypes ? names[i] : "?";
}

namespace cpu {
namespace {

class HostAllocator : public Allocator {
 protected:
  void* raw_alloc(size_t nbytes) override { return std::aligned_alloc(64, (nbytes + 63) / 64 * 64); }
  void raw_free(void* p) override { std::free(p); }
};

class CpuBackend : public Backend {
 public:
  CpuBackend(std::string name, std::vector<Op> unsupported) : name_(std::move(name)), unsupported_(std::move(unsupported)) {}
  const char* name() const override { return name_.c_str(); }
  Allocator& allocator() override { return allocator_; }
  bool supports(Op op) const override {
    return std::find(unsupported_.begin(), unsupported_.end(), op) == unsupported_.end();
  }

  void write(ArrayDesc& dst, const void* src) override {
    if (dst.nbytes() > 0) std::memcpy(dst.bytes(), src, dst.nbytes());  // an empty view may have no data pointer
  }

  void read(const ArrayDesc& src, void* host_dst) override {
    ArrayDesc dst;
    dst.dtype = src.dtype;
    dst.shape = src.shape;
    dst.strides = row_major_strides(src.shape);
    Storage view;  // borrows host_dst; no allocator, so nothing is freed
    view.data = host_dst;
    dst.storage = std::shared_ptr<Storage>(&view, [](Storage*) {});
    copy_strided(src, dst);
  }

  void run(const Instr& instr, const Inputs& in, const Outputs& outs, Scalars sc) override {
    for (ArrayDesc* o : outs) {
      if (o->storage) continue;  // donated
      o->storage = allocator_.allocate(o->nbytes());
      o->strides = row_major_strides(o->shape);
      o->offset = 0;
    }
    ArrayDesc& out = *outs.at(0);
    OpKind kind = op_kind(instr.op);
    if (kind == OpKind::source) return fill(instr, sc, out);
    if (kind == OpKind::reduce || instr.op == Op::Argmax || instr.op == Op::Argmin) return reduce(instr, in, out);
    switch (instr.op) {
      case Op::Copy: return copy_strided(*in.at(0), out);
      case Op::Concatenate: return concatenate(instr, in, out);
      case Op::Matmul: return matmul(instr, in, out);
      case Op::SliceUpdate: return slice_update(instr, in, out);
      case Op::Divmod: return divmod(in, outs);
      case Op::Fused:
        if (fused_members(instr.ints) == 1) return fused(instr, in, outs, sc);
        return for_each_member(instr, in, outs, [&](const Instr& one, const Inputs& a, const Outputs& b) { fused(one, a, b, sc); });
      case Op::Scan: return scan(instr, in, out);
      case Op::Sort: return sort(instr, in, outs);
      case Op::Cholesky: case Op::Inv: case Op::Solve: case Op::Qr: case Op::Eigh: case Op::Svd:
        return linalg(instr, in, outs);
      case Op::RandomBits: return random_bits(instr, in, out);
      case Op::Gather: return gather(instr, in, out);
      case Op::Scatter: return scatter(instr, in, out);
      case Op::Conv: return conv(instr, in, out);
      case Op::ConvWeightGrad: return conv_weight_grad(instr, in, out);
      case Op::Window: return window(instr, in, out);
      case Op::WindowAdd: return window_add(instr, in, out);
      case Op::LayerNorm: case Op::LayerNormBwd: case Op::RmsNorm: case Op::RmsNormBwd: case Op::Rope:
      case Op::Softmax: case Op::SoftmaxBwd: case Op::LogSumExp: case Op::Attention: case Op::AttentionBwd:
        return fast(instr, in, outs, sc);
      default: return elementwise(instr, in, out);
    }
  }

 private:
  std::string name_;
  std::vector<Op> unsupported_;
  HostAllocator allocator_;
};

}  // namespace
}  // namespace cpu

Backend& cpu_backend() {
  static Backend* b = new cpu::CpuBackend("cpu", {});
  return *b;
}

Backend* make_cpu_backend(const char* name, std::vector<Op> unsupported) {
  return new cpu::CpuBackend(name, std::move(unsupported));
}

}  // namespace tessera
