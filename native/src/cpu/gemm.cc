// @file Packed, cache-blocked GEMM (Goto/BLIS loop order): AVX2+FMA kernels picked at runtime, portable fallback.
#include "gemm.h"

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <thread>

#include "threads.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace tessera::cpu {
namespace {

// Grow-only 64-byte-aligned scratch. thread_local, so concurrent calls and the pool's workers
// never share packing space.
class Scratch {
 public:
  Scratch() = default;
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  ~Scratch() { std::free(raw_); }
  template <class T>
  T* get(size_t count) {
    size_t bytes = count * sizeof(T);
    if (bytes > cap_) {
      std::free(raw_);
      cap_ = 0;
      raw_ = std::malloc(bytes + 64);
      if (!raw_) throw std::bad_alloc();
      cap_ = bytes;
    }
    return reinterpret_cast<T*>((reinterpret_cast<uintptr_t>(raw_) + 63) & ~uintptr_t(63));
  }

 private:
  void* raw_ = nullptr;
  size_t cap_ = 0;
};

thread_local Scratch tls_pack_a;  // each thread's MC x KC block of A
thread_local Scratch tls_pack_b;  // the calling thread's packed panel of B, shared by the workers

template <class T>
struct Args {
  int64_t M, N, K;
  const T* A;
  int64_t rsA, csA;
  const T* B;
  int64_t rsB, csB;
  T* C;
  int64_t ldc;
};

// Micro-kernel: c[MR x NR] (row stride ldc) = (accumulate ? c : 0) + a_panel @ b_panel, where the
// packed a holds MR values per k and the packed b holds NR values per k.
template <class T>
using Kernel = void (*)(int64_t kc, const T* a, const T* b, T* c, int64_t ldc, bool accumulate);

// Packs an mc x kc block of A into MR-row micro-panels (see pack_a).
template <class T>
using PackA = void (*)(int64_t mc, int64_t kc, const T* A, int64_t rs, int64_t cs, T* dst);

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Packs rows [0, mc) x cols [0, kc) of A (already offset to the block) as MR-row micro-panels,
// k-major inside each panel; short panels are zero-padded so the kernel always runs full tiles.
template <class T, int MR>
void pack_a(int64_t mc, int64_t kc, const T* A, int64_t rs, int64_t cs, T* dst) {
  for (int64_t i0 = 0; i0 < mc; i0 += MR, dst += MR * kc) {
    const int64_t mr = std::min<int64_t>(MR, mc - i0);
    const T* src = A + i0 * rs;
    if (mr == MR && cs == 1) {
      const T* row[MR];
      for (int i = 0; i < MR; ++i) row[i] = src + i * rs;
      for (int64_t k = 0; k < kc; ++k)
        for (int i = 0; i < MR; ++i) dst[k * MR + i] = row[i][k];
    } else if (mr == MR && rs == 1) {
      for (int64_t k = 0; k < kc; ++k)
        for (int i = 0; i < MR; ++i) dst[k * MR + i] = src[k * cs + i];
    } else {
      for (int64_t k = 0; k < kc; ++k) {
        for (int64_t i = 0; i < mr; ++i) dst[k * MR + i] = src[i * rs + k * cs];
        for (int64_t i = mr; i < MR; ++i) dst[k * MR + i] = T(0);
      }
    }
  }
}

// Packs NR-column slivers [p0, p1) of the kc x nc block of B (already offset), each k-major and
// zero-padded to NR columns.
template <class T, int NR>
void pack_b(int64_t p0, int64_t p1, int64_t kc, int64_t nc, const T* B, int64_t rs, int64_t cs,
            T* dst) {
  for (int64_t p = p0; p < p1; ++p) {
    const int64_t j0 = p * NR, nr = std::min<int64_t>(NR, nc - j0);
    const T* src = B + j0 * cs;
    T* d = dst + p * NR * kc;
    if (nr == NR && cs == 1) {
      for (int64_t k = 0; k < kc; ++k) std::memcpy(d + k * NR, src + k * rs, NR * sizeof(T));
    } else if (nr == NR && rs == 1) {
      for (int64_t k = 0; k < kc; ++k)
        for (int j = 0; j < NR; ++j) d[k * NR + j] = src[j * cs + k];
    } else {
      for (int64_t k = 0; k < kc; ++k) {
        for (int64_t j = 0; j < nr; ++j) d[k * NR + j] = src[k * rs + j * cs];
        for (int64_t j = nr; j < NR; ++j) d[k * NR + j] = T(0);
      }
    }
  }
}

// Portable micro-kernel; fixed trip counts let -O3 keep the tile in vector registers.
template <class T, int MR, int NR>
void kernel_generic(int64_t kc, const T* a, const T* b, T* c, int64_t ldc, bool accumulate) {
  T ab[MR * NR] = {};
  for (int64_t k = 0; k < kc; ++k, a += MR, b += NR)
    for (int i = 0; i < MR; ++i) {
      const T ai = a[i];
      for (int j = 0; j < NR; ++j) ab[i * NR + j] += ai * b[j];
    }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) c[i * ldc + j] = accumulate ? c[i * ldc + j] + ab[i * NR + j] : ab[i * NR + j];
}

