// @file N-d convolution (MLX's Convolution primitive: stride, low/high padding, kernel and input
// dilation, groups, kernel flip), lowered to im2col into a bounded row-chunk buffer plus one
// packed GEMM per group; half types compute through float32. float32 on AVX-512 skips im2col:
// tiles read the input through per-row pointers (conv_kernels.h). Also conv's weight cotangent
// (convWeightGrad): register tiles over pixel pointers for float32 on AVX-512, otherwise im2col row
// chunks through the packed GEMM. Also the sliding-window view copy
// used by pooling (window) and its transpose, the sum of overlapping windows (windowAdd).
#include <algorithm>
#include <atomic>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "conv_kernels.h"
#include "gemm.h"
#include "isa.h"
#include "kernels.h"
#include "scratch.h"
#include "threads.h"

namespace tessera::cpu {
namespace {

// ints: D, groups, flip, then per spatial dim: stride, padLo, padHi, kernelDilation, inputDilation.
struct ConvGeom {
  int D = 0;
  int64_t groups = 1;
  bool flip = false;
  int64_t N = 0, Cin = 0, Cout = 0, Cg = 0, Og = 0;
  Shape in, dil_len, ker, out, stride, lo, kdil, idil;
  int64_t out_vol = 1, ker_vol = 1;
};

ConvGeom geometry(const Instr& instr, const ArrayDesc& x, const ArrayDesc& w, const ArrayDesc& out) {
  ConvGeom g;
  g.D = static_cast<int>(instr.ints[0]);
  g.groups = instr.ints[1];
  g.flip = instr.ints[2] != 0;
  g.N = x.shape[0];
  g.Cin = x.shape[g.D + 1];
  g.Cout = w.shape[0];
  g.Cg = w.shape[g.D + 1];
  g.Og = g.Cout / g.groups;
  for (int d = 0; d < g.D; ++d) {
    auto p = [&](int k) { return instr.ints[3 + k * g.D + d]; };
    g.stride.push_back(p(0)), g.lo.push_back(p(1)), g.kdil.push_back(p(3)), g.idil.push_back(p(4));
    g.in.push_back(x.shape[1 + d]);
    g.dil_len.push_back(x.shape[1 + d] == 0 ? 0 : (x.shape[1 + d] - 1) * p(4) + 1);
    g.ker.push_back(w.shape[1 + d]);
    g.out.push_back(out.shape[1 + d]);
    g.out_vol *= out.shape[1 + d];
    g.ker_vol *= w.shape[1 + d];
  }
  return g;
}

// Multi-index of flat i over dims (row-major), into idx.
inline void unravel(int64_t i, const Shape& dims, int64_t* idx) {
  for (int d = static_cast<int>(dims.size()) - 1; d >= 0; --d) {
    idx[d] = dims[d] == 0 ? 0 : i % dims[d];
    i = dims[d] == 0 ? 0 : i / dims[d];
  }
}

// Per kernel tap, the offset k*kdil - lo along each dim of the dilated input.
std::vector<int64_t> tap_koff(const ConvGeom& g) {
  std::vector<int64_t> koff(static_cast<size_t>(g.ker_vol * g.D)), k(g.D);
  for (int64_t kk = 0; kk < g.ker_vol; ++kk) {
    unravel(kk, g.ker, k.data());
    for (int d = 0; d < g.D; ++d) koff[kk * g.D + d] = k[d] * g.kdil[d] - g.lo[d];
  }
  return koff;
}

using GemmF32 = decltype(&gemm_f32);
using GemmF64 = decltype(&gemm_f64);
template <class C> struct GemmOf;
template <> struct GemmOf<float> { static constexpr GemmF32 fn = gemm_f32; };
template <> struct GemmOf<double> { static constexpr GemmF64 fn = gemm_f64; };

template <class T>
void conv_typed(const ConvGeom& g, const ArrayDesc& x, const ArrayDesc& w, ArrayDesc& out) {
  using C = std::conditional_t<std::is_same_v<T, double>, double, float>;
  const int D = g.D;
  const int64_t KC = g.ker_vol * g.Cg, M = g.N * g.out_vol, G = g.groups;
  // Weights packed per group as [KC, Og] row-major, the flip applied here.
  std::vector<C> wp(static_cast<size_t>(G * KC * g.Og));
  const T* wd = w.data<T>();
  parallel_for(g.Cout, std::max<int64_t>(1, 4096 / std::max<int64_t>(KC, 1)), [&](int64_t s, int64_t e) {
    std::vector<int64_t> k(D);
    for (int64_t co = s; co < e; ++co) {
      int64_t grp = co / g.Og, o = co % g.Og;
      for (int64_t kk = 0; kk < g.ker_vol; ++kk) {
        unravel(kk, g.ker, k.data());
        int64_t off = co * w.strides[0];
        for (int d = 0; d < D; ++d) off += (g.flip ? g.ker[d] - 1 - k[d] : k[d]) * w.strides[1 + d];
        for (int64_t ci = 0; ci < g.Cg; ++ci)
          wp[static_cast<size_t>((grp * KC + kk * g.Cg + ci) * g.Og + o)] = C(compute_t<T>(wd[off + ci * w.strides[D + 1]]));
      }
    }
  });
  const std::vector<int64_t> koff = tap_koff(g);
  if (M == 0 || g.Cout == 0) return;
  // Rows per chunk: about 2^21 elements of patches, so the buffer stays a few MiB.
  const int64_t chunk = std::min(M, std::max<int64_t>(32, (int64_t(1) << 21) / std::max<int64_t>(KC, 1)));
  // The patch buffer is every row's im2col (all of it written before the GEMM reads it), kept
  // per thread between calls: a few MiB that would otherwise be fresh pages on every call.
  static thread_local Scratch cols;
  C* col = cols.get<C>(static_cast<size_t>(chunk * std::max<int64_t>(KC, 1)));
  std::vector<C> tmp(std::is_same_v<T, C> ? 0 : static_cast<size_t>(chunk * g.Cout));
  const T* xd = x.data<T>();
  const int64_t xsc = x.strides[D + 1];
  for (int64_t r0 = 0; r0 < M; r0 += chunk) {
    const int64_t rows = std::min(chunk, M - r0);
    for (int64_t grp = 0; grp < G; ++grp) {
      const int64_t c0 = grp * g.Cg;
      parallel_for(rows, std::max<int64_t>(1, 2048 / std::max<int64_t>(KC, 1)), [&](int64_t s, int64_t e) {
        std::vector<int64_t> o(D);
        for (int64_t r = s; r < e; ++r) {
          const int64_t row = r0 + r, n = row / g.out_vol;
          unravel(row % g.out_vol, g.out, o.data());
          C* dst = col + r * KC;
          for (int64_t kk = 0; kk < g.ker_vol; ++kk, dst += g.Cg) {
            int64_t off = n * x.strides[0] + c0 * xsc;
            bool inside = true;
            for (int d = 0; d < D && inside; ++d) {
              int64_t q = o[d] * g.stride[d] + koff[kk * D + d];
              if (q < 0 || q >= g.dil_len[d] || q % g.idil[d] != 0) inside = false;
              else off += (q / g.idil[d]) * x.strides[1 + d];
            }
            if (!inside) {
              std::fill(dst, dst + g.Cg, C(0));
            } else if constexpr (std::is_same_v<T, C>) {
              if (xsc == 1) std::memcpy(dst, xd + off, static_cast<size_t>(g.Cg) * sizeof(C));
              else for (int64_t ci = 0; ci < g.Cg; ++ci) dst[ci] = xd[off + ci * xsc];
            } else {
              for (int64_t ci = 0; ci < g.Cg; ++ci) dst[ci] = C(compute_t<T>(xd[off + ci * xsc]));
            }
          }
        }
      });
      C* cdst = std::is_same_v<T, C> ? reinterpret_cast<C*>(out.data<T>()) + r0 * g.Cout + grp * g.Og
                                     : tmp.data() + grp * g.Og;
      GemmOf<C>::fn(rows, g.Og, KC, col, KC, 1, wp.data() + grp * KC * g.Og, g.Og, 1, cdst, g.Cout);
    }
    if constexpr (!std::is_same_v<T, C>) {
      T* od = out.data<T>() + r0 * g.Cout;
      parallel_for(rows * g.Cout, 1 << 14, [&](int64_t s, int64_t e) {
        for (int64_t i = s; i < e; ++i) od[i] = T(tmp[i]);
      });
    }
  }
}

// Runs body(item) for items [0, n) claimed dynamically by the pool's threads in blocks of
// `block`, so a thread that the machine delays simply takes fewer.
template <class F>
void parallel_claim(int64_t n, int64_t block, int64_t min_blocks_per_thread, const F& body) {
  const int64_t blocks = (n + block - 1) / block;
  const int64_t threads = std::min<int64_t>(num_threads(), std::max<int64_t>(1, blocks / min_blocks_per_thread));
  std::atomic<int64_t> next{0};
  parallel_for(threads, 1, [&](int64_t, int64_t) {
    for (int64_t b; (b = next.fetch_add(1, std::memory_order_relaxed)) < blocks;)
      for (int64_t i = b * block, e = std::min(n, i + block); i < e; ++i) body(i);
  });
}

// Element offset in x (strides xs) of output position `row`'s input pixel under every tap (channel
// 0 of group 0), or -1 where that pixel is padding or falls between input-dilated points.
void tap_offsets(const ConvGeom& g, const Shape& xs, const std::vector<int64_t>& koff, int64_t row, int64_t* o,
                 int64_t* offs) {
  const int D = g.D;
  const int64_t n = row / g.out_vol;
  unravel(row % g.out_vol, g.out, o);
  for (int64_t kk = 0; kk < g.ker_vol; ++kk) {
    int64_t off = n * xs[0];
    for (int d = 0; d < D; ++d) {
      const int64_t q = o[d] * g.stride[d] + koff[kk * D + d];
      if (q < 0 || q >= g.dil_len[d] || q % g.idil[d] != 0) {
        off = -1;
        break;
      }
      off += (q / g.idil[d]) * xs[1 + d];
    }
    offs[kk] = off;
  }
}

// float32 convolution on AVX-512 without im2col: each tile of 6 output rows reads its input pixels
// through pointers (zeros for padding), so the patches are never copied. Needs contiguous channels.
void conv_indirect_f32(const ConvGeom& g, const ArrayDesc& x, const ArrayDesc& w, ArrayDesc& out,
                       const std::vector<int64_t>& koff) {
  using namespace conv_detail;
  const int64_t KC = g.ker_vol * g.Cg, G = g.groups, taps = g.ker_vol, M = g.N * g.out_vol;
  const int64_t ldw = (g.Og + 15) / 16 * 16;
  // Weights per group as [KC, ldw] (columns past Og zero), the flip applied here.
  std::vector<float> wp(static_cast<size_t>(G * KC * ldw), 0.0f);
  const float* wd = w.data<float>();
  parallel_for(g.Cout, std::max<int64_t>(1, 4096 / std::max<int64_t>(KC, 1)), [&](int64_t s, int64_t e) {
    std::vector<int64_t> k(g.D);
    for (int64_t co = s; co < e; ++co) {
      const int64_t grp = co / g.Og, o = co % g.Og;
      for (int64_t kk = 0; kk < taps; ++kk) {
        unravel(kk, g.ker, k.data());
        int64_t off = co * w.strides[0];
        for (int d = 0; d < g.D; ++d) off += (g.flip ? g.ker[d] - 1 - k[d] : k[d]) * w.strides[1 + d];
        for (int64_t ci = 0; ci < g.Cg; ++ci)
          wp[static_cast<size_t>((grp * KC + kk * g.Cg + ci) * ldw + o)] = wd[off + ci * w.strides[g.D + 1]];
      }
    }
  });
  const std::vector<float> zeros(static_cast<size_t>(g.Cg), 0.0f);
  const float* xd = x.data<float>();
  float* od = out.data<float>();
  const int64_t tiles = (M + kFwdRows - 1) / kFwdRows;
  // About 2^18 multiply-adds per claimed block.
  const int64_t block = std::max<int64_t>(1, (int64_t(1) << 18) / std::max<int64_t>(kFwdRows * KC * g.Cout, 1));
  parallel_claim(tiles, block, 2, [&](int64_t tile) {
    thread_local std::vector<int64_t> offs, o;
    thread_local std::vector<const float*> ptrs;
    offs.resize(static_cast<size_t>(taps * kFwdRows));
    ptrs.resize(static_cast<size_t>(taps * kFwdRows));
    o.resize(static_cast<size_t>(g.D));
    const int64_t r0 = tile * kFwdRows;
    const int mr = static_cast<int>(std::min<int64_t>(kFwdRows, M - r0));
    thread_local std::vector<int64_t> row_offs;
    row_offs.resize(static_cast<size_t>(taps));
    for (int i = 0; i < kFwdRows; ++i) {
      // Rows past the end repeat the last one: read, never stored.
      tap_offsets(g, x.strides, koff, r0 + std::min(i, mr - 1), o.data(), row_offs.data());
      for (int64_t kk = 0; kk < taps; ++kk) offs[kk * kFwdRows + i] = row_offs[kk];
    }
    for (int64_t grp = 0; grp < G; ++grp) {
      const int64_t c0 = grp * g.Cg;
      for (int64_t t = 0; t < taps * kFwdRows; ++t) ptrs[t] = offs[t] < 0 ? zeros.data() : xd + offs[t] + c0;
      for (int64_t j0 = 0; j0 < g.Og; j0 += kTileCols)
        conv_fwd_tile_f32_avx512(taps, g.Cg, ptrs.data(), wp.data() + grp * KC * ldw + j0, ldw,
                                 od + r0 * g.Cout + grp * g.Og + j0, g.Cout, mr,
                                 static_cast<int>(std::min<int64_t>(kTileCols, g.Og - j0)));
    }
  });
}

// Weight gradient, ints as conv's: dw [Cout, K..., Cg] (physical taps, so flipped where flip) =
// sum over output points r of ct[r, g*Og + o] * x[pixel(r, tap), g*Cg + c]. Both paths sum in an
// order fixed by the shapes alone, so the result does not depend on the thread count.

// Where each tap's sum lands in dw (the flip mirrors the tap index).
std::vector<int64_t> wgrad_dst_taps(const ConvGeom& g) {
  std::vector<int64_t> dst_tap(static_cast<size_t>(g.ker_vol)), k(g.D);
  for (int64_t kk = 0; kk < g.ker_vol; ++kk) {
    unravel(kk, g.ker, k.data());
    int64_t t = 0;
    for (int d = 0; d < g.D; ++d) t = t * g.ker[d] + (g.flip ? g.ker[d] - 1 - k[d] : k[d]);
    dst_tap[kk] = t;
  }
  return dst_tap;
}

// float32 on AVX-512 with contiguous channels: rows are split into fixed items, each summed into
// its own partial that the end adds in item order. Each item walks its rows in chunks (pixel
// pointers for every tap, the chunk's cotangent padded to whole 6-channel tiles) through the
// register-resident tiles, never materializing the input's windows.
constexpr int64_t kWgradItemRows = 2048, kWgradChunk = 64;

void conv_wgrad_tiles_f32(const ConvGeom& g, const ArrayDesc& x, const ArrayDesc& ct, ArrayDesc& dw) {
  using namespace conv_detail;
  const int D = g.D;
  const int64_t taps = g.ker_vol, M = g.N * g.out_vol, G = g.groups, W = g.Cout * taps * g.Cg;
  const std::vector<int64_t> koff = tap_koff(g), dst_tap = wgrad_dst_taps(g);
  const int64_t items = std::max<int64_t>(1, (M + kWgradItemRows - 1) / kWgradItemRows);
  std::vector<float> partial(static_cast<size_t>(items * W), 0.0f);
  const float* xd = x.data<float>();
  const float* cd = ct.data<float>();
  const int64_t og6 = (g.Og + kWgradOuts - 1) / kWgradOuts * kWgradOuts;
  parallel_claim(items, 1, 1, [&](int64_t item) {
    float* acc = partial.data() + item * W;  // [Cout, taps, Cg] in physical tap order
    const int64_t r_begin = item * kWgradItemRows, r_end = std::min(M, r_begin + kWgradItemRows);
    std::vector<int64_t> o(D), offs(static_cast<size_t>(kWgradChunk * taps)), ct_off(kWgradChunk);
    std::vector<float> cbuf(static_cast<size_t>(kWgradChunk * og6));
    std::vector<const float*> ptrs(static_cast<size_t>(kWgradChunk));
    std::vector<float> zeros(static_cast<size_t>(g.Cg), 0.0f);
    for (int64_t r0 = r_begin; r0 < r_end; r0 += kWgradChunk) {
      const int64_t rows = std::min(kWgradChunk, r_end - r0);
      for (int64_t r = 0; r < rows; ++r) {
        tap_offsets(g, x.strides, koff, r0 + r, o.data(), offs.data() + r * taps);
        const int64_t row = r0 + r;
        int64_t off = (row / g.out_vol) * ct.strides[0];
        for (int d = 0; d < D; ++d) off += o[d] * ct.strides[1 + d];
        ct_off[r] = off;
      }
      for (int64_t grp = 0; grp < G; ++grp) {
        const int64_t c0 = grp * g.Cg, o0 = grp * g.Og;
        // The chunk's cotangent for this group, [rows, og6], zero past Og.
        for (int64_t r = 0; r < rows; ++r) {
          float* dst = cbuf.data() + r * og6;
          for (int64_t j = 0; j < g.Og; ++j) dst[j] = cd[ct_off[r] + (o0 + j) * ct.strides[D + 1]];
          for (int64_t j = g.Og; j < og6; ++j) dst[j] = 0.0f;
        }
        for (int64_t kk = 0; kk < taps; ++kk) {
          for (int64_t r = 0; r < rows; ++r) {
            const int64_t off = offs[r * taps + kk];
            ptrs[r] = off < 0 ? zeros.data() : xd + off + c0;
          }
          for (int64_t i0 = 0; i0 < g.Og; i0 += kWgradOuts)
            for (int64_t j0 = 0; j0 < g.Cg; j0 += kTileCols)
              conv_wgrad_tile_f32_avx512(rows, cbuf.data() + i0, og6, ptrs.data(), j0,
                                         acc + ((o0 + i0) * taps + dst_tap[kk]) * g.Cg + j0, taps * g.Cg,
                                         static_cast<int>(std::min<int64_t>(kWgradOuts, g.Og - i0)),
                                         static_cast<int>(std::min<int64_t>(kTileCols, g.Cg - j0)), true);
        }
      }
    }
  });
  // Sum the partials in item order and write dw (contiguous, freshly allocated).
  float* od = dw.data<float>();
  parallel_for(W, 1 << 14, [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) {
      float v = partial[static_cast<size_t>(i)];
      for (int64_t it = 1; it < items; ++it) v += partial[static_cast<size_t>(it * W + i)];
      od[i] = v;
    }
  });
}

// Row stride of ct's output points when row r (n, o... flattened) sits at r * stride for all r, as
// in any contiguous (or broadcast, stride 0) cotangent; negative when the rows are not evenly
// spaced, and for negative strides too (those chunks are copied instead).
int64_t even_row_stride(const ConvGeom& g, const ArrayDesc& ct) {
  int64_t rs = 0, span = 1;
  bool found = false;
  for (int d = g.D; d >= 0; --d) {
    if (ct.shape[d] > 1) {
      if (!found) rs = ct.strides[d], found = true;
      else if (ct.strides[d] != rs * span) return -1;
    }
    span *= ct.shape[d];
  }
  return rs;
}

// Rows (output points) per GEMM of the weight gradient: a long enough K for the packed GEMM to
// run at speed, a small enough chunk that its im2col stays a few MiB.
constexpr int64_t kWgradGemmRows = 2048;

// Every other case: row chunks in order, each one's windows copied out (im2col, zeros for padding)
// as cols [rows, taps * Cg] per group, then part [taps * Cg, Og] = cols^T @ ct_chunk through the
// packed GEMM (threaded inside; this orientation keeps its long side in M, where it packs and
// splits best) and part added into the sum in chunk order. x arrives in C, the compute type
// (float32 for half types, copied up front so every pixel converts once, not once per tap).
template <class T, class C = std::conditional_t<std::is_same_v<T, double>, double, float>>
void conv_wgrad_gemm_impl(const ConvGeom& g, const C* xd, const Shape& xs, const ArrayDesc& ct, ArrayDesc& dw) {
  const int D = g.D;
  const int64_t taps = g.ker_vol, KC = taps * g.Cg, M = g.N * g.out_vol, G = g.groups, W = g.Cout * KC;
  const std::vector<int64_t> koff = tap_koff(g), dst_tap = wgrad_dst_taps(g);
  const int64_t chunk =
      std::min(M, std::max<int64_t>(64, std::min(kWgradGemmRows, (int64_t(1) << 21) / std::max<int64_t>(KC, 1))));
  // ct is read in place (a strided view) when C is its type and its rows are evenly spaced;
  // otherwise each chunk is copied as [rows, Cout] in C.
  const int64_t ct_rs = even_row_stride(g, ct);
  const bool ct_direct = std::is_same_v<T, C> && ct_rs >= 0;
  static thread_local Scratch cols_buf, ct_buf;
  C* cols = cols_buf.get<C>(static_cast<size_t>(std::max<int64_t>(chunk * KC, 1)));
  C* cbuf = ct_buf.get<C>(static_cast<size_t>(ct_direct ? 1 : std::max<int64_t>(chunk * g.Cout, 1)));
  std::vector<int64_t> offs(static_cast<size_t>(chunk * taps));
  std::vector<C> acc(static_cast<size_t>(W), C(0)), part(static_cast<size_t>(KC * g.Og));
  const T* cd = ct.data<T>();
  const int64_t xsc = xs[D + 1], csc = ct.strides[D + 1];
  const int64_t grain = std::max<int64_t>(1, 2048 / std::max<int64_t>(KC, 1));
  for (int64_t r0 = 0; r0 < M; r0 += chunk) {
    const int64_t rows = std::min(chunk, M - r0);
    // Every row's pixel offsets under every tap and, unless read in place, its cotangent.
    parallel_for(rows, grain, [&](int64_t s, int64_t e) {
      std::vector<int64_t> o(D);
      for (int64_t r = s; r < e; ++r) {
        tap_offsets(g, xs, koff, r0 + r, o.data(), offs.data() + r * taps);
        if (ct_direct) continue;
        int64_t off = ((r0 + r) / g.out_vol) * ct.strides[0];
        for (int d = 0; d < D; ++d) off += o[d] * ct.strides[1 + d];
        C* dst = cbuf + r * g.Cout;
        for (int64_t co = 0; co < g.Cout; ++co) dst[co] = C(compute_t<T>(cd[off + co * csc]));
      }
    });
    for (int64_t grp = 0; grp < G; ++grp) {
      const int64_t c0 = grp * g.Cg, o0 = grp * g.Og;
      parallel_for(rows, grain, [&](int64_t s, int64_t e) {
        for (int64_t r = s; r < e; ++r) {
          C* dst = cols + r * KC;
          for (int64_t kk = 0; kk < taps; ++kk, dst += g.Cg) {
            const int64_t off = offs[r * taps + kk];
            if (off < 0) {
              std::fill(dst, dst + g.Cg, C(0));
              continue;
            }
            const C* src = xd + off + c0 * xsc;
            if (xsc == 1) std::memcpy(dst, src, static_cast<size_t>(g.Cg) * sizeof(C));
            else for (int64_t c = 0; c < g.Cg; ++c) dst[c] = src[c * xsc];
          }
        }
      });
      const C* b = ct_direct ? reinterpret_cast<const C*>(cd) + r0 * ct_rs + o0 * csc : cbuf + o0;
      GemmOf<C>::fn(KC, g.Og, rows, cols, 1, KC, b, ct_direct ? ct_rs : g.Cout, ct_direct ? csc : 1, part.data(),
                    g.Og);
      parallel_for(g.Og, std::max<int64_t>(1, 8192 / std::max<int64_t>(KC, 1)), [&](int64_t s, int64_t e) {
        for (int64_t j = s; j < e; ++j)
          for (int64_t kk = 0; kk < taps; ++kk) {
            C* dst = acc.data() + ((o0 + j) * taps + dst_tap[kk]) * g.Cg;
            const C* src = part.data() + kk * g.Cg * g.Og + j;
            for (int64_t c = 0; c < g.Cg; ++c) dst[c] += src[c * g.Og];
          }
      });
    }
  }
  // dw is contiguous and freshly allocated.
  T* od = dw.data<T>();
  parallel_for(W, 1 << 14, [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) od[i] = T(acc[static_cast<size_t>(i)]);
  });
}

