// Which cuBLAS entry point reaches PyTorch's matmul rates: StridedBatchedEx (ours), GemmEx, Lt.
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cstdio>
#include <vector>
#include <algorithm>
#define CK(x) do { auto s_ = (x); if (s_) { printf("%s:%d %s -> %d\n", __FILE__, __LINE__, #x, int(s_)); exit(1);} } while (0)
cudaStream_t st;
template <class F> float timeit(F f, int reps) {
  for (int i = 0; i < 3; ++i) f();
  cudaEvent_t a, b; cudaEventCreate(&a); cudaEventCreate(&b);
  cudaEventRecord(a, st);
  for (int i = 0; i < reps; ++i) f();
  cudaEventRecord(b, st); cudaEventSynchronize(b);
  float ms; cudaEventElapsedTime(&ms, a, b); return ms / reps;
}
int main() {
  cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking);
  cublasHandle_t h; CK(cublasCreate(&h)); CK(cublasSetStream(h, st));
  size_t wsz = 32 << 20; void* ws; cudaMalloc(&ws, wsz); CK(cublasSetWorkspace(h, ws, wsz));
  cublasLtHandle_t lt; CK(cublasLtCreate(&lt));
  for (int n : {1024, 2048, 4096}) {
    void *A, *B, *C; size_t bytes = size_t(n) * n * 4;
    cudaMalloc(&A, bytes); cudaMalloc(&B, bytes); cudaMalloc(&C, bytes);
    cudaMemset(A, 0, bytes); cudaMemset(B, 0, bytes);
    struct Cfg { const char* name; cudaDataType t; cublasComputeType_t c; };
    for (Cfg cfg : {Cfg{"f32", CUDA_R_32F, CUBLAS_COMPUTE_32F}, Cfg{"tf32", CUDA_R_32F, CUBLAS_COMPUTE_32F_FAST_TF32}, Cfg{"bf16", CUDA_R_16BF, CUBLAS_COMPUTE_32F}}) {
      float one = 1, zero = 0; double fl = 2.0 * n * n * n;
      auto tf = [&](float ms) { return fl / (ms * 1e-3) / 1e12; };
      int reps = n == 4096 ? 20 : 100;
      for (int mode : {0, 16}) {
        CK(cublasSetMathMode(h, cublasMath_t(mode)));
        float t1 = timeit([&] { cublasGemmStridedBatchedEx(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, B, cfg.t, n, 0, A, cfg.t, n, 0, &zero, C, cfg.t, n, 0, 1, cfg.c, CUBLAS_GEMM_DEFAULT); }, reps);
        float t2 = timeit([&] { cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, B, cfg.t, n, A, cfg.t, n, &zero, C, cfg.t, n, cfg.c, CUBLAS_GEMM_DEFAULT); }, reps);
        printf("n=%d %s mathmode=%d: StridedBatchedEx %.1f  GemmEx %.1f TFLOP/s\n", n, cfg.name, mode, tf(t1), tf(t2));
      }
      cublasLtMatmulDesc_t op; CK(cublasLtMatmulDescCreate(&op, cfg.c, CUDA_R_32F));
      cublasLtMatrixLayout_t l; CK(cublasLtMatrixLayoutCreate(&l, cfg.t, n, n, n));
      for (size_t w : {size_t(0), size_t(4) << 20, wsz}) {
        cublasLtMatmulPreference_t pref; CK(cublasLtMatmulPreferenceCreate(&pref));
        CK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &w, sizeof(w)));
        cublasLtMatmulHeuristicResult_t res[8]; int got = 0;
        CK(cublasLtMatmulAlgoGetHeuristic(lt, op, l, l, l, l, pref, 8, res, &got));
        printf("n=%d %s Lt ws=%zuMB:", n, cfg.name, w >> 20);
        for (int i = 0; i < got; ++i) {
          float t = timeit([&] { cublasLtMatmul(lt, op, &one, B, l, A, l, &zero, C, l, C, l, &res[i].algo, ws, w, st); }, reps);
          printf(" [%d] %.1f", i, tf(t));
        }
        printf("\n");
        cublasLtMatmulPreferenceDestroy(pref);
      }
      cublasLtMatrixLayoutDestroy(l); cublasLtMatmulDescDestroy(op);
    }
    cudaFree(A); cudaFree(B); cudaFree(C);
  }
  CK(cudaGetLastError());
  return 0;
}
