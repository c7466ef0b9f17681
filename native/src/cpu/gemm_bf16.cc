// @file bfloat16 GEMM (C = A @ B, float32 accumulation, rounded once to bfloat16) on the two
// paths bf16_path() picks (gemm.h): Intel AMX tiles, and AVX-512 BF16 dot products (vdpbf16ps).
//
// Tiles. A tile multiply (TDPBF16PS) takes a 16 x 32 bfloat16 "row" tile R (16 output rows, 32
// values of k each), a 16 x 16 pair "VNNI" tile V (16 pairs of k, 16 output columns, each pair
// adjacent) and adds R V into a 16 x 16 float32 tile. A 32 x 32 block of C takes four accumulator
// tiles, two R and two V tiles (all eight). Operands are packed into whole 1 KiB tiles, zero padded
// to 32 rows / columns and to a multiple of 32 in k, so the kernel never sees an edge; an R operand
// whose rows run along k and fill every tile is instead read in place (tile loads take a row
// stride). V tiles interleave rows that run along the output columns, or transpose (16 x 16 words
// of 32 bits) columns that run along k; R tiles from columns that run along the rows take both.
// The tiles compute C or its transpose (C^T = B^T A^T, written back transposed), whichever reads
// its R operand in place, else whichever has more rows. A 2-core Sapphire Rapids (2026-12-02) ran
// 2.5-3.0 TFLOP/s at 512-2048 with R in place, 2.2-2.5 with R packed, 1.04-1.78x PyTorch 1.13's
// oneDNN (bench/core.mjs), against 0.16-0.29 for the widened float32 path. One core's tiles peak
// at 3.8 TFLOP/s (a probe of back-to-back tile multiplies).
//
// Numerics, as oneDNN's (PyTorch's cpu bfloat16 matmul) on the same hardware: every bfloat16
// product is exact in float32 and is added in round-to-nearest-even, but both instructions treat
// subnormal inputs and results (below 2^-126 in magnitude) as zero. TESSERA_CPU_BF16=float32 (or
// TESSERA_CPU_ISA below avx512) takes the float32 path instead, which keeps subnormals.
#include "gemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#include "isa.h"
#include "scratch.h"
#include "threads.h"

#if defined(__x86_64__) && defined(__linux__) && !defined(TESSERA_GEMM_GENERIC_ONLY)
#define TESSERA_AMX 1
// GCC 12's AVX-512 headers trip its own uninitialized-use warnings (as in gemm_avx512.cc).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace tessera::cpu {

#if TESSERA_AMX
namespace {

// The best path the CPU and the OS allow, lowered by TESSERA_CPU_BF16=dot|float32 (never raised).
Bf16Path detect_path() {
  if (cpu_isa() != Isa::Avx512) return Bf16Path::Float32;
  const char* env = std::getenv("TESSERA_CPU_BF16");
  const std::string want = env ? env : "";
  if (want == "float32") return Bf16Path::Float32;
  unsigned a, b, c, d;
  if (!__get_cpuid_count(7, 1, &a, &b, &c, &d) || !(a & (1u << 5))) return Bf16Path::Float32;  // AVX512_BF16
  const Bf16Path dot = want == "dot" || __builtin_cpu_is("amd") ? Bf16Path::Dot : Bf16Path::Float32;
  if (want == "dot" || !__get_cpuid_count(7, 0, &a, &b, &c, &d)) return dot;
  const bool tile = d & (1u << 24), bf16 = d & (1u << 22);
  if (!tile || !bf16) return dot;
  // The OS must manage the tile state (XCR0 bits 17 and 18)...
  if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return dot;  // OSXSAVE
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  if ((lo & (3u << 17)) != (3u << 17)) return dot;
  // ...and Linux hands it out per process on request (it refuses when a thread's alternate signal
  // stack is too small for the tile state; once granted, it refuses such small stacks to every
  // thread of the process that asks for one later).
  constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0 ? Bf16Path::Amx : dot;
}

// Helpers shared by both paths take TG_BF16; tile code TG_AMX.
#define TG_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))
#define TG_AMX __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))

constexpr int64_t kTile = 512;  // bfloat16 values per 1 KiB tile (16 rows x 64 bytes)

// Tiles 0-3: the 2 x 2 float32 accumulators of a 32 x 32 block; 4-5: R tiles; 6-7: V tiles. All
// are 16 rows of 64 bytes.
struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0, reserved[14] = {};
  uint16_t colsb[16] = {64, 64, 64, 64, 64, 64, 64, 64};
  uint8_t rows[16] = {16, 16, 16, 16, 16, 16, 16, 16};
};