#if defined(__x86_64__)
// 6x16 float32 tile: 12 ymm accumulators, 2 B loads + 6 broadcasts per k, enough independent
// FMAs to cover the FMA latency on both ports.
__attribute__((target("avx2,fma"))) void kernel_f32_6x16_avx2(int64_t kc, const float* a,
                                                               const float* b, float* c,
                                                               int64_t ldc, bool accumulate) {
  for (int i = 0; i < 6; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + 15), _MM_HINT_T0);
  }
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
#define TG_STEP(i, r0, r1)                  \
  ai = _mm256_broadcast_ss(a + (i));        \
  r0 = _mm256_fmadd_ps(ai, b0, r0);         \
  r1 = _mm256_fmadd_ps(ai, b1, r1);
#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
    __m256 ai;
    TG_STEP(0, c00, c01) TG_STEP(1, c10, c11) TG_STEP(2, c20, c21)
    TG_STEP(3, c30, c31) TG_STEP(4, c40, c41) TG_STEP(5, c50, c51)
    a += 6;
    b += 16;
  }
#undef TG_STEP
#define TG_STORE(i, r0, r1)                                          \
  {                                                                  \
    float* p = c + (i) * ldc;                                        \
    if (accumulate) {                                                \
      r0 = _mm256_add_ps(_mm256_loadu_ps(p), r0);                    \
      r1 = _mm256_add_ps(_mm256_loadu_ps(p + 8), r1);                \
    }                                                                \
    _mm256_storeu_ps(p, r0);                                         \
    _mm256_storeu_ps(p + 8, r1);                                     \
  }
  TG_STORE(0, c00, c01) TG_STORE(1, c10, c11) TG_STORE(2, c20, c21)
  TG_STORE(3, c30, c31) TG_STORE(4, c40, c41) TG_STORE(5, c50, c51)
#undef TG_STORE
}

// 6x8 float64 tile: same shape of work as the float32 kernel, at 4 lanes per ymm.
__attribute__((target("avx2,fma"))) void kernel_f64_6x8_avx2(int64_t kc, const double* a,
                                                              const double* b, double* c,
                                                              int64_t ldc, bool accumulate) {
  for (int i = 0; i < 6; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + 7), _MM_HINT_T0);
  }
  __m256d c00 = _mm256_setzero_pd(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  __m256d c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
#define TG_STEP(i, r0, r1)                  \
  ai = _mm256_broadcast_sd(a + (i));        \
  r0 = _mm256_fmadd_pd(ai, b0, r0);         \
  r1 = _mm256_fmadd_pd(ai, b1, r1);
#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    const __m256d b0 = _mm256_load_pd(b), b1 = _mm256_load_pd(b + 4);
    __m256d ai;
    TG_STEP(0, c00, c01) TG_STEP(1, c10, c11) TG_STEP(2, c20, c21)
    TG_STEP(3, c30, c31) TG_STEP(4, c40, c41) TG_STEP(5, c50, c51)
    a += 6;
    b += 8;
  }
#undef TG_STEP
#define TG_STORE(i, r0, r1)                                          \
  {                                                                  \
    double* p = c + (i) * ldc;                                       \
    if (accumulate) {                                                \
      r0 = _mm256_add_pd(_mm256_loadu_pd(p), r0);                    \
      r1 = _mm256_add_pd(_mm256_loadu_pd(p + 4), r1);                \
    }                                                                \
    _mm256_storeu_pd(p, r0);                                         \
    _mm256_storeu_pd(p + 4, r1);                                     \
  }
  TG_STORE(0, c00, c01) TG_STORE(1, c10, c11) TG_STORE(2, c20, c21)
  TG_STORE(3, c30, c31) TG_STORE(4, c40, c41) TG_STORE(5, c50, c51)
