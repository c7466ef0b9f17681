// @file Packed, cache-blocked GEMM (Goto/BLIS loop order): the driver. Micro-kernels for AVX-512 and
// AVX2+FMA (gemm_avx512.cc, gemm_avx2.cc) are picked at run time (isa.h), with a portable fallback.
#include "gemm.h"

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <thread>

#include "gemm_kernels.h"
#include "isa.h"
#include "scratch.h"
#include "threads.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace tessera::cpu {
namespace {

using namespace gemm_detail;

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
  int64_t csC = 1;  // C's column stride: 1, or ldc's role swapped in a transposed problem (narrow())
};


// Packs NR-column slivers [p0, p1) of the kc x nc block of B (already offset), each k-major and
// zero-padded to NR columns.
template <class T, int NR>
void pack_b(int64_t p0, int64_t p1, int64_t kc, int64_t nc, const T* B, int64_t rs, int64_t cs,
            T* dst) {
  // Row-major B, full slivers: walk each source row once across all of them (one pass over B's
  // pages, rather than one per sliver).
  if (cs == 1 && p1 * NR <= nc) {
    for (int64_t k = 0; k < kc; ++k) {
      const T* src = B + k * rs + p0 * NR;
      T* d = dst + p0 * NR * kc + k * NR;
      for (int64_t p = p0; p < p1; ++p, src += NR, d += NR * kc) std::memcpy(d, src, NR * sizeof(T));
    }
    return;
  }
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

// A product much narrower than a micro-tile (N < NR / 2: a classifier's 10 outputs against 32
// columns per tile) as its transpose, C^T = B^T A^T, so the narrow side fills the tile's rows
// instead (10 of 12). Each element sums the same products in the same order, so the bits are the
// same. Only where A is stored k-major (a weight gradient's X^T): A^T is then B^T's row-major
// operand, packed by plain copies. The weight gradient of a 10-way classifier (512 x 256 x 10,
// A transposed) ran 40 -> 75 GFLOP/s so; with a row-major A, packing A^T's transpose cost what
// the fuller tiles saved.
template <class T>
Args<T> narrow(const Args<T>& g, int MR, int NR) {
  if (!(2 * g.N < NR && g.M >= NR && g.M > MR && g.rsA == 1)) return g;
  Args<T> t{g.N, g.M, g.K, g.B, g.csB, g.rsB, g.A, g.csA, g.rsA, g.C, 1};
  t.csC = g.ldc;
  return t;
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
        T* c = g.C + (ic + ir) * g.ldc + (jc + p * NR) * g.csC;
        if (mr == MR && nr == NR && g.csC == 1) {
          kernel(kc, ap + ir * kc, b, c, g.ldc, accumulate);
        } else {
          // Edge tile (or a transposed C): compute the full padded tile aside, then merge only the
          // valid part.
          alignas(64) T tile[MR * NR];
          kernel(kc, ap + ir * kc, b, tile, NR, false);
          for (int64_t i = 0; i < mr; ++i)
            for (int64_t j = 0; j < nr; ++j)
              c[i * g.ldc + j * g.csC] = accumulate ? c[i * g.ldc + j * g.csC] + tile[i * NR + j] : tile[i * NR + j];
        }
      }
    }
  }

  // One parallel region per NC block of columns (usually one per call): waking the pool costs tens
  // of microseconds, so there are no barriers between KC steps. Threads claim runs of MR-row
  // micro-panels (each run over its K range in order), at most MC rows and fewer as the work runs
  // out (guided scheduling): a late-waking worker just takes less, and the threads finish within
  // a couple of micro-panels of each other (fixed row blocks left one thread idle for up to a
  // whole block). B is packed once for the whole K x NC panel, lazily, by whichever thread first
  // needs each group of slivers; others only ever wait on a group being packed right now.
  void run(const Args<T>& given) const {
    const Args<T> g = narrow(given, MR, NR);
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
    const int64_t n_mp = ceil_div(M, MR), max_run = MC / MR;  // micro-panels; the most one claim takes
    constexpr int64_t kMinRun = 2;  // the fewest micro-panels a claim takes (each reloads B slivers)

    for (int64_t jc = 0; jc < N; jc += nc_blk) {
      const int64_t nc = std::min(nc_blk, N - jc), n_sl = ceil_div(nc, NR);
      const int64_t n_pg = ceil_div(n_sl, kPackGroup);  // sliver groups packed as one unit
      // Few rows for the threads (under 4 micro-panels each per thread): split the columns into
      // groups too, claimed separately.
      int64_t n_cg = 1;
      if (threads > 1) {
        const int64_t target = 4 * threads, row_items = ceil_div(n_mp, 4);
        if (row_items < target) n_cg = std::min(n_pg, ceil_div(target, row_items));
      }
      const int64_t n_units = n_cg * n_mp;  // what threads claim: (column group, micro-panel)

      for (int64_t k0 = 0; k0 < K; k0 += kb) {
        // KC steps of equal depth: a short last step would spend a whole C update on few k.
        const int64_t k1 = std::min(K, k0 + kb), n_pc = ceil_div(k1 - k0, KC);
        const int64_t kcs = ceil_div(k1 - k0, n_pc);
        // Per (KC step, sliver group): 0 = not packed, 1 = being packed, 2 = ready.
        std::unique_ptr<std::atomic<int>[]> state(new std::atomic<int>[n_pc * n_pg]);
        for (int64_t i = 0; i < n_pc * n_pg; ++i) state[i].store(0, std::memory_order_relaxed);
        std::atomic<int64_t> next_unit{0};
        // Claims the next run [u0, u1) of units, all in one column group; false when none is left.
        auto claim = [&](int64_t& u0, int64_t& u1) {
          for (int64_t cur = next_unit.load(std::memory_order_relaxed);;) {
            if (cur >= n_units) return false;
            const int64_t guided = (n_units - cur) / (2 * threads);
            const int64_t take = std::min({max_run, std::max(kMinRun, guided), n_mp - cur % n_mp});
            if (next_unit.compare_exchange_weak(cur, cur + take, std::memory_order_relaxed)) {
              u0 = cur, u1 = cur + take;
              return true;
            }
          }
        };

        auto body = [&](int64_t, int64_t) {
          T* ap = tls_pack_a.get<T>(static_cast<size_t>(max_run * MR * kcs));
          for (int64_t u0, u1; claim(u0, u1);) {
            const int64_t cg = u0 / n_mp, ic = (u0 % n_mp) * MR, mc = std::min((u1 - u0) * MR, M - ic);
            const int64_t g0 = n_pg * cg / n_cg, g1 = n_pg * (cg + 1) / n_cg;
            for (int64_t q = 0; q < n_pc; ++q) {
              const int64_t pc = k0 + q * kcs, kc = std::min(kcs, k1 - pc);
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
        if (threads > 1 && n_units > 1) {
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
  // Fewer than 16 columns against a transposed B (x @ W^T, a classifier head): dot products, no
  // packing (gemm_avx512.cc, gemm_avx2.cc). Threads take runs of rows, at least kMinWorkPerThread
  // multiply-adds each.
  if (N < 16 && csA == 1 && rsB == 1 && K >= 16 && (cpu_isa() == Isa::Avx512 || cpu_isa() == Isa::Avx2)) {
    const auto dot = cpu_isa() == Isa::Avx512 ? dot_narrow_f32_avx512 : dot_narrow_f32_avx2;
    const int64_t grain = std::max<int64_t>(2, kMinWorkPerThread / std::max<int64_t>(1, N * K) / 2 * 2);
    parallel_for(M, grain, [&](int64_t r0, int64_t r1) { dot(r0, r1, N, K, A, rsA, B, csB, C, ldc); });
    return;
  }
  if (cpu_isa() == Isa::Avx512) {
    // Zen 5 (1 MB L2): deep KC, few rows per claim. C is read and written once per KC step (at
    // KC 256 those updates were the bottleneck from 1024 up), and a 48 x 1024 block of A plus a
    // 1024 x 32 sliver of B still fit L2. Intel Xeons (2 MB L2) take more rows per claim: 120 x
    // 1024 (a 480 KiB block of A). Before the micro-kernel prefetched B, half that depth ran 3-5%
    // faster there; with the prefetch, 1024 ran 1.5-2% faster at 1024-2048 than 512 and the same
    // at 512 (2026-12-02, Sapphire Rapids, three interleaved sweeps of MC 96-192 x KC 512-1024).
    static const Blocked<float, 12, 32> zen{kernel_f32_12x32_avx512, pack_a_f32_12_avx512, 48, 1024, 4096};
    static const Blocked<float, 12, 32> xeon{kernel_f32_12x32_avx512, pack_a_f32_12_avx512, 120, 1024, 4096};
    static const bool intel = __builtin_cpu_is("intel");
    (intel ? xeon : zen).run(g);
    return;
  }
  if (cpu_isa() == Isa::Avx2) {
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
  if (cpu_isa() == Isa::Avx512) {
    static const Blocked<double, 12, 16> avx512{kernel_f64_12x16_avx512, pack_a_f64_12_avx512, 72, 256, 4096};
    avx512.run(g);
    return;
  }
  if (cpu_isa() == Isa::Avx2) {
    static const Blocked<double, 6, 8> avx2{kernel_f64_6x8_avx2, pack_a_f64_6_avx2, 72, 256, 4080};
    avx2.run(g);
    return;
  }
#endif
  static const Blocked<double, 4, 4> generic{kernel_generic<double, 4, 4>, pack_a<double, 4>, 128, 256, 2048};
  generic.run(g);
}

}  // namespace tessera::cpu
