// @file Batched matrix multiply: [..., M, K] @ [..., K, N] with equal batch shapes (the op layer
// broadcasts them as stride-0 views). float32/float64 go to the packed GEMM in gemm.cc; bfloat16
// to AMX tiles or AVX-512 BF16 dot products where the CPU has them (gemm_bf16.cc); other half
// types are widened to float32 for the GEMM (matmul_half); integer types use a plain loop with wrapping accumulation.
#include <algorithm>
#include <stdexcept>
#include <vector>

#include "gemm.h"
#include "kernels.h"
#include "threads.h"

namespace tessera::cpu {
namespace {

struct Batch {
  int64_t count = 1;
  Shape shape;
  // Element offset of batch b in an operand with the given strides.
  int64_t offset(int64_t b, const Shape& strides) const {
    int64_t off = 0;
    for (int d = static_cast<int>(shape.size()) - 1; d >= 0; --d) {
      off += (b % shape[d]) * strides[d];
      b /= shape[d];
    }
    return off;
  }
};

template <class T>
void matmul_generic(const ArrayDesc& a, const ArrayDesc& b, ArrayDesc& out, const Batch& batch, int64_t M, int64_t N,
                    int64_t K) {
  // Integers accumulate in uint64, which wraps like NumPy (signed overflow would be undefined).
  using Acc = std::conditional_t<is_float_v<T>, double, uint64_t>;
  int nd = a.ndim();
  int64_t rsA = a.strides[nd - 2], csA = a.strides[nd - 1], rsB = b.strides[nd - 2], csB = b.strides[nd - 1];
  const T* ap = a.data<T>();
  const T* bp = b.data<T>();
  T* op = out.data<T>();
  parallel_for(batch.count * M, std::max<int64_t>(1, 4096 / std::max<int64_t>(N * K, 1)), [&](int64_t s, int64_t e) {
    for (int64_t bi = s; bi < e; ++bi) {
      int64_t bt = bi / M, i = bi % M;
      const T* A = ap + batch.offset(bt, a.strides) + i * rsA;
      const T* B = bp + batch.offset(bt, b.strides);
      T* C = op + (bt * M + i) * N;
      for (int64_t j = 0; j < N; ++j) {
        Acc acc = 0;
        for (int64_t k = 0; k < K; ++k) {
          if constexpr (std::is_same_v<T, bool>) acc += Acc(A[k * csA] && B[k * rsB + j * csB]);
          else if constexpr (is_float_v<T>) acc += Acc(compute_t<T>(A[k * csA])) * Acc(compute_t<T>(B[k * rsB + j * csB]));
          else acc += Acc(A[k * csA]) * Acc(B[k * rsB + j * csB]);
        }
        if constexpr (is_half_v<T>) C[j] = T(acc);
        else if constexpr (std::is_same_v<T, bool>) C[j] = acc != 0;
        else C[j] = static_cast<T>(acc);
      }
    }
  });
}

template <class T, class G>
void matmul_blas(const ArrayDesc& a, const ArrayDesc& b, ArrayDesc& out, const Batch& batch, int64_t M, int64_t N,
                 int64_t K, G gemm) {
  int nd = a.ndim();
  int64_t rsA = a.strides[nd - 2], csA = a.strides[nd - 1], rsB = b.strides[nd - 2], csB = b.strides[nd - 1];
  auto one = [&](int64_t bt) {
    gemm(M, N, K, a.data<T>() + batch.offset(bt, a.strides), rsA, csA, b.data<T>() + batch.offset(bt, b.strides), rsB,
         csB, out.data<T>() + bt * M * N, N);
  };
  // Many small products: one per thread (gemm then runs inline); few large ones: gemm threads.
  if (batch.count > 1 && M * N * K < (int64_t(1) << 21))
    parallel_for(batch.count, 1, [&](int64_t s, int64_t e) { for (int64_t bt = s; bt < e; ++bt) one(bt); });
  else
    for (int64_t bt = 0; bt < batch.count; ++bt) one(bt);
}

// float16 / bfloat16: each product's operands widened to float32 (contiguous), multiplied by the
// packed float32 GEMM (float32 accumulation, as PyTorch's cpu half matmul), and the result rounded
// back: O(MK + KN + MN) conversions for O(MNK) multiply-adds. bfloat16 products take gemm_bf16.cc
// instead where bf16_path() has a faster way (AMX tiles ran 5-10x faster on a Xeon).
template <class H>
void matmul_half(const ArrayDesc& a, const ArrayDesc& b, ArrayDesc& out, const Batch& batch, int64_t M, int64_t N,
                 int64_t K) {
  const int nd = a.ndim();
  const int64_t rsA = a.strides[nd - 2], csA = a.strides[nd - 1], rsB = b.strides[nd - 2], csB = b.strides[nd - 1];
  std::vector<float> A(static_cast<size_t>(M * K)), B(static_cast<size_t>(K * N)), C(static_cast<size_t>(M * N));
  const auto widen = [](const H* src, int64_t rows, int64_t cols, int64_t rs, int64_t cs, float* dst) {
    parallel_for(rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(cols, 1)), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t c = 0; c < cols; ++c) dst[r * cols + c] = float(src[r * rs + c * cs]);
    });
  };
  for (int64_t bt = 0; bt < batch.count; ++bt) {
    widen(a.data<H>() + batch.offset(bt, a.strides), M, K, rsA, csA, A.data());
    widen(b.data<H>() + batch.offset(bt, b.strides), K, N, rsB, csB, B.data());
    gemm_f32(M, N, K, A.data(), K, 1, B.data(), N, 1, C.data(), N);
    H* dst = out.data<H>() + bt * M * N;
    parallel_for(M * N, 1 << 15, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) dst[i] = H(C[static_cast<size_t>(i)]);
    });
  }
}