template <class T>
void conv_wgrad_gemm(const ConvGeom& g, const ArrayDesc& x, const ArrayDesc& ct, ArrayDesc& dw) {
  if constexpr (is_half_v<T>) {
    // x as contiguous float32 (x.size() floats, kept per thread between calls): the price of
    // converting each pixel once rather than once per tap.
    const int64_t n = x.size();
    static thread_local Scratch xf_buf;
    float* xf = xf_buf.get<float>(static_cast<size_t>(std::max<int64_t>(n, 1)));
    Shape xs(x.shape.size());
    for (int64_t d = x.ndim() - 1, s = 1; d >= 0; s *= x.shape[d], --d) xs[d] = s;
    const T* src = x.data<T>();
    const bool contiguous = x.is_row_contiguous();
    parallel_for(n, 1 << 14, [&](int64_t s, int64_t e) {
      if (contiguous) {
        for (int64_t i = s; i < e; ++i) xf[i] = float(src[i]);
        return;
      }
      std::vector<int64_t> idx(static_cast<size_t>(x.ndim()));
      unravel(s, x.shape, idx.data());
      for (int64_t i = s; i < e; ++i) {
        int64_t off = 0;
        for (int d = 0; d < x.ndim(); ++d) off += idx[d] * x.strides[d];
        xf[i] = float(src[off]);
        for (int d = x.ndim() - 1; d >= 0 && ++idx[d] == x.shape[d]; --d) idx[d] = 0;
      }
    });
    conv_wgrad_gemm_impl<T>(g, xf, xs, ct, dw);
  } else {
    conv_wgrad_gemm_impl<T>(g, x.data<T>(), x.strides, ct, dw);
  }
}