// One operand as (row, k) or (k, column) pairs of strides, in elements.
struct Operand {
  const uint16_t* p;
  int64_t rs, cs;
};

struct Problem {
  int64_t M, N, K;  // rows of R, columns of V, depth
  Operand r, v;
  uint16_t* C;
  int64_t rsC, csC;  // where result (i, j) goes: C[i * rsC + j * csC]
};

// Where a row tile's R tiles are: k step kb at p + kb * step, rows `stride` bytes apart.
struct RTiles {
  const uint16_t* p;
  int64_t step, stride;
};

// 16 32-bit words per register, rows r[0..15] -> columns: r[i] becomes column i of the input.
TG_BF16 inline void transpose16x16(__m512i r[16]) {
  __m512i t[16], u[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {  // u[4i + q], lane L: column 4L + q of rows 4i..4i+3
    u[4 * i + 0] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
    u[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
    u[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
    u[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
  }
  for (int q = 0; q < 4; ++q) {
    const __m512i v = _mm512_shuffle_i32x4(u[q], u[4 + q], 0x88), w = _mm512_shuffle_i32x4(u[q], u[4 + q], 0xdd);
    const __m512i v2 = _mm512_shuffle_i32x4(u[8 + q], u[12 + q], 0x88), w2 = _mm512_shuffle_i32x4(u[8 + q], u[12 + q], 0xdd);
    r[q] = _mm512_shuffle_i32x4(v, v2, 0x88);
    r[8 + q] = _mm512_shuffle_i32x4(v, v2, 0xdd);
    r[4 + q] = _mm512_shuffle_i32x4(w, w2, 0x88);
    r[12 + q] = _mm512_shuffle_i32x4(w, w2, 0xdd);
  }
}

// Two runs of 16 bfloat16 -> 16 pairs (x0[i], x1[i]), the first of each pair in the low half.
TG_BF16 inline __m512i interleave(const uint16_t* x0, const uint16_t* x1) {
  const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21,
                                       5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  const __m512i both = _mm512_inserti64x4(
      _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x0))),
      _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x1)), 1);
  return _mm512_permutexvar_epi16(idx, both);
}

// One R tile: rows [0, mr) x k [0, kk) of op (offset to the tile's origin) into dst[16][32].
TG_BF16 void pack_r_tile(const Operand& op, int64_t mr, int64_t kk, uint16_t* dst) {
  if (mr == 16 && kk == 32 && op.cs == 1) {
    for (int i = 0; i < 16; ++i) _mm512_store_si512(dst + 32 * i, _mm512_loadu_si512(op.p + i * op.rs));
  } else if (mr == 16 && kk == 32 && op.rs == 1) {
    __m512i w[16];  // w[p]: the k pair (2p, 2p + 1) of each of the 16 rows
    for (int p = 0; p < 16; ++p) w[p] = interleave(op.p + 2 * p * op.cs, op.p + (2 * p + 1) * op.cs);
    transpose16x16(w);
    for (int i = 0; i < 16; ++i) _mm512_store_si512(dst + 32 * i, w[i]);
  } else {
    for (int64_t i = 0; i < 16; ++i)
      for (int64_t k = 0; k < 32; ++k) dst[32 * i + k] = i < mr && k < kk ? op.p[i * op.rs + k * op.cs] : 0;
  }
}