// AMX tiles pad both output dimensions and k to multiples of 32; below these sizes the float32 path
// is as fast (at 32 x 64 x 32 the tiles already ran 50 GFLOP/s against 30).
bool bf16_path_worth_it(int64_t M, int64_t N, int64_t K) {
  return std::min(M, N) >= 16 && K >= 32 && M * N * K >= (int64_t(1) << 16) && bf16_path() != Bf16Path::Float32;
}

}  // namespace

void matmul(const Instr& instr, const Inputs& in, ArrayDesc& out) {
  // The fusion pass folds adds into products on the gpu only (epilogue.ts).
  if (matmul_epilogue(instr)) throw std::runtime_error("matmul epilogues run on the gpu only (this is a bug)");
  const ArrayDesc &a = *in[0], &b = *in[1];
  int nd = a.ndim();
  if (nd < 2 || b.ndim() != nd || out.ndim() != nd) throw std::runtime_error("operands must have equal rank >= 2 (this is a bug)");
  int64_t M = a.shape[nd - 2], K = a.shape[nd - 1], N = b.shape[nd - 1];
  Batch batch;
  batch.shape.assign(a.shape.begin(), a.shape.end() - 2);
  for (auto d : batch.shape) batch.count *= d;
  if (out.size() == 0) return;
  switch (a.dtype) {
    case DType::F32: return matmul_blas<float>(a, b, out, batch, M, N, K, gemm_f32);
    case DType::F64: return matmul_blas<double>(a, b, out, batch, M, N, K, gemm_f64);
    case DType::F16: return matmul_half<float16>(a, b, out, batch, M, N, K);
    case DType::BF16:
      if (bf16_path_worth_it(M, N, K)) return matmul_blas<bfloat16>(a, b, out, batch, M, N, K, gemm_bf16);
      return matmul_half<bfloat16>(a, b, out, batch, M, N, K);
    default: DISPATCH_ALL(a.dtype, matmul_generic<T>(a, b, out, batch, M, N, K));
  }
}

}  // namespace tessera::cpu