// window: x [N, S..., C] -> [N, O..., K..., C], out[n, o, k, c] = x[n, o*stride + k*dilation, c].
// windowAdd: its transpose, ct [N, O..., K..., C] -> [N, S..., C] summing every window a point is in.
// ints: D, then per spatial dim: kernel, stride, dilation.
struct WindowGeom {
  int D = 0;
  int64_t N = 0, C = 0, out_vol = 1, ker_vol = 1, in_vol = 1;
  Shape in, out, ker, stride, dil;
};

WindowGeom window_geometry(const Instr& instr, const ArrayDesc& x, const ArrayDesc& windows) {
  WindowGeom g;
  g.D = static_cast<int>(instr.ints[0]);
  g.N = x.shape[0];
  g.C = x.shape[g.D + 1];
  for (int d = 0; d < g.D; ++d) {
    g.ker.push_back(instr.ints[1 + d]);
    g.stride.push_back(instr.ints[1 + g.D + d]);
    g.dil.push_back(instr.ints[1 + 2 * g.D + d]);
    g.in.push_back(x.shape[1 + d]);
    g.out.push_back(windows.shape[1 + d]);
    g.in_vol *= x.shape[1 + d];
    g.out_vol *= windows.shape[1 + d];
    g.ker_vol *= instr.ints[1 + d];
  }
  return g;
}