// One V tile: k [0, kk) x columns [0, nr) of op (rs steps k, cs steps the column) into
// dst[16 pairs][16 columns][2].
TG_BF16 void pack_v_tile(const Operand& op, int64_t nr, int64_t kk, uint16_t* dst) {
  if (nr == 16 && kk == 32 && op.cs == 1) {
    for (int p = 0; p < 16; ++p) _mm512_store_si512(dst + 32 * p, interleave(op.p + 2 * p * op.rs, op.p + (2 * p + 1) * op.rs));
  } else if (nr == 16 && kk == 32 && op.rs == 1) {
    __m512i w[16];  // w[j]: column j's 32 values of k, as 16 pairs
    for (int j = 0; j < 16; ++j) w[j] = _mm512_loadu_si512(op.p + j * op.cs);
    transpose16x16(w);
    for (int p = 0; p < 16; ++p) _mm512_store_si512(dst + 32 * p, w[p]);
  } else {
    for (int64_t p = 0; p < 16; ++p)
      for (int64_t j = 0; j < 16; ++j)
        for (int64_t h = 0; h < 2; ++h) {
          const int64_t k = 2 * p + h;
          dst[32 * p + 2 * j + h] = j < nr && k < kk ? op.p[k * op.rs + j * op.cs] : 0;
        }
  }
}

// 32 float32 -> 32 bfloat16, rounded to nearest even (NaNs stay NaNs), as bfloat16(float) in
// dtype.h for every value a tile holds (they are never subnormal).
TG_BF16 inline __m512i round_bf16(const float* lo, const float* hi) {
  return reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(_mm512_load_ps(hi), _mm512_load_ps(lo)));
}

// Rounds a 32 x 32 float32 block and stores its first nr columns as rows of dst (row stride ld).
TG_BF16 void store_transposed(const float* block, uint16_t* dst, int64_t ld, int64_t nr) {
  alignas(64) float t[2][16 * 16];  // the transposes of the two row halves of 16 columns
  for (int bj = 0; bj < 2; ++bj) {
    for (int bi = 0; bi < 2; ++bi) {
      __m512i w[16];
      for (int i = 0; i < 16; ++i) w[i] = _mm512_castps_si512(_mm512_load_ps(block + 32 * (16 * bi + i) + 16 * bj));
      transpose16x16(w);
      for (int j = 0; j < 16; ++j) _mm512_store_si512(t[bi] + 16 * j, w[j]);
    }
    for (int j = 0; j < 16 && 16 * bj + j < nr; ++j)
      _mm512_storeu_si512(dst + (16 * bj + j) * ld, round_bf16(t[0] + 16 * j, t[1] + 16 * j));
  }
}