#undef TG_STORE
}

// Row-major A (cs == 1) is the common case and the scalar gather dominates packing time, so full
// 6-row panels are transposed in registers: 8 k at a time, as 4-row groups plus a 2-row pair.
__attribute__((target("avx2,fma"))) void pack_a_f32_6_avx2(int64_t mc, int64_t kc, const float* A,
                                                            int64_t rs, int64_t cs, float* dst) {
  if (cs != 1) return pack_a<float, 6>(mc, kc, A, rs, cs, dst);
  const int64_t full = mc / 6 * 6;
  for (int64_t i0 = 0; i0 < full; i0 += 6, dst += 6 * kc) {
    const float* r0 = A + i0 * rs;
    const float *r1 = r0 + rs, *r2 = r1 + rs, *r3 = r2 + rs, *r4 = r3 + rs, *r5 = r4 + rs;
    float* d = dst;
    int64_t k = 0;
    for (; k + 8 <= kc; k += 8, d += 48) {
      const __m256 a0 = _mm256_loadu_ps(r0 + k), a1 = _mm256_loadu_ps(r1 + k);
      const __m256 a2 = _mm256_loadu_ps(r2 + k), a3 = _mm256_loadu_ps(r3 + k);
      const __m256 a4 = _mm256_loadu_ps(r4 + k), a5 = _mm256_loadu_ps(r5 + k);
      const __m256 t0 = _mm256_unpacklo_ps(a0, a1), t1 = _mm256_unpackhi_ps(a0, a1);
      const __m256 t2 = _mm256_unpacklo_ps(a2, a3), t3 = _mm256_unpackhi_ps(a2, a3);
      // cK holds rows 0-3 at k+K (low lane) and k+4+K (high lane).
      const __m256 c0 = _mm256_shuffle_ps(t0, t2, 0x44), c1 = _mm256_shuffle_ps(t0, t2, 0xEE);
      const __m256 c2 = _mm256_shuffle_ps(t1, t3, 0x44), c3 = _mm256_shuffle_ps(t1, t3, 0xEE);
      // u0: rows 4-5 at k, k+1 | k+4, k+5; u1: at k+2, k+3 | k+6, k+7.
      const __m256 u0 = _mm256_unpacklo_ps(a4, a5), u1 = _mm256_unpackhi_ps(a4, a5);
      const __m128 u0l = _mm256_castps256_ps128(u0), u0h = _mm256_extractf128_ps(u0, 1);
      const __m128 u1l = _mm256_castps256_ps128(u1), u1h = _mm256_extractf128_ps(u1, 1);
      _mm_storeu_ps(d + 0, _mm256_castps256_ps128(c0));
      _mm_storel_pi(reinterpret_cast<__m64*>(d + 4), u0l);
      _mm_storeu_ps(d + 6, _mm256_castps256_ps128(c1));
      _mm_storeh_pi(reinterpret_cast<__m64*>(d + 10), u0l);
      _mm_storeu_ps(d + 12, _mm256_castps256_ps128(c2));
      _mm_storel_pi(reinterpret_cast<__m64*>(d + 16), u1l);
      _mm_storeu_ps(d + 18, _mm256_castps256_ps128(c3));
      _mm_storeh_pi(reinterpret_cast<__m64*>(d + 22), u1l);
      _mm_storeu_ps(d + 24, _mm256_extractf128_ps(c0, 1));
      _mm_storel_pi(reinterpret_cast<__m64*>(d + 28), u0h);
      _mm_storeu_ps(d + 30, _mm256_extractf128_ps(c1, 1));
      _mm_storeh_pi(reinterpret_cast<__m64*>(d + 34), u0h);
      _mm_storeu_ps(d + 36, _mm256_extractf128_ps(c2, 1));
      _mm_storel_pi(reinterpret_cast<__m64*>(d + 40), u1h);
      _mm_storeu_ps(d + 42, _mm256_extractf128_ps(c3, 1));
      _mm_storeh_pi(reinterpret_cast<__m64*>(d + 46), u1h);
    }
    for (; k < kc; ++k, d += 6) {
      d[0] = r0[k], d[1] = r1[k], d[2] = r2[k], d[3] = r3[k], d[4] = r4[k], d[5] = r5[k];
    }
  }
  if (full < mc) pack_a<float, 6>(mc - full, kc, A + full * rs, rs, cs, dst);
}

