// @file Batched matmul on the gpu through cuBLASLt (matmul_lt.cc), else cuBLAS (float32, float64,
// and float16/bfloat16 with float32 accumulation), opened with dlopen when first needed: the build
// needs neither cuBLAS's headers nor its library, so the few declarations it uses live here.
// Row-major C = A @ B is computed as column-major C^T = B^T A^T, so no operand is transposed in
// memory; an operand whose last two axes have no unit stride, or whose batch axes do not reduce
// to one stride, is first copied to a contiguous temporary.
#include <dlfcn.h>

#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "kernels.h"

namespace tessera::cuda {
namespace {

// From cublas_api.h / library_types.h (values fixed by NVIDIA's ABI).
using cublasHandle_t = struct cublasContext*;
using cublasStatus_t = int;
constexpr int kOpN = 0, kOpT = 1;                      // cublasOperation_t
constexpr int kR32F = 0, kR64F = 1, kR16F = 2, kR16BF = 14;  // cudaDataType
constexpr int kCompute32F = 68, kCompute32FFastTF32 = 77, kCompute64F = 70;  // cublasComputeType_t
constexpr int kGemmDefault = -1;                       // cublasGemmAlgo_t
constexpr size_t kWorkspace = size_t(32) << 20;        // what cuBLAS asks for on Hopper

struct Cublas {
  cublasStatus_t (*create)(cublasHandle_t*) = nullptr;
  cublasStatus_t (*set_stream)(cublasHandle_t, cudaStream_t) = nullptr;
  cublasStatus_t (*set_workspace)(cublasHandle_t, void*, size_t) = nullptr;
  cublasStatus_t (*set_math_mode)(cublasHandle_t, int) = nullptr;
  cublasStatus_t (*gemm)(cublasHandle_t, int, int, int, int, int, const void*, const void*, int, int, long long, const void*,
                         int, int, long long, const void*, void*, int, int, long long, int, int, int) = nullptr;
  cublasHandle_t handle = nullptr;
  std::string error;  // why cuBLAS is unusable, if it is
  cudaStream_t current = nullptr;  // the stream calls are queued on now
};

Cublas& cublas(cudaStream_t stream) {
  static Cublas lib;
  static std::once_flag once;
  std::call_once(once, [&] {
    void* so = nullptr;  // the toolkit's own version first; the entry points used are the same since 12
    for (const char* name : {"libcublas.so.13", "libcublas.so.12", "libcublas.so"})
      if (!so) so = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (!so) {
      lib.error = std::string("cannot open libcublas.so.13 (") + dlerror() + ")";
      return;
    }
    lib.create = reinterpret_cast<decltype(lib.create)>(dlsym(so, "cublasCreate_v2"));
    lib.set_stream = reinterpret_cast<decltype(lib.set_stream)>(dlsym(so, "cublasSetStream_v2"));
    lib.gemm = reinterpret_cast<decltype(lib.gemm)>(dlsym(so, "cublasGemmStridedBatchedEx"));
    lib.set_workspace = reinterpret_cast<decltype(lib.set_workspace)>(dlsym(so, "cublasSetWorkspace_v2"));
    lib.set_math_mode = reinterpret_cast<decltype(lib.set_math_mode)>(dlsym(so, "cublasSetMathMode"));
    if (!lib.create || !lib.set_stream || !lib.gemm) {
      lib.error = "libcublas lacks cublasCreate_v2, cublasSetStream_v2 or cublasGemmStridedBatchedEx";
      return;
    }
    if (int s = lib.create(&lib.handle)) lib.error = "cublasCreate failed with status " + std::to_string(s);
    // float16/bfloat16 products: split-K partial sums are added in float32, never in the half
    // type (CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION), so the result is rounded once.
    constexpr int kDisallowReducedPrecisionReduction = 16;
    if (lib.error.empty() && lib.set_math_mode) lib.set_math_mode(lib.handle, kDisallowReducedPrecisionReduction);
  });
  if (!lib.error.empty()) throw std::runtime_error("matmul on device gpu: " + lib.error);
  if (lib.current != stream) {
    if (int s = lib.set_stream(lib.handle, stream)) throw std::runtime_error("matmul on device gpu: cublasSetStream failed with status " + std::to_string(s));
    lib.current = stream;
    size_t bytes = 0;  // setting the stream dropped the handle's workspace
    if (void* ws = workspace_for(stream, bytes); ws && lib.set_workspace) lib.set_workspace(lib.handle, ws, bytes);
  }
  return lib;
}

// How cuBLAS sees one operand [..., R, C]: its op, leading dimension and batch stride.
struct Operand {
  const void* data = nullptr;
  int op = kOpN;
  int64_t ld = 0, batch_stride = 0;
};

// Fills `o` if x's layout fits cuBLAS as it is. Row-major (unit column stride) is op N in the
// transposed problem; column-major (unit row stride) is op T.
bool fits(const ArrayDesc& x, Operand& o) {
  const int nd = x.ndim();
  const int64_t R = x.shape[nd - 2], C = x.shape[nd - 1], rs = x.strides[nd - 2], cs = x.strides[nd - 1];
  if ((cs == 1 || C == 1) && rs >= std::max<int64_t>(C, 1)) o.op = kOpN, o.ld = std::max<int64_t>(rs, 1);
  else if ((rs == 1 || R == 1) && cs >= std::max<int64_t>(R, 1)) o.op = kOpT, o.ld = std::max<int64_t>(cs, 1);
  else return false;
  if (R == 1 && C == 1) o.op = kOpN, o.ld = 1;
  // Batch axes must reduce to one stride (a contiguous or fully broadcast batch).
  int64_t stride = -1, expect = -1;
  for (int d = nd - 3; d >= 0; --d) {
    if (x.shape[d] == 1) continue;
    if (stride < 0) stride = x.strides[d], expect = x.strides[d] * x.shape[d];
    else if (x.strides[d] == expect) expect *= x.shape[d];
    else if (!(x.strides[d] == 0 && stride == 0)) return false;
  }
  o.batch_stride = stride < 0 ? 0 : stride;
  o.data = static_cast<const uint8_t*>(x.storage->data) + x.offset * itemsize(x.dtype);
  return o.batch_stride >= 0 && o.ld <= INT32_MAX;
}

// x, or a contiguous copy of it held by `keep`.
ArrayDesc usable(const Context& c, const ArrayDesc& x, Operand& o) {
  if (fits(x, o)) return x;
  ArrayDesc t;
  t.dtype = x.dtype;
  t.shape = x.shape;
  t.device = x.device;
  t.strides = row_major_strides(x.shape);
  t.storage = c.allocator->allocate(x.nbytes());
  copy_strided(c, x, t);
  if (!fits(t, o)) throw std::runtime_error("matmul on device gpu: operand layout (this is a bug)");
  return t;
}

}  // namespace

// A workspace of our own per stream, allocated once: without one, algorithms that want scratch
// space (split-K, TF32 on Hopper) are passed over or pay for an allocation per call; and a
// recording's lanes (lanes.h) may run products side by side, which must not share scratch space.
void* workspace_for(cudaStream_t stream, size_t& bytes) {
  static std::vector<std::pair<cudaStream_t, void*>> workspaces;  // under the backend's mutex
  bytes = kWorkspace;
  for (auto& [st, p] : workspaces)
    if (st == stream) return p;
  void* ws = nullptr;
  if (cudaMalloc(&ws, kWorkspace) != cudaSuccess) {
    cudaGetLastError();
    bytes = 0;
    return nullptr;
  }
  workspaces.emplace_back(stream, ws);
  return ws;
}

void gemm(const Context& c, DType t, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const void* A, int64_t lda, int64_t sa,
          const void* B, int64_t ldb, int64_t sb, void* C, int64_t ldc, int64_t sc, int64_t batch, bool accumulate) {
  if (t != DType::F32 && t != DType::F64) not_ported("gemm", t);
  if (M == 0 || N == 0 || batch == 0) return;
  for (int64_t v : {M, N, K, lda, ldb, ldc, batch})
    if (v > INT32_MAX) throw std::runtime_error("gemm on device gpu: a dimension exceeds 2^31 - 1");
  const bool f64 = t == DType::F64;
  if (K == 0) {  // an empty sum (cuBLAS may leave C alone): zero each batch's rows unless accumulating
    const size_t item = f64 ? 8 : 4;
    for (int64_t b = 0; b < batch && !accumulate; ++b)
      check(cudaMemset2DAsync(static_cast<uint8_t*>(C) + b * sc * item, ldc * item, 0, N * item, M, c.stream), "gemm");
    return;
  }
  Cublas& lib = cublas(c.stream);
  const double one_d = 1, beta_d = accumulate ? 1 : 0;
  const float one_f = 1, beta_f = accumulate ? 1 : 0;
  const int type = f64 ? kR64F : kR32F;
  const int compute = f64 ? kCompute64F : (c.allow_tf32 ? kCompute32FFastTF32 : kCompute32F);
  // Column-major: C^T [N, M] = op(B)^T [N, K] @ op(A)^T [K, M].
  int s = lib.gemm(lib.handle, tb ? kOpT : kOpN, ta ? kOpT : kOpN, int(N), int(M), int(K),
                   f64 ? static_cast<const void*>(&one_d) : &one_f, B, type, int(std::max<int64_t>(ldb, 1)), sb, A, type,
                   int(std::max<int64_t>(lda, 1)), sa, f64 ? static_cast<const void*>(&beta_d) : &beta_f, C, type,
                   int(std::max<int64_t>(ldc, 1)), sc, int(batch), compute, kGemmDefault);
  if (s != 0) throw std::runtime_error("gemm on device gpu: cublasGemmStridedBatchedEx failed with status " + std::to_string(s));
}

void matmul(const Context& c, const ArrayDesc& a, const ArrayDesc& b, ArrayDesc& out, const ArrayDesc* addend, const ArrayDesc* bias) {
  const int nd = a.ndim();
  // (With an epilogue, out may be the product's rows reshaped: contiguous, so laid out the same.)
  if (nd < 2 || b.ndim() != nd || (out.ndim() != nd && !addend && !bias))
    throw std::runtime_error("matmul: operands must have equal rank >= 2 (this is a bug)");
  const bool half = a.dtype == DType::F16 || a.dtype == DType::BF16;
  // (Other dtypes take no epilogue: executor.cc allows them on float32/float64 only.)
  if (a.dtype != DType::F32 && a.dtype != DType::F64 && !half) return matmul_generic(c, a, b, out);
  const int64_t M = a.shape[nd - 2], K = a.shape[nd - 1], N = b.shape[nd - 1];
  int64_t batch = 1;
  for (int d = 0; d < nd - 2; ++d) batch *= a.shape[d];
  if (out.size() == 0) return;
  if (M > INT32_MAX || N > INT32_MAX || K > INT32_MAX || batch > INT32_MAX)
    throw std::runtime_error("matmul on device gpu: a dimension exceeds 2^31 - 1");
  // The epilogue's operands as cuBLASLt reads them: the addend laid out as the output, the bias dense.
  ArrayDesc kc = addend ? contiguous(c, *addend) : ArrayDesc(), kbias = bias ? contiguous(c, *bias) : ArrayDesc();
  auto epilogue_after = [&] {  // the adds after a product that ran without them
    Instr add{};
    add.op = Op::Add;
    if (addend) elementwise(c, add, {&out, &kc}, out);
    if (bias) {
      ArrayDesc row = kbias;  // [N] broadcast over the output's rows
      row.shape = out.shape;
      row.strides.assign(out.ndim(), 0);
      row.strides[out.ndim() - 1] = 1;
      elementwise(c, add, {&out, &row}, out);
    }
  };
  if (K == 0) {  // an empty sum: zeros (cuBLAS with k = 0 leaves C alone)
    check(cudaMemsetAsync(out.storage->data, 0, out.nbytes(), c.stream), "matmul");
    return epilogue_after();
  }
  Operand oa, ob;
  ArrayDesc ka = usable(c, a, oa), kb = usable(c, b, ob);  // temporaries live until the call is queued
  LtProduct q{a.dtype, oa.op, ob.op, M, N, K, batch, oa.data, oa.ld, oa.batch_stride, ob.data, ob.ld, ob.batch_stride,
              addend ? kc.bytes() : nullptr, out.bytes(), bias ? kbias.bytes() : nullptr};
  // (out is a fresh buffer: the executor never hands a product an input's buffer.) cuBLASLt
  // first (matmul_lt.cc: less host time per call); cuBLAS where it offers no algorithm.
  if (lt_matmul(c, q)) return;
  Cublas& lib = cublas(c.stream);
  const bool f64 = a.dtype == DType::F64;
  const double one_d = 1, zero_d = 0;
  const float one_f = 1, zero_f = 0;
  // Half types multiply on the tensor cores and accumulate in float32, rounded once to the output
  // (the cpu accumulates them in double: the results agree within float32's accumulation bound).
  const int type = f64 ? kR64F : a.dtype == DType::F16 ? kR16F : a.dtype == DType::BF16 ? kR16BF : kR32F;
  const int compute = f64 ? kCompute64F : (c.allow_tf32 && !half ? kCompute32FFastTF32 : kCompute32F);
  // Column-major: C^T [N, M] = B^T [N, K] @ A^T [K, M].
  int s = lib.gemm(lib.handle, ob.op, oa.op, int(N), int(M), int(K), f64 ? static_cast<const void*>(&one_d) : &one_f, ob.data,
                   type, int(ob.ld), ob.batch_stride, oa.data, type, int(oa.ld), oa.batch_stride,
                   f64 ? static_cast<const void*>(&zero_d) : &zero_f, out.storage->data, type, int(N), M * N, int(batch),
                   compute, kGemmDefault);
  if (s != 0) throw std::runtime_error("matmul on device gpu: cublasGemmStridedBatchedEx failed with status " + std::to_string(s));
  epilogue_after();
}

}  // namespace tessera::cuda