template <class T>
void window_typed(const WindowGeom& g, const ArrayDesc& x, ArrayDesc& out) {
  const int D = g.D;
  const T* xd = x.data<T>();
  T* od = out.data<T>();
  const int64_t xsc = x.strides[D + 1];
  parallel_for(g.N * g.out_vol, std::max<int64_t>(1, 4096 / std::max<int64_t>(g.ker_vol * g.C, 1)), [&](int64_t s, int64_t e) {
    std::vector<int64_t> o(D), k(D);
    for (int64_t row = s; row < e; ++row) {
      const int64_t n = row / g.out_vol;
      unravel(row % g.out_vol, g.out, o.data());
      T* dst = od + row * g.ker_vol * g.C;
      for (int64_t kk = 0; kk < g.ker_vol; ++kk, dst += g.C) {
        unravel(kk, g.ker, k.data());
        int64_t off = n * x.strides[0];
        for (int d = 0; d < D; ++d) off += (o[d] * g.stride[d] + k[d] * g.dil[d]) * x.strides[1 + d];
        for (int64_t c = 0; c < g.C; ++c) dst[c] = xd[off + c * xsc];
      }
    }
  });
}

template <class T>
void window_add_typed(const WindowGeom& g, const ArrayDesc& ct, ArrayDesc& out) {
  using A = std::conditional_t<std::is_same_v<T, double>, double, float>;
  const int D = g.D;
  const T* cd = ct.data<T>();
  T* od = out.data<T>();
  const int64_t csc = ct.strides[2 * D + 1];
  parallel_for(g.N * g.in_vol, std::max<int64_t>(1, 4096 / std::max<int64_t>(g.ker_vol * g.C, 1)), [&](int64_t s, int64_t e) {
    std::vector<int64_t> i(D), k(D);
    std::vector<A> acc(static_cast<size_t>(g.C));
    for (int64_t row = s; row < e; ++row) {
      const int64_t n = row / g.in_vol;
      unravel(row % g.in_vol, g.in, i.data());
      std::fill(acc.begin(), acc.end(), A(0));
      for (int64_t kk = 0; kk < g.ker_vol; ++kk) {
        unravel(kk, g.ker, k.data());
        int64_t off = n * ct.strides[0];
        bool hit = true;
        for (int d = 0; d < D && hit; ++d) {
          int64_t q = i[d] - k[d] * g.dil[d];
          if (q < 0 || q % g.stride[d] != 0 || q / g.stride[d] >= g.out[d]) hit = false;
          else off += (q / g.stride[d]) * ct.strides[1 + d] + k[d] * ct.strides[1 + D + d];
        }
        if (!hit) continue;
        for (int64_t c = 0; c < g.C; ++c) acc[c] += A(compute_t<T>(cd[off + c * csc]));
      }
      T* dst = od + row * g.C;
      for (int64_t c = 0; c < g.C; ++c) dst[c] = T(acc[c]);
    }
  });
}

}  // namespace