// float64 version of the above: 4 k at a time.
__attribute__((target("avx2,fma"))) void pack_a_f64_6_avx2(int64_t mc, int64_t kc, const double* A,
                                                            int64_t rs, int64_t cs, double* dst) {
  if (cs != 1) return pack_a<double, 6>(mc, kc, A, rs, cs, dst);
  const int64_t full = mc / 6 * 6;
  for (int64_t i0 = 0; i0 < full; i0 += 6, dst += 6 * kc) {
    const double* r0 = A + i0 * rs;
    const double *r1 = r0 + rs, *r2 = r1 + rs, *r3 = r2 + rs, *r4 = r3 + rs, *r5 = r4 + rs;
    double* d = dst;
    int64_t k = 0;
    for (; k + 4 <= kc; k += 4, d += 24) {
      const __m256d a0 = _mm256_loadu_pd(r0 + k), a1 = _mm256_loadu_pd(r1 + k);
      const __m256d a2 = _mm256_loadu_pd(r2 + k), a3 = _mm256_loadu_pd(r3 + k);
      const __m256d a4 = _mm256_loadu_pd(r4 + k), a5 = _mm256_loadu_pd(r5 + k);
      const __m256d t0 = _mm256_unpacklo_pd(a0, a1), t1 = _mm256_unpackhi_pd(a0, a1);
      const __m256d t2 = _mm256_unpacklo_pd(a2, a3), t3 = _mm256_unpackhi_pd(a2, a3);
      const __m256d u0 = _mm256_unpacklo_pd(a4, a5), u1 = _mm256_unpackhi_pd(a4, a5);
      _mm256_storeu_pd(d + 0, _mm256_permute2f128_pd(t0, t2, 0x20));
      _mm_storeu_pd(d + 4, _mm256_castpd256_pd128(u0));
      _mm256_storeu_pd(d + 6, _mm256_permute2f128_pd(t1, t3, 0x20));
      _mm_storeu_pd(d + 10, _mm256_castpd256_pd128(u1));
      _mm256_storeu_pd(d + 12, _mm256_permute2f128_pd(t0, t2, 0x31));
      _mm_storeu_pd(d + 16, _mm256_extractf128_pd(u0, 1));
      _mm256_storeu_pd(d + 18, _mm256_permute2f128_pd(t1, t3, 0x31));
      _mm_storeu_pd(d + 22, _mm256_extractf128_pd(u1, 1));
    }
    for (; k < kc; ++k, d += 6) {
      d[0] = r0[k], d[1] = r1[k], d[2] = r2[k], d[3] = r3[k], d[4] = r4[k], d[5] = r5[k];
    }
  }
  if (full < mc) pack_a<double, 6>(mc - full, kc, A + full * rs, rs, cs, dst);
}
#endif  // __x86_64__

#if defined(__x86_64__)
bool has_avx2_fma() {
#if defined(TESSERA_GEMM_GENERIC_ONLY)  // lets tests exercise the portable path on any machine
  return false;
#else
  static const bool ok = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return ok;
#endif
}
#endif

// Below this many multiply-adds, packing and threading cost more than they save.
constexpr int64_t kDirectMaxWork = 16 * 16 * 16;
// Multiply-adds per thread (float64; float32 runs twice as fast so needs twice as many) below
// which waking another thread costs more than it saves: a wake takes tens of microseconds.
constexpr int64_t kMinWorkPerThread = int64_t(1) << 20;
// Cap on the calling thread's packed panel of B (kept between calls).
constexpr int64_t kPackBBytes = int64_t(8) << 20;
// B slivers packed as one unit (the grain at which threads share packing).
constexpr int64_t kPackGroup = 4;

// Plain i-k-j loop for tiny products (same summation order as a textbook triple loop).
template <class T>
void gemm_direct(const Args<T>& g) {
  for (int64_t i = 0; i < g.M; ++i) {
    T* c = g.C + i * g.ldc;
    for (int64_t j = 0; j < g.N; ++j) c[j] = T(0);
    for (int64_t k = 0; k < g.K; ++k) {
      const T a = g.A[i * g.rsA + k * g.csA];
      const T* b = g.B + k * g.rsB;
      for (int64_t j = 0; j < g.N; ++j) c[j] += a * b[j * g.csB];
    }
  }
}