// Accumulates a 32 x 32 block of C in tiles 0-3 over n k steps of 32 (r0, r1 and v0, v1 at the
// first): onto the tiles' sums (`keep`), else from zero when acc is null, else from acc (row
// stride ld floats).
TG_AMX inline void accumulate(int64_t n, RTiles r0, RTiles r1, const uint16_t* v0, const uint16_t* v1, bool keep,
                              const float* acc, int64_t ld) {
  if (keep) {
  } else if (!acc) {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
  } else {
    const int64_t stride = ld * int64_t(sizeof(float));
    _tile_loadd(0, acc, stride);
    _tile_loadd(1, acc + 16, stride);
    _tile_loadd(2, acc + 16 * ld, stride);
    _tile_loadd(3, acc + 16 * ld + 16, stride);
  }
  for (int64_t kb = 0; kb < n; ++kb) {
    _tile_loadd(4, r0.p + kb * r0.step, r0.stride);
    _tile_loadd(6, v0 + kb * kTile, 64);
    _tile_dpbf16ps(0, 4, 6);
    _tile_loadd(7, v1 + kb * kTile, 64);
    _tile_dpbf16ps(1, 4, 7);
    _tile_loadd(5, r1.p + kb * r1.step, r1.stride);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
}

TG_AMX inline void store_tiles(float* acc, int64_t ld) {
  const int64_t stride = ld * int64_t(sizeof(float));
  _tile_stored(0, acc, stride);
  _tile_stored(1, acc + 16, stride);
  _tile_stored(2, acc + 16 * ld, stride);
  _tile_stored(3, acc + 16 * ld + 16, stride);
}

// A finished 32 x 32 block of float32 sums, rounded into C at (i0, j0).
struct Finished {
  const float* block = nullptr;
  int64_t i0, j0;
};

TG_BF16 void write_block(const Problem& pb, const Finished& f) {
  const int64_t mr = std::min<int64_t>(32, pb.M - f.i0), nr = std::min<int64_t>(32, pb.N - f.j0);
  const float* block = f.block;
  if (pb.csC == 1 && nr == 32) {
    for (int64_t i = 0; i < mr; ++i)
      _mm512_storeu_si512(pb.C + (f.i0 + i) * pb.rsC + f.j0, round_bf16(block + 32 * i, block + 32 * i + 16));
  } else if (pb.rsC == 1 && mr == 32) {  // the transposed product: C's rows are the block's columns
    store_transposed(block, pb.C + f.i0 + f.j0 * pb.csC, pb.csC, nr);
  } else {
    for (int64_t j = 0; j < nr; ++j)
      for (int64_t i = 0; i < mr; ++i) pb.C[(f.i0 + i) * pb.rsC + (f.j0 + j) * pb.csC] = bfloat16(block[32 * i + j]).bits;
  }
}

thread_local Scratch tls_packed;  // the caller's packed operands, read by every worker
thread_local Scratch tls_partial;  // a worker's partial sums when K takes several steps

// k values per step: a 32-row block of R tiles (16 KiB) stays in L1 across a chunk's columns (at
// 1024^3, 256 ran 2-4% faster than 512; 128 ran 15% slower).
constexpr int64_t kKc = 256;
// Bytes of V tiles one chunk of columns takes (kept in L2 while every row block runs over it).
constexpr int64_t kChunkBytes = int64_t(1) << 20;
// Tiles a thread packs at the least (another thread's wake costs more than packing fewer).
constexpr int64_t kMinTilesPerThread = 64;
// Multiply-adds below which a product stays on one thread.
constexpr int64_t kMinWorkPerThread = int64_t(1) << 22;

// The packed operands and how the output blocks are shared out.
struct Layout {
  int64_t nkb, n_rt, n_vt;  // k steps of 32; R tiles and V tiles per k step
  int64_t n_rb, n_cb;       // 32-row and 32-column blocks of the output
  int64_t per_chunk, n_ch;  // column blocks per chunk; chunks
  // R tiles are read in place from a row-major operand whose rows fill every tile (M a multiple of
  // 32): `direct` full k steps of them, then packed tiles for a partial last step. Otherwise all
  // are packed: R tile (t, kb) at R + (t * (nkb - direct) + kb - direct) * kTile.
  int64_t direct;
  uint16_t *R, *V;  // packed R tiles; V tile (u, kb) at V + (u * nkb + kb) * kTile
};

// Each operand is packed walking along its memory: tile by tile over k where its rows run along
// k, else k step by k step across the tiles (so a row-major B's lines are read whole, once).

// The packed R tiles [s, e) in that order.
TG_BF16 void pack_r_tiles(const Problem& pb, const Layout& L, int64_t s, int64_t e) {
  const int64_t rk = L.nkb - L.direct;  // packed k steps per row tile
  const Operand& o = pb.r;
  for (int64_t q = s; q < e; ++q) {
    const int64_t t = o.cs == 1 ? q / rk : q % L.n_rt, kb = L.direct + (o.cs == 1 ? q % rk : q / L.n_rt);
    const int64_t kk = std::min<int64_t>(32, pb.K - kb * 32), mr = std::clamp<int64_t>(pb.M - t * 16, 0, 16);
    pack_r_tile({o.p + std::min(t * 16, pb.M - 1) * o.rs + kb * 32 * o.cs, o.rs, o.cs}, mr, kk,
                L.R + (t * rk + kb - L.direct) * kTile);
  }
}

// The V tiles of tile columns [u0, u1), [s, e) of them in that order.
TG_BF16 void pack_v_tiles(const Problem& pb, const Layout& L, int64_t u0, int64_t u1, int64_t s, int64_t e) {
  const int64_t nkb = L.nkb, nu = u1 - u0;
  const Operand& o = pb.v;
  for (int64_t q = s; q < e; ++q) {
    const int64_t u = u0 + (o.rs == 1 ? q / nkb : q % nu), kb = o.rs == 1 ? q % nkb : q / nu;
    const int64_t kk = std::min<int64_t>(32, pb.K - kb * 32), nr = std::clamp<int64_t>(pb.N - u * 16, 0, 16);
    pack_v_tile({o.p + kb * 32 * o.rs + std::min(u * 16, pb.N - 1) * o.cs, o.rs, o.cs}, nr, kk, L.V + (u * nkb + kb) * kTile);
  }
}

// Units [s, e) of (chunk of column blocks, row block), chunk-major, so consecutive units share
// their chunk's V tiles.
TG_AMX void compute_units(const Problem& pb, const Layout& L, int64_t s, int64_t e) {
  const int64_t nkb = L.nkb, ksteps = kKc / 32, ldp = L.per_chunk * 32;
  float* partial = nkb > ksteps ? tls_partial.get<float>(static_cast<size_t>(32 * ldp)) : nullptr;
  static const TileConfig config;
  _tile_loadconfig(&config);  // (after the allocation above, which may throw: released below)
  // Two blocks of sums: one is rounded into C while the tiles work on the next (the rounding is
  // independent of the tile instructions, so it runs in their shadow).
  alignas(64) float blocks[2][32 * 32];
  Finished pending;
  int flip = 0;
  for (int64_t unit = s; unit < e; ++unit) {
    const int64_t ch = unit / L.n_rb, rb = unit % L.n_rb;
    const int64_t cb0 = ch * L.per_chunk, cb1 = std::min(L.n_cb, cb0 + L.per_chunk);
    // Row tile t's R tiles from k step kb on: in place below L.direct, packed from there.
    const int64_t rk = nkb - L.direct;
    const auto rtiles = [&](int64_t t, int64_t kb) {
      if (kb < L.direct) return RTiles{pb.r.p + t * 16 * pb.r.rs + kb * 32, 32, pb.r.rs * int64_t(sizeof(uint16_t))};
      return RTiles{L.R + (t * rk + kb - L.direct) * kTile, kTile, 64};
    };
    for (int64_t k0 = 0; k0 < nkb; k0 += ksteps) {
      const int64_t k1 = std::min(nkb, k0 + ksteps), mid = std::clamp(L.direct, k0, k1);
      const bool last = k1 == nkb;
      for (int64_t cb = cb0; cb < cb1; ++cb) {
        const uint16_t *v0 = L.V + (2 * cb) * nkb * kTile, *v1 = v0 + nkb * kTile;
        float* part = partial ? partial + (cb - cb0) * 32 : nullptr;
        const float* from = k0 == 0 ? nullptr : part;
        if (mid > k0)
          accumulate(mid - k0, rtiles(2 * rb, k0), rtiles(2 * rb + 1, k0), v0 + k0 * kTile, v1 + k0 * kTile, false, from, ldp);
        if (k1 > mid)
          accumulate(k1 - mid, rtiles(2 * rb, mid), rtiles(2 * rb + 1, mid), v0 + mid * kTile, v1 + mid * kTile, mid > k0,
                     from, ldp);
        if (!last) {
          store_tiles(part, ldp);
          continue;
        }
        if (pending.block) write_block(pb, pending);
        float* block = blocks[flip ^= 1];
        store_tiles(block, 32);
        pending = {block, rb * 32, cb * 32};
      }
    }
  }
  if (pending.block) write_block(pb, pending);
  _tile_release();
}

// Whether a problem's R tiles can be read in place (no packing but for a partial last k step).
bool direct_r(const Problem& p) { return p.r.cs == 1 && p.r.rs > 0 && p.M % 32 == 0; }

void run(const Problem& pb) {
  Layout L;
  const int64_t Mp = (pb.M + 31) / 32 * 32, Np = (pb.N + 31) / 32 * 32, Kp = (pb.K + 31) / 32 * 32;
  L.nkb = Kp / 32, L.n_rt = Mp / 16, L.n_vt = Np / 16, L.n_rb = Mp / 32, L.n_cb = Np / 32;
  L.direct = direct_r(pb) ? pb.K / 32 : 0;
  L.R = tls_packed.get<uint16_t>(static_cast<size_t>(Mp * (Kp - 32 * L.direct) + Np * Kp));
  L.V = L.R + Mp * (Kp - 32 * L.direct);
  L.per_chunk = std::clamp<int64_t>(kChunkBytes / (Kp * 32 * 2), 1, L.n_cb);
  L.n_ch = (L.n_cb + L.per_chunk - 1) / L.per_chunk;
  const int threads = num_threads();
  const int64_t r_tiles = L.n_rt * (L.nkb - L.direct);  // R's packed tiles
  if (L.n_cb >= 2 * threads) {
    // Each thread takes whole chunks of columns and packs their V tiles itself, in the region
    // that multiplies them (no pass over B before the products; each thread's V tiles stay in its
    // own cache): 512^3 ran 20-25% faster so. R's packed tiles come first (only a partial last k
    // step's when R is read in place: few enough for the calling thread).
    if (L.direct > 0) pack_r_tiles(pb, L, 0, r_tiles);
    else parallel_for(r_tiles, kMinTilesPerThread, [&](int64_t s, int64_t e) { pack_r_tiles(pb, L, s, e); });
    L.per_chunk = std::min(L.per_chunk, (L.n_cb + threads - 1) / threads);
    L.n_ch = (L.n_cb + L.per_chunk - 1) / L.per_chunk;
    const int64_t chunk_work = 32 * 32 * L.per_chunk * Kp * L.n_rb;
    parallel_for(L.n_ch, std::max<int64_t>(1, kMinWorkPerThread / chunk_work), [&](int64_t s, int64_t e) {
      for (int64_t ch = s; ch < e; ++ch) {
        const int64_t u0 = 2 * ch * L.per_chunk, u1 = std::min(L.n_vt, u0 + 2 * L.per_chunk);
        pack_v_tiles(pb, L, u0, u1, 0, (u1 - u0) * L.nkb);
        compute_units(pb, L, ch * L.n_rb, (ch + 1) * L.n_rb);
      }
    });
    return;
  }
  parallel_for(r_tiles + L.n_vt * L.nkb, kMinTilesPerThread, [&](int64_t s, int64_t e) {
    pack_r_tiles(pb, L, std::min(s, r_tiles), std::min(e, r_tiles));
    pack_v_tiles(pb, L, 0, L.n_vt, std::max(s, r_tiles) - r_tiles, std::max(e, r_tiles) - r_tiles);
  });
  const int64_t unit_work = 32 * 32 * L.per_chunk * Kp;
  parallel_for(L.n_ch * L.n_rb, std::max<int64_t>(1, kMinWorkPerThread / unit_work),
               [&](int64_t s, int64_t e) { compute_units(pb, L, s, e); });
}

// ---- AVX-512 BF16 dot products (vdpbf16ps): CPUs with the instruction but no tiles ----
//
// A 12 x 32 block of C in 24 vector registers; per pair of k, two loads of B (32 columns of pairs)
// and twelve broadcast pairs of A feed 24 instructions that each add two products per lane. A is
// packed as 12-row panels of k pairs, B as 32-column panels of k pairs (zero padded), once per
// product; each block runs over the whole k in registers.

constexpr int kDotRows = 12, kDotCols = 32;

// Values 2p and 2p + 1 of a line of k values `step` apart (the second zero past k), as one pair.
inline uint32_t pair_at(const uint16_t* line, int64_t p, int64_t step, int64_t k) {
  return uint32_t(line[2 * p * step]) | (2 * p + 1 < k ? uint32_t(line[(2 * p + 1) * step]) << 16 : 0u);
}

// A's rows [i0, i0 + 12) as pairs: dst[p * 12 + i] = (A[i][2p], A[i][2p + 1]), zero outside.
void pack_dot_a(const Problem& pb, int64_t i0, int64_t np, uint32_t* dst) {
  const Operand& o = pb.r;
  for (int64_t p = 0; p < np; ++p)
    for (int64_t i = 0; i < kDotRows; ++i)
      dst[p * kDotRows + i] = i0 + i < pb.M ? pair_at(o.p + (i0 + i) * o.rs, p, o.cs, pb.K) : 0;
}

// B's columns [j0, j0 + 32) as pairs: dst[p * 32 + j] = (B[2p][j], B[2p + 1][j]), zero outside.
TG_BF16 void pack_dot_b(const Problem& pb, int64_t j0, int64_t np, uint32_t* dst) {
  const Operand& o = pb.v;
  const int64_t full_pairs = pb.K / 2;
  const bool full_cols = j0 + kDotCols <= pb.N;
  int64_t p = 0;
  if (full_cols && o.cs == 1) {
    for (; p < full_pairs; ++p)
      for (int h = 0; h < 2; ++h)
        _mm512_store_si512(dst + p * kDotCols + 16 * h,
                           interleave(o.p + 2 * p * o.rs + j0 + 16 * h, o.p + (2 * p + 1) * o.rs + j0 + 16 * h));
  } else if (full_cols && o.rs == 1) {
    for (; p + 16 <= full_pairs; p += 16)
      for (int h = 0; h < 2; ++h) {
        __m512i w[16];  // w[j]: column j0 + 16 h + j's 16 pairs from pair p
        for (int j = 0; j < 16; ++j) w[j] = _mm512_loadu_si512(o.p + (j0 + 16 * h + j) * o.cs + 2 * p);
        transpose16x16(w);
        for (int q = 0; q < 16; ++q) _mm512_store_si512(dst + (p + q) * kDotCols + 16 * h, w[q]);
      }
  }
  for (; p < np; ++p)
    for (int64_t j = 0; j < kDotCols; ++j)
      dst[p * kDotCols + j] = j0 + j < pb.N ? pair_at(o.p + (j0 + j) * o.cs, p, o.rs, pb.K) : 0;
}

// c[12][32] = the sums over np pairs of the packed panels a and b.
TG_BF16 void dot_kernel(int64_t np, const uint32_t* a, const uint32_t* b, float* c) {
  __m512 acc[kDotRows][2];
  for (int i = 0; i < kDotRows; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  for (int64_t p = 0; p < np; ++p, a += kDotRows, b += kDotCols) {
    const __m512bh b0 = reinterpret_cast<__m512bh>(_mm512_load_si512(b));
    const __m512bh b1 = reinterpret_cast<__m512bh>(_mm512_load_si512(b + 16));
#pragma GCC unroll 12
    for (int i = 0; i < kDotRows; ++i) {
      const __m512bh ai = reinterpret_cast<__m512bh>(_mm512_set1_epi32(static_cast<int>(a[i])));
      acc[i][0] = _mm512_dpbf16_ps(acc[i][0], ai, b0);
      acc[i][1] = _mm512_dpbf16_ps(acc[i][1], ai, b1);
    }
  }
  for (int i = 0; i < kDotRows; ++i) {
    _mm512_store_ps(c + kDotCols * i, acc[i][0]);
    _mm512_store_ps(c + kDotCols * i + 16, acc[i][1]);
  }
}

TG_BF16 void dot_units(const Problem& pb, const uint32_t* A, const uint32_t* B, int64_t np, int64_t n_rp, int64_t per_chunk,
                      int64_t s, int64_t e) {
  const int64_t n_cp = (pb.N + kDotCols - 1) / kDotCols;
  alignas(64) float block[kDotRows * kDotCols];
  for (int64_t unit = s; unit < e; ++unit) {
    const int64_t ch = unit / n_rp, rp = unit % n_rp;
    const int64_t i0 = rp * kDotRows, mr = std::min<int64_t>(kDotRows, pb.M - i0);
    for (int64_t cp = ch * per_chunk; cp < std::min(n_cp, (ch + 1) * per_chunk); ++cp) {
      dot_kernel(np, A + rp * np * kDotRows, B + cp * np * kDotCols, block);
      const int64_t j0 = cp * kDotCols, nr = std::min<int64_t>(kDotCols, pb.N - j0);
      for (int64_t i = 0; i < mr; ++i) {
        uint16_t* dst = pb.C + (i0 + i) * pb.rsC + j0;
        if (nr == kDotCols) {
          _mm512_storeu_si512(dst, round_bf16(block + kDotCols * i, block + kDotCols * i + 16));
        } else {
          for (int64_t j = 0; j < nr; ++j) dst[j] = bfloat16(block[kDotCols * i + j]).bits;
        }
      }
    }
  }
}

void dot_gemm(const Problem& pb) {
  const int64_t np = (pb.K + 1) / 2, n_rp = (pb.M + kDotRows - 1) / kDotRows, n_cp = (pb.N + kDotCols - 1) / kDotCols;
  // B's panels are read and written with aligned vector moves: A's part is rounded up to 64 bytes.
  const int64_t a_words = (n_rp * kDotRows * np + 15) / 16 * 16;
  uint32_t* A = tls_packed.get<uint32_t>(static_cast<size_t>(a_words + n_cp * kDotCols * np));
  uint32_t* B = A + a_words;
  parallel_for(n_rp + n_cp, std::max<int64_t>(1, 8192 / np), [&](int64_t s, int64_t e) {
    for (int64_t q = s; q < e; ++q) {
      if (q < n_rp) pack_dot_a(pb, q * kDotRows, np, A + q * kDotRows * np);
      else pack_dot_b(pb, (q - n_rp) * kDotCols, np, B + (q - n_rp) * kDotCols * np);
    }
  });
  // Units of (chunk of column panels, row panel), chunk-major; a chunk's B panels fit in L2.
  const int64_t per_chunk = std::clamp<int64_t>(kChunkBytes / (np * kDotCols * 4), 1, n_cp);
  const int64_t n_ch = (n_cp + per_chunk - 1) / per_chunk;
  const int64_t unit_work = kDotRows * kDotCols * per_chunk * pb.K;
  parallel_for(n_ch * n_rp, std::max<int64_t>(1, kMinWorkPerThread / 4 / unit_work),
               [&](int64_t s, int64_t e) { dot_units(pb, A, B, np, n_rp, per_chunk, s, e); });
}

}  // namespace

Bf16Path bf16_path() {
  static const Bf16Path path = detect_path();
  return path;
}

const char* bf16_path_name(Bf16Path path) {
  switch (path) {
    case Bf16Path::Amx: return "amx";
    case Bf16Path::Dot: return "dot";
    default: return "float32";
  }
}

void gemm_bf16(int64_t M, int64_t N, int64_t K, const bfloat16* A, int64_t rsA, int64_t csA, const bfloat16* B,
               int64_t rsB, int64_t csB, bfloat16* C, int64_t ldc) {
  const auto* a = reinterpret_cast<const uint16_t*>(A);
  const auto* b = reinterpret_cast<const uint16_t*>(B);
  auto* c = reinterpret_cast<uint16_t*>(C);
  if (bf16_path() == Bf16Path::Dot) return dot_gemm({M, N, K, {a, rsA, csA}, {b, rsB, csB}, c, ldc, 1});
  if (bf16_path() != Bf16Path::Amx) throw std::logic_error("gemm_bf16: this CPU has no bfloat16 path (bf16_path() is float32)");
  const Problem plain{M, N, K, {a, rsA, csA}, {b, rsB, csB}, c, ldc, 1};
  const Problem transposed{N, M, K, {b, csB, rsB}, {a, csA, rsA}, c, 1, ldc};
  // The product or its transpose, whichever reads its R tiles in place; else whichever has more
  // rows (measured 5-25% faster for the same work: fewer passes over the V tiles of a chunk).
  const bool pd = direct_r(plain), td = direct_r(transposed);
  run(pd != td ? (td ? transposed : plain) : (N > M ? transposed : plain));
}

#else

Bf16Path bf16_path() { return Bf16Path::Float32; }
const char* bf16_path_name(Bf16Path) { return "float32"; }
void gemm_bf16(int64_t, int64_t, int64_t, const bfloat16*, int64_t, int64_t, const bfloat16*, int64_t, int64_t,
               bfloat16*, int64_t) {
  throw std::logic_error("gemm_bf16: this build has no bfloat16 path (bf16_path() is float32)");
}

#endif

}  // namespace tessera::cpu
