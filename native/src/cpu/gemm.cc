// @file Blocked, packed GEMM (GotoBLAS/BLIS loop structure) with an AVX2+FMA micro-kernel picked at runtime and a portable fallback.
#include "gemm.h"

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>

#include "threads.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#ifndef TG_MC32
#define TG_MC32 144
#endif
#ifndef TG_KC32
#define TG_KC32 256
#endif
#ifndef TG_NC32
#define TG_NC32 4080
#endif
#ifndef TG_MC64
#define TG_MC64 72
#endif
#ifndef TG_KC64
#define TG_KC64 256
#endif
#ifndef TG_NC64
#define TG_NC64 4080
#endif
#ifndef TG_NSPLIT_PENALTY
#define TG_NSPLIT_PENALTY 0.01
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
thread_local Scratch tls_pack_b;  // the calling thread's KC x NC panel of B, shared by the workers

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
#endif  // __x86_64__

bool has_avx2_fma() {
#if defined(__x86_64__) && !defined(TESSERA_GEMM_GENERIC_ONLY)
  static const bool ok = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return ok;
#else
  return false;
#endif
}

// Below this many multiply-adds, packing and threading cost more than they save.
constexpr int64_t kDirectMaxWork = 16 * 16 * 16;
// Multiply-adds per thread below which another thread is not worth waking.
constexpr int64_t kMinWorkPerThread = 64 * 64 * 64;

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

// Splits `threads` into a tm x tn grid over MR-row panels and NR-column slivers, maximizing how
// evenly the panels divide; splitting N costs a little extra (each column group repacks A).
void choose_grid(int64_t m_panels, int64_t n_panels, int threads, int& tm, int& tn) {
  double best = -1;
  tm = 1;
  tn = 1;
  for (int a = 1; a <= threads; ++a) {
    if (threads % a) continue;
    const int b = threads / a;
    const double em = double(m_panels) / (a * ceil_div(m_panels, a));
    const double en = double(n_panels) / (b * ceil_div(n_panels, b));
    const double score = em * en - TG_NSPLIT_PENALTY * (b - 1);
    if (score > best) {
      best = score;
      tm = a;
      tn = b;
    }
  }
}

template <class T, int MR, int NR>
struct Blocked {
  Kernel<T> kernel;
  int64_t MC, KC, NC;  // MC % MR == 0, NC % NR == 0

  // One thread's share of a (jc, pc) step: rows [m0, m1) x slivers [p0, p1) of the packed B.
  void macro(const Args<T>& g, const T* bp, int64_t jc, int64_t nc, int64_t pc, int64_t kc,
             int64_t m0, int64_t m1, int64_t p0, int64_t p1) const {
    if (m0 >= m1 || p0 >= p1) return;
    // Even MC blocks (multiples of MR) so the last block isn't a sliver.
    const int64_t nblocks = ceil_div(m1 - m0, MC);
    const int64_t mcb = ceil_div(ceil_div(m1 - m0, nblocks), MR) * MR;
    T* ap = tls_pack_a.get<T>(static_cast<size_t>(mcb * kc));
    const bool accumulate = pc > 0;
    for (int64_t ic = m0; ic < m1; ic += mcb) {
      const int64_t mc = std::min(mcb, m1 - ic);
      pack_a<T, MR>(mc, kc, g.A + ic * g.rsA + pc * g.csA, g.rsA, g.csA, ap);
      for (int64_t p = p0; p < p1; ++p) {
        const int64_t nr = std::min<int64_t>(NR, nc - p * NR);
        const T* b = bp + p * NR * kc;
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
  }

  void run(const Args<T>& g) const {
    const int64_t work = g.M * g.N * g.K;
    const int threads =
        static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(num_threads(), work / kMinWorkPerThread)));
    const int64_t nc_max = std::min(NC, ceil_div(g.N, NR) * NR);
    T* bp = tls_pack_b.get<T>(static_cast<size_t>(std::min(KC, g.K) * nc_max));
    const int64_t m_panels = ceil_div(g.M, MR);
    for (int64_t jc = 0; jc < g.N; jc += NC) {
      const int64_t nc = std::min(NC, g.N - jc), n_panels = ceil_div(nc, NR);
      int tm = 1, tn = 1;
      if (threads > 1) choose_grid(m_panels, n_panels, threads, tm, tn);
      for (int64_t pc = 0; pc < g.K; pc += KC) {
        const int64_t kc = std::min(KC, g.K - pc);
        const T* bsrc = g.B + pc * g.rsB + jc * g.csB;
        if (threads > 1 && n_panels > 1) {
          parallel_for(n_panels, ceil_div(n_panels, threads), [&](int64_t p0, int64_t p1) {
            pack_b<T, NR>(p0, p1, kc, nc, bsrc, g.rsB, g.csB, bp);
          });
        } else {
          pack_b<T, NR>(0, n_panels, kc, nc, bsrc, g.rsB, g.csB, bp);
        }
        if (tm * tn == 1) {
          macro(g, bp, jc, nc, pc, kc, 0, g.M, 0, n_panels);
        } else {
          parallel_for(tm * tn, 1, [&](int64_t t0, int64_t t1) {
            for (int64_t t = t0; t < t1; ++t) {
              const int64_t ti = t / tn, tj = t % tn;
              const int64_t m0 = std::min(g.M, m_panels * ti / tm * MR);
              const int64_t m1 = std::min(g.M, m_panels * (ti + 1) / tm * MR);
              macro(g, bp, jc, nc, pc, kc, m0, m1, n_panels * tj / tn, n_panels * (tj + 1) / tn);
            }
          });
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
  if (g.M * g.N * g.K <= kDirectMaxWork) {
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
    static const Blocked<float, 6, 16> avx2{kernel_f32_6x16_avx2, TG_MC32, TG_KC32, TG_NC32};
    avx2.run(g);
    return;
  }
#endif
  static const Blocked<float, 4, 8> generic{kernel_generic<float, 4, 8>, 128, 256, 2048};
  generic.run(g);
}

void gemm_f64(int64_t M, int64_t N, int64_t K, const double* A, int64_t rsA, int64_t csA,
              const double* B, int64_t rsB, int64_t csB, double* C, int64_t ldc) {
  const Args<double> g{M, N, K, A, rsA, csA, B, rsB, csB, C, ldc};
  if (trivial_cases(g)) return;
#if defined(__x86_64__)
  if (has_avx2_fma()) {
    static const Blocked<double, 6, 8> avx2{kernel_f64_6x8_avx2, TG_MC64, TG_KC64, TG_NC64};
    avx2.run(g);
    return;
  }
#endif
  static const Blocked<double, 4, 4> generic{kernel_generic<double, 4, 4>, 128, 256, 2048};
  generic.run(g);
}

}  // namespace tessera::cpu