// Waits for another thread that is packing right now (never for one that has not started).
inline void spin_pause(int& spins) {
  if (++spins < 64) {
#if defined(__x86_64__)
    _mm_pause();
#endif
  } else {
    std::this_thread::yield();
  }
}

template <class T, int MR, int NR>
struct Blocked {
  Kernel<T> kernel;
  PackA<T> pack_a_fn;
  int64_t MC, KC, NC;  // MC % MR == 0, NC % NR == 0

  // Rows [ic, ic + mc) x slivers [p0, p1) of one KC step; `ap` holds that row block's packed A.
  void macro(const Args<T>& g, const T* ap, const T* bslice, int64_t jc, int64_t nc, int64_t kc,
             bool accumulate, int64_t ic, int64_t mc, int64_t p0, int64_t p1) const {
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t nr = std::min<int64_t>(NR, nc - p * NR);
      const T* b = bslice + p * NR * kc;
      for (int64_t ir = 0; ir < mc; ir += MR) {
        const int64_t mr = std::min<int64_t>(MR, mc - ir);
        T* c = g.C + (ic + ir) * g.ldc + jc + p * NR;
        if (mr == MR && nr == NR) {
          kernel(kc, ap + ir * kc, b, c, g.ldc, accumulate);
        } else {
          // Edge tile: compute the full padded tile aside, then merge only the valid part.
          alignas(64) T tile[MR * NR];
          kernel(kc, ap + ir * kc, b, tile, NR, false);
          for (int64_t i = 0; i < mr; ++i)
            for (int64_t j = 0; j < nr; ++j)
              c[i * g.ldc + j] = accumulate ? c[i * g.ldc + j] + tile[i * NR + j] : tile[i * NR + j];
        }
      }
    }
  }

  // One parallel region per NC block of columns (usually one per call): waking the pool costs tens
  // of microseconds, so there are no barriers between KC steps. Work items (row block x column
  // group, each run over its K range in order) are claimed dynamically, so a late-waking worker
  // just takes fewer. B is packed once for the whole K x NC panel, lazily, by whichever thread
  // first needs each group of slivers; others only ever wait on a group being packed right now.
  void run(const Args<T>& g) const {
    const int64_t M = g.M, N = g.N, K = g.K;
    const double work = double(M) * double(N) * double(K);
    const double per_thread = double(kMinWorkPerThread) * double(8 / sizeof(T));
    const int threads = static_cast<int>(std::max(1.0, std::min<double>(num_threads(), work / per_thread)));
    // The packed panel (kb x nc_blk) stays within kPackBBytes: narrow NC first, then, for very
    // long K, split K into several regions (a barrier each).
    const int64_t budget = kPackBBytes / int64_t(sizeof(T));
    const int64_t nc_blk =
        std::min({NC, ceil_div(N, NR) * NR, std::max<int64_t>(16 * NR, budget / K / NR * NR)});
    const int64_t kb = std::min(K, std::max<int64_t>(KC, budget / nc_blk / KC * KC));
    T* bp = tls_pack_b.get<T>(static_cast<size_t>(kb * nc_blk));

    for (int64_t jc = 0; jc < N; jc += nc_blk) {
      const int64_t nc = std::min(nc_blk, N - jc), n_sl = ceil_div(nc, NR);
      const int64_t n_pg = ceil_div(n_sl, kPackGroup);  // sliver groups packed as one unit
      // Row blocks of at most MC; with threads, aim for a few items per thread (rows first, down
      // to 4 micro-panels; then column groups) so dynamic claiming can balance the load.
      int64_t n_rb = ceil_div(M, MC), n_cg = 1;
      if (threads > 1) {
        const int64_t target = 4 * threads;
        if (n_rb < target) n_rb = std::max(n_rb, std::min(target, ceil_div(M, 4 * MR)));
        if (n_rb < target) n_cg = std::min(n_pg, ceil_div(target, n_rb));
      }
      const int64_t mcb = ceil_div(ceil_div(M, n_rb), MR) * MR;
      n_rb = ceil_div(M, mcb);
      const int64_t n_items = n_rb * n_cg;

      for (int64_t k0 = 0; k0 < K; k0 += kb) {
        const int64_t k1 = std::min(K, k0 + kb), n_pc = ceil_div(k1 - k0, KC);
        // Per (KC step, sliver group): 0 = not packed, 1 = being packed, 2 = ready.
        std::unique_ptr<std::atomic<int>[]> state(new std::atomic<int>[n_pc * n_pg]);
        for (int64_t i = 0; i < n_pc * n_pg; ++i) state[i].store(0, std::memory_order_relaxed);
        std::atomic<int64_t> next_item{0};

        auto body = [&](int64_t, int64_t) {
          T* ap = tls_pack_a.get<T>(static_cast<size_t>(mcb * std::min(KC, K)));
          for (int64_t it; (it = next_item.fetch_add(1, std::memory_order_relaxed)) < n_items;) {
            const int64_t ib = it / n_cg, cg = it % n_cg;
            const int64_t ic = ib * mcb, mc = std::min(mcb, M - ic);
            const int64_t g0 = n_pg * cg / n_cg, g1 = n_pg * (cg + 1) / n_cg;
            for (int64_t q = 0; q < n_pc; ++q) {
              const int64_t pc = k0 + q * KC, kc = std::min(KC, k1 - pc);
              T* bslice = bp + (pc - k0) * nc_blk;
              std::atomic<int>* st = &state[q * n_pg];
              for (int64_t grp = g0; grp < g1; ++grp) {
                int expected = 0;
                if (st[grp].load(std::memory_order_relaxed) == 0 &&
                    st[grp].compare_exchange_strong(expected, 1, std::memory_order_acquire)) {
                  pack_b<T, NR>(grp * kPackGroup, std::min(n_sl, (grp + 1) * kPackGroup), kc, nc,
                                g.B + pc * g.rsB + jc * g.csB, g.rsB, g.csB, bslice);
                  st[grp].store(2, std::memory_order_release);
                }
              }
              pack_a_fn(mc, kc, g.A + ic * g.rsA + pc * g.csA, g.rsA, g.csA, ap);
              for (int64_t grp = g0; grp < g1; ++grp) {
                for (int spins = 0; st[grp].load(std::memory_order_acquire) != 2;) spin_pause(spins);
                macro(g, ap, bslice, jc, nc, kc, pc > 0, ic, mc, grp * kPackGroup,
                      std::min(n_sl, (grp + 1) * kPackGroup));
              }
            }
          }
        };
        if (threads > 1 && n_items > 1) {
          parallel_for(threads, 1, body);
        } else {
          body(0, 1);
        }
      }
    }
  }
};