void conv(const Instr& instr, const Inputs& in, ArrayDesc& out) {
  const ArrayDesc &x = *in[0], &w = *in[1];
  ConvGeom g = geometry(instr, x, w, out);
  if (out.size() == 0) return;
  switch (x.dtype) {
    case DType::F16: return conv_typed<float16>(g, x, w, out);
    case DType::BF16: return conv_typed<bfloat16>(g, x, w, out);
    case DType::F32:
      // The indirect tiles pay off once a tap's channels fill a few vector steps.
      if (cpu_isa() == Isa::Avx512 && x.strides[g.D + 1] == 1 && g.Cg >= 8 && g.N * g.out_vol > 0)
        return conv_indirect_f32(g, x, w, out, tap_koff(g));
      return conv_typed<float>(g, x, w, out);
    case DType::F64: return conv_typed<double>(g, x, w, out);
    default: throw std::runtime_error("conv of a non-floating dtype (this is a bug)");
  }
}

void conv_weight_grad(const Instr& instr, const Inputs& in, ArrayDesc& out) {
  const ArrayDesc &x = *in[0], &ct = *in[1];
  ConvGeom g = geometry(instr, x, out, ct);
  if (out.size() == 0) return;
  switch (x.dtype) {
    case DType::F16: return conv_wgrad_gemm<float16>(g, x, ct, out);
    case DType::BF16: return conv_wgrad_gemm<bfloat16>(g, x, ct, out);
    case DType::F32:
      if (cpu_isa() == Isa::Avx512 && x.strides[g.D + 1] == 1) return conv_wgrad_tiles_f32(g, x, ct, out);
      return conv_wgrad_gemm<float>(g, x, ct, out);
    case DType::F64: return conv_wgrad_gemm<double>(g, x, ct, out);
    default: throw std::runtime_error("convWeightGrad of a non-floating dtype (this is a bug)");
  }
}

void window(const Instr& instr, const Inputs& in, ArrayDesc& out) {
  const ArrayDesc& x = *in[0];
  WindowGeom g = window_geometry(instr, x, out);
  if (out.size() == 0) return;
  DISPATCH_ALL(x.dtype, window_typed<T>(g, x, out));
}

void window_add(const Instr& instr, const Inputs& in, ArrayDesc& out) {
  const ArrayDesc& ct = *in[0];
  WindowGeom g = window_geometry(instr, out, ct);
  if (out.size() == 0) return;
  switch (ct.dtype) {
    case DType::F16: return window_add_typed<float16>(g, ct, out);
    case DType::BF16: return window_add_typed<bfloat16>(g, ct, out);
    case DType::F32: return window_add_typed<float>(g, ct, out);
    case DType::F64: return window_add_typed<double>(g, ct, out);
    default: throw std::runtime_error("windowAdd of a non-floating dtype (this is a bug)");
  }
}

}  // namespace tessera::cpu