template <class T>
bool trivial_cases(const Args<T>& g) {
  if (g.M <= 0 || g.N <= 0) return true;
  if (g.K <= 0) {
    for (int64_t i = 0; i < g.M; ++i) std::fill(g.C + i * g.ldc, g.C + i * g.ldc + g.N, T(0));
    return true;
  }
  if (double(g.M) * double(g.N) * double(g.K) <= double(kDirectMaxWork)) {
    gemm_direct(g);
    return true;
  }
  return false;
}

}  // namespace

void gemm_f32(int64_t M, int64_t N, int64_t K, const float* A, int64_t rsA, int64_t csA,
              const float* B, int64_t rsB, int64_t csB, float* C, int64_t ldc) {
  const Args<float> g{M, N, K, A, rsA, csA, B, rsB, csB, C, ldc};
  if (trivial_cases(g)) return;
#if defined(__x86_64__)
  if (has_avx2_fma()) {
    static const Blocked<float, 6, 16> avx2{kernel_f32_6x16_avx2, pack_a_f32_6_avx2, 144, 256, 4080};
    avx2.run(g);
    return;
  }
#endif
  static const Blocked<float, 4, 8> generic{kernel_generic<float, 4, 8>, pack_a<float, 4>, 128, 256, 2048};
  generic.run(g);
}

void gemm_f64(int64_t M, int64_t N, int64_t K, const double* A, int64_t rsA, int64_t csA,
              const double* B, int64_t rsB, int64_t csB, double* C, int64_t ldc) {
  const Args<double> g{M, N, K, A, rsA, csA, B, rsB, csB, C, ldc};
  if (trivial_cases(g)) return;
#if defined(__x86_64__)
  if (has_avx2_fma()) {
    static const Blocked<double, 6, 8> avx2{kernel_f64_6x8_avx2, pack_a_f64_6_avx2, 72, 256, 4080};
    avx2.run(g);
    return;
  }
#endif
  static const Blocked<double, 4, 4> generic{kernel_generic<double, 4, 4>, pack_a<double, 4>, 128, 256, 2048};
  generic.run(g);
}

}  // namespace tessera::cpu
