// @file The fused kernels of mx.fast and the softmax family: layerNorm, rmsNorm (and their
// backward passes), rope, softmax, logsumexp, and scaled dot-product attention forward and
// backward. Each works on rows of the last axis, threaded across rows, one row resident in cache
// while it is read for its statistics and read again to write. float32 rows run on AVX-512 or
// AVX2 loops picked at run time (fast_rows.inc compiled once per target), float64 and machines
// without them on the portable loop. Weights, biases and rope offsets may carry leading axes (a
// prefix of x's): the batch axes vmap folds in, each applying to its own group of rows.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <limits>
#include <stdexcept>
#include <vector>

#include "fast_simd.h"
#include "gemm.h"
#include "kernels.h"
#include "threads.h"

namespace tessera::cpu {

// ---- the row loops, one copy per instruction set ----
#if TESSERA_FAST_X86
#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx2,fma")
namespace rows512 {
using V = fastv::F512;
using fastv::hsum, fastv::hmax, fastv::vmax, fastv::vexp;
#include "fast_rows.inc"
}  // namespace rows512
#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace rows256 {
using V = fastv::F256;
using fastv::hsum, fastv::hmax, fastv::vmax, fastv::vexp;
#include "fast_rows.inc"
}  // namespace rows256
#pragma GCC pop_options
#endif
namespace rows32 {
using V = fastv::Scalar<float>;
using fastv::hsum, fastv::hmax, fastv::vmax, fastv::vexp;
#include "fast_rows.inc"
}  // namespace rows32
namespace rows64 {
using V = fastv::Scalar<double>;
using fastv::hsum, fastv::hmax, fastv::vmax, fastv::vexp;
#include "fast_rows.inc"
}  // namespace rows64

namespace {

enum class Isa { k512, k256, kNone };
// The widest instruction set the machine has; TESSERA_FAST_ISA=avx2 or =portable narrows it, so
// the tests can run every path on one machine.
Isa isa() {
#if TESSERA_FAST_X86
  static const Isa i = [] {
    const char* env = std::getenv("TESSERA_FAST_ISA");
    const std::string want = env ? env : "";
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
    if (want == "portable") return Isa::kNone;
    if (avx512 && want != "avx2") return Isa::k512;
    return avx2 ? Isa::k256 : Isa::kNone;
  }();
  return i;
#else
  return Isa::kNone;
#endif
}

// Calls rowsNN::fn(args...) for the element type T and the machine's instruction set.
#if TESSERA_FAST_X86
#define ROWS(T, fn, ...)                                        \
  ([&]() {                                                      \
    if constexpr (std::is_same_v<T, double>) {                  \
      return rows64::fn(__VA_ARGS__);                           \
    } else {                                                    \
      switch (isa()) {                                          \
        case Isa::k512: return rows512::fn(__VA_ARGS__);        \
        case Isa::k256: return rows256::fn(__VA_ARGS__);        \
        default: return rows32::fn(__VA_ARGS__);                \
      }                                                         \
    }                                                           \
  }())
#else
#define ROWS(T, fn, ...)                                                              \
  ([&]() {                                                                            \
    if constexpr (std::is_same_v<T, double>) return rows64::fn(__VA_ARGS__);          \
    else return rows32::fn(__VA_ARGS__);                                              \
  }())
#endif

// The element offsets of the rows (every axis but the last `core`) of a strided array.
struct RowIndex {
  Shape dims, strides;
  int64_t offset = 0, count = 1;
  RowIndex(const ArrayDesc& a, int core) : offset(a.offset) {
    for (int d = 0; d < a.ndim() - core; ++d) dims.push_back(a.shape[d]), strides.push_back(a.strides[d]), count *= a.shape[d];
  }
  int64_t at(int64_t r) const {
    int64_t off = offset;
    for (int d = static_cast<int>(dims.size()) - 1; d >= 0; --d) off += (r % dims[d]) * strides[d], r /= dims[d];
    return off;
  }
};

// Row r of a (its last axis, n elements): a pointer into a when that axis is contiguous,
// otherwise gathered into buf.
template <class T>
const T* row_of(const ArrayDesc& a, const RowIndex& ri, int64_t r, int64_t n, std::vector<T>& buf) {
  const T* base = static_cast<const T*>(a.storage->data) + ri.at(r);
  const int64_t s = a.strides.back();
  if (s == 1 || n <= 1) return base;
  buf.resize(static_cast<size_t>(n));
  for (int64_t j = 0; j < n; ++j) buf[j] = base[j * s];
  return buf.data();
}

int64_t grain_for(int64_t n) { return std::max<int64_t>(1, 32768 / std::max<int64_t>(1, n)); }

// ---- layerNorm / rmsNorm ----

// x [..., n]; w, b (optional) [...P, n] with P a prefix of x's leading axes.
template <class T>
void norm_fwd(bool layer, const Instr& instr, const Inputs& in, ArrayDesc& out, T eps) {
  const ArrayDesc& x = *in[0];
  const bool has_w = instr.ints[0] != 0, has_b = layer && instr.ints[1] != 0;
  const ArrayDesc* w = has_w ? in[1] : nullptr;
  const ArrayDesc* b = has_b ? in[1 + has_w] : nullptr;
  const int64_t n = x.shape.back();
  if (out.size() == 0) return;
  const RowIndex xr(x, 1);
  const int64_t rows = xr.count;
  const ArrayDesc* p = w ? w : b;
  const RowIndex pr = p ? RowIndex(*p, 1) : RowIndex(x, x.ndim());
  const RowIndex br = b ? RowIndex(*b, 1) : pr;  // w and b have one shape, not always one layout
  const int64_t per_group = rows / std::max<int64_t>(1, pr.count);
  T* y = out.data<T>();
  parallel_for(rows, grain_for(n), [&](int64_t lo, int64_t hi) {
    std::vector<T> xb, wb, bb;
    const T *wp = nullptr, *bp = nullptr;
    int64_t group = -1;
    for (int64_t r = lo; r < hi; ++r) {
      if (p && r / per_group != group) {
        group = r / per_group;
        if (w) wp = row_of<T>(*w, pr, group, n, wb);
        if (b) bp = row_of<T>(*b, br, group, n, bb);
      }
      const T* xp = row_of<T>(x, xr, r, n, xb);
      if (layer) ROWS(T, layer_norm_row, xp, y + r * n, wp, bp, n, eps);
      else ROWS(T, rms_norm_row, xp, y + r * n, wp, n, eps);
    }
  });
}

// x [..., n], w (optional) [...P, n], g [..., n] -> dx [..., n], dw [...P, n] (and db for layerNorm).
template <class T>
void norm_bwd(bool layer, const Instr& instr, const Inputs& in, const Outputs& outs, T eps) {
  // The fusion pass adds an addend to dx on the gpu only (epilogue.ts).
  if (instr.ints.size() > 1 && instr.ints[1]) throw std::runtime_error("a norm backward's addend runs on the gpu only (this is a bug)");
  const ArrayDesc& x = *in[0];
  const bool has_w = instr.ints[0] != 0;
  const ArrayDesc* w = has_w ? in[1] : nullptr;
  const ArrayDesc& g = *in[1 + has_w];
  const int64_t n = x.shape.back();
  T* dx = outs[0]->data<T>();
  T* dw = outs[1]->data<T>();
  T* db = layer ? outs[2]->data<T>() : nullptr;
  const int64_t psize = outs[1]->size();
  std::fill(dw, dw + psize, T(0));
  if (db) std::fill(db, db + psize, T(0));
  if (x.size() == 0) return;
  const RowIndex xr(x, 1), gr(g, 1);
  const int64_t rows = xr.count, groups = psize / n, per_group = rows / groups;
  const RowIndex wr = w ? RowIndex(*w, 1) : RowIndex(x, x.ndim());
  // Rows of one group add into the same dw row: few groups get a partial sum per chunk of rows,
  // many groups are split between threads group by group.
  const bool by_group = groups >= 2 * num_threads();
  const int64_t chunks = by_group ? groups : std::min<int64_t>(rows, 4 * num_threads());
  std::vector<T> partial(by_group ? 0 : static_cast<size_t>(chunks * psize * (layer ? 2 : 1)), T(0));
  parallel_for(chunks, 1, [&](int64_t c0, int64_t c1) {
    std::vector<T> xb, wb, gb;
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t r0 = by_group ? c * per_group : rows * c / chunks, r1 = by_group ? r0 + per_group : rows * (c + 1) / chunks;
      T* dwc = by_group ? dw : partial.data() + c * psize * (layer ? 2 : 1);
      T* dbc = by_group ? db : dwc + psize;
      int64_t group = -1;
      const T* wp = nullptr;
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t gi = r / per_group;
        if (w && gi != group) wp = row_of<T>(*w, wr, gi, n, wb);
        group = gi;
        const T* xp = row_of<T>(x, xr, r, n, xb);
        const T* gp = row_of<T>(g, gr, r, n, gb);
        if (layer) ROWS(T, layer_norm_bwd_row, xp, wp, gp, dx + r * n, dwc + gi * n, dbc + gi * n, n, eps);
        else ROWS(T, rms_norm_bwd_row, xp, wp, gp, dx + r * n, dwc + gi * n, n, eps);
      }
    }
  });
  if (!by_group) {
    for (int64_t c = 0; c < chunks; ++c) {
      const T* pc = partial.data() + c * psize * (layer ? 2 : 1);
      ROWS(T, add_row, dw, pc, psize);
      if (layer) ROWS(T, add_row, db, pc + psize, psize);
    }
  }
}

// ---- rope ----

// x [..., L, D], offset (optional float64) [...P]: row l of group p is at (offset[p] + l) * scale.
template <class T>
void rope_t(const Instr& instr, const Inputs& in, ArrayDesc& out, Scalars sc) {
  const ArrayDesc& x = *in[0];
  const int64_t dims = instr.ints[0], half = dims / 2;
  const bool traditional = instr.ints[1] != 0, has_off = instr.ints[2] != 0;
  const double base = sc.f(0), scale = sc.f(1), off0 = sc.f(2);
  if (out.size() == 0) return;
  const int nd = x.ndim();
  const int64_t D = x.shape[nd - 1], L = x.shape[nd - 2];
  const RowIndex xr(x, 1);
  const int64_t rows = xr.count, leads = rows / L;
  int64_t groups = 1;
  std::vector<double> offs{off0};
  if (has_off) {
    const ArrayDesc& o = *in[1];
    const RowIndex orow(o, 0);
    groups = orow.count;
    offs.resize(static_cast<size_t>(groups));
    for (int64_t i = 0; i < groups; ++i) offs[i] = static_cast<const double*>(o.storage->data)[orow.at(i)];
  }
  // cos and sin of every (group, position, pair), computed once in double.
  std::vector<T> cs(static_cast<size_t>(groups * L * half)), sn(cs.size());
  std::vector<double> freq(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) freq[i] = std::exp(-static_cast<double>(i) * std::log(base) / static_cast<double>(half));
  parallel_for(groups * L, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, half)), [&](int64_t lo, int64_t hi) {
    for (int64_t gl = lo; gl < hi; ++gl) {
      const double pos = (offs[gl / L] + static_cast<double>(gl % L)) * scale;
      for (int64_t i = 0; i < half; ++i) {
        const double th = pos * freq[i];
        cs[gl * half + i] = static_cast<T>(std::cos(th)), sn[gl * half + i] = static_cast<T>(std::sin(th));
      }
    }
  });
  const int64_t per_group = leads / groups;
  T* y = out.data<T>();
  parallel_for(rows, grain_for(D), [&](int64_t lo, int64_t hi) {
    std::vector<T> xb;
    for (int64_t r = lo; r < hi; ++r) {
      const T* xp = row_of<T>(x, xr, r, D, xb);
      T* yp = y + r * D;
      const int64_t t = ((r / L) / per_group) * L + r % L;
      const T* c = cs.data() + t * half;
      const T* s = sn.data() + t * half;
      if (traditional) {
        for (int64_t i = 0; i < half; ++i) {
          const T a = xp[2 * i], b = xp[2 * i + 1];
          yp[2 * i] = a * c[i] - b * s[i], yp[2 * i + 1] = a * s[i] + b * c[i];
        }
      } else {
        for (int64_t i = 0; i < half; ++i) yp[i] = xp[i] * c[i] - xp[i + half] * s[i];
        for (int64_t i = 0; i < half; ++i) yp[i + half] = xp[i] * s[i] + xp[i + half] * c[i];
      }
      for (int64_t i = dims; i < D; ++i) yp[i] = xp[i];
    }
  });
}

// ---- softmax, logsumexp ----

template <class T>
void softmax_t(bool lse, const Inputs& in, ArrayDesc& out) {
  const ArrayDesc& x = *in[0];
  const int64_t n = x.shape.back();
  if (out.size() == 0) return;
  T* y = out.data<T>();
  if (n == 0) {  // logsumexp of empty rows (x holds no data to read)
    std::fill(y, y + out.size(), -std::numeric_limits<T>::infinity());
    return;
  }
  const RowIndex xr(x, 1);
  parallel_for(xr.count, grain_for(n), [&](int64_t lo, int64_t hi) {
    std::vector<T> xb, tmp(lse ? static_cast<size_t>(n) : 0);
    for (int64_t r = lo; r < hi; ++r) {
      const T* xp = row_of<T>(x, xr, r, n, xb);
      if (lse) y[r] = ROWS(T, logsumexp_row, xp, tmp.data(), n);
      else ROWS(T, softmax_row, xp, y + r * n, n);
    }
  });
}

// softmaxBwd(y, g) -> y (g - sum(y g)) along the last axis.
template <class T>
void softmax_bwd_t(const Inputs& in, ArrayDesc& out) {
  const ArrayDesc &y = *in[0], &g = *in[1];
  const int64_t n = y.shape.back();
  if (out.size() == 0) return;
  const RowIndex yr(y, 1), gr(g, 1);
  T* dx = out.data<T>();
  parallel_for(yr.count, grain_for(n), [&](int64_t lo, int64_t hi) {
    std::vector<T> yb, gb;
    for (int64_t r = lo; r < hi; ++r)
      ROWS(T, softmax_vjp_row, row_of<T>(y, yr, r, n, yb), row_of<T>(g, gr, r, n, gb), dx + r * n, n);
  });
}

// ---- attention ----

void gemm(int64_t M, int64_t N, int64_t K, const float* A, int64_t rsA, int64_t csA, const float* B, int64_t rsB,
          int64_t csB, float* C, int64_t ldc) {
  if (M > 0 && N > 0) gemm_f32(M, N, K, A, rsA, csA, B, rsB, csB, C, ldc);
}
void gemm(int64_t M, int64_t N, int64_t K, const double* A, int64_t rsA, int64_t csA, const double* B, int64_t rsB,
          int64_t csB, double* C, int64_t ldc) {
  if (M > 0 && N > 0) gemm_f64(M, N, K, A, rsA, csA, B, rsB, csB, C, ldc);
}

// The shapes of q [..., H, Lq, D], k [..., Hkv, Lk, D], v [..., Hkv, Lk, Dv], mask [..., H, Lq, Lk]
// (any strides) and the masking rule: query i sees keys j < visible(i).
struct Attn {
  const ArrayDesc &q, &k, &v;
  const ArrayDesc* mask;
  bool causal;
  int nd;
  int64_t H, Lq, D, Hkv, Lk, Dv, rep;
  RowIndex qb, kb, vb;  // offsets of the (batch..., head) blocks
  Attn(const ArrayDesc& q_, const ArrayDesc& k_, const ArrayDesc& v_, const ArrayDesc* m, bool c)
      : q(q_), k(k_), v(v_), mask(m), causal(c), nd(q_.ndim()), H(q_.shape[nd - 3]), Lq(q_.shape[nd - 2]),
        D(q_.shape[nd - 1]), Hkv(k_.shape[nd - 3]), Lk(k_.shape[nd - 2]), Dv(v_.shape[nd - 1]), rep(H / Hkv),
        qb(q_, 2), kb(k_, 2), vb(v_, 2) {}
  int64_t visible(int64_t i) const { return causal ? std::min(Lk, std::max<int64_t>(0, i + Lk - Lq + 1)) : Lk; }
  // Keys a block of rows [i0, i0 + rows) needs: past the last visible one, none; all of them
  // when a row sees nothing (it then averages every value, as a mask of the lowest finite score does).
  int64_t keys_for(int64_t i0, int64_t rows) const {
    return visible(i0) == 0 ? Lk : visible(i0 + rows - 1);
  }
  // The scores of block rows [i0, i0 + rows) of head h of batch block bi against keys [0, nk):
  // scale q k^T plus the mask, into s (row stride Lk).
  template <class T>
  void scores(int64_t bi, int64_t h, int64_t i0, int64_t rows, int64_t nk, T scale, T* s) const {
    const int64_t hk = h / rep;
    const T* qp = static_cast<const T*>(q.storage->data) + qb.at(bi * H + h) + i0 * q.strides[nd - 2];
    const T* kp = static_cast<const T*>(k.storage->data) + kb.at(bi * Hkv + hk);
    gemm(rows, nk, D, qp, q.strides[nd - 2], q.strides[nd - 1], kp, k.strides[nd - 1], k.strides[nd - 2], s, Lk);
    for (int64_t r = 0; r < rows; ++r) {
      T* sr = s + r * Lk;
      ROWS(T, scale_row, sr, nk, scale);
      if (mask) {
        const ArrayDesc& m = *mask;
        const T* mp = static_cast<const T*>(m.storage->data) + m.offset;
        int64_t moff = 0, bb = bi * H + h;
        for (int d = nd - 3; d >= 0; --d) moff += (bb % m.shape[d]) * m.strides[d], bb /= m.shape[d];
        mp += moff + (i0 + r) * m.strides[nd - 2];
        const int64_t ms = m.strides[nd - 1];
        if (ms == 1) ROWS(T, add_row, sr, mp, nk);
        else for (int64_t j = 0; j < nk; ++j) sr[j] += mp[j * ms];
      }
    }
  }
};

// Query rows per block: whole heads when nothing is skipped (fewer, larger GEMMs); smaller ones
// under a causal mask, whose blocks stop at their last visible key.
int64_t block_rows(const Attn& a) { return a.causal ? 64 : std::min<int64_t>(std::max<int64_t>(a.Lq, 1), 256); }

// q, k, v, [mask] -> out [..., H, Lq, Dv], lse [..., H, Lq]; ints: mask kind (0 none, 1 additive, 2 causal); scalars: scale.
template <class T>
void attention_t(const Instr& instr, const Inputs& in, const Outputs& outs, Scalars sc) {
  const Attn a(*in[0], *in[1], *in[2], instr.ints[0] == 1 ? in[3] : nullptr, instr.ints[0] == 2);
  const T scale = static_cast<T>(sc.f(0));
  T* out = outs[0]->data<T>();
  T* lse = outs[1]->data<T>();
  const int64_t blocks = a.qb.count;
  if (blocks == 0 || a.Lq == 0) return;
  if (a.Lk == 0) {
    std::fill(out, out + outs[0]->size(), T(0));
    std::fill(lse, lse + outs[1]->size(), -std::numeric_limits<T>::infinity());
    return;
  }
  const int64_t br = block_rows(a);
  parallel_for(blocks, 1, [&](int64_t lo, int64_t hi) {
    std::vector<T> s(static_cast<size_t>(br * a.Lk));
    for (int64_t blk = lo; blk < hi; ++blk) {
      const int64_t bi = blk / a.H, h = blk % a.H, hk = h / a.rep;
      const T* vp = static_cast<const T*>(a.v.storage->data) + a.vb.at(bi * a.Hkv + hk);
      for (int64_t i0 = 0; i0 < a.Lq; i0 += br) {
        const int64_t rows = std::min(br, a.Lq - i0), nk = a.keys_for(i0, rows);
        a.scores<T>(bi, h, i0, rows, nk, scale, s.data());
        for (int64_t r = 0; r < rows; ++r) {
          T* sr = s.data() + r * a.Lk;
          const int64_t vis = a.visible(i0 + r);
          if (vis == 0) {  // every key masked: equal weights, as scores all at the lowest value give
            std::fill(sr, sr + nk, T(1) / static_cast<T>(a.Lk));
            lse[blk * a.Lq + i0 + r] = std::numeric_limits<T>::lowest();
            continue;
          }
          lse[blk * a.Lq + i0 + r] = ROWS(T, softmax_row, sr, sr, vis);
          std::fill(sr + vis, sr + nk, T(0));
        }
        gemm(rows, a.Dv, nk, s.data(), a.Lk, int64_t(1), vp, a.v.strides[a.nd - 2], a.v.strides[a.nd - 1],
             out + (blk * a.Lq + i0) * a.Dv, a.Dv);
      }
    }
  });
}

// q, k, v, [mask], out, lse, g -> dq, dk, dv; one task per key/value head, so its query heads
// add into dk and dv without races.
template <class T>
void attention_bwd_t(const Instr& instr, const Inputs& in, const Outputs& outs, Scalars sc) {
  const bool has_mask = instr.ints[0] == 1;
  const Attn a(*in[0], *in[1], *in[2], has_mask ? in[3] : nullptr, instr.ints[0] == 2);
  const ArrayDesc &o = *in[3 + has_mask], &lse = *in[4 + has_mask], &g = *in[5 + has_mask];
  const T scale = static_cast<T>(sc.f(0));
  T* dq = outs[0]->data<T>();
  T* dk = outs[1]->data<T>();
  T* dv = outs[2]->data<T>();
  std::fill(dq, dq + outs[0]->size(), T(0));
  std::fill(dk, dk + outs[1]->size(), T(0));
  std::fill(dv, dv + outs[2]->size(), T(0));
  const int64_t groups = a.kb.count;
  if (groups == 0 || a.Lq == 0 || a.Lk == 0) return;
  const RowIndex ob(o, 2), gb(g, 2), lb(lse, 1);
  const int nd = a.nd;
  const int64_t br = block_rows(a);
  parallel_for(groups, 1, [&](int64_t lo, int64_t hi) {
    std::vector<T> p(static_cast<size_t>(br * a.Lk)), dp(p.size()), ob1, gb1;
    std::vector<T> tmp(static_cast<size_t>(a.Lk * std::max(a.D, a.Dv)));
    for (int64_t grp = lo; grp < hi; ++grp) {
      const int64_t bi = grp / a.Hkv, hk = grp % a.Hkv;
      const T* kp = static_cast<const T*>(a.k.storage->data) + a.kb.at(grp);
      const T* vp = static_cast<const T*>(a.v.storage->data) + a.vb.at(grp);
      T* dkp = dk + grp * a.Lk * a.D;
      T* dvp = dv + grp * a.Lk * a.Dv;
      bool fresh = true;  // dk and dv hold nothing yet: a block covering every key writes them directly
      for (int64_t h = hk * a.rep; h < (hk + 1) * a.rep; ++h) {
        const int64_t blk = bi * a.H + h;
        const T* qp = static_cast<const T*>(a.q.storage->data) + a.qb.at(blk);
        const T* gp = static_cast<const T*>(g.storage->data) + gb.at(blk);
        const T* op = static_cast<const T*>(o.storage->data) + ob.at(blk);
        const T* lp = static_cast<const T*>(lse.storage->data) + lb.at(blk);
        const int64_t ls = lse.strides[nd - 2];
        for (int64_t i0 = 0; i0 < a.Lq; i0 += br) {
          const int64_t rows = std::min(br, a.Lq - i0), nk = a.keys_for(i0, rows);
          const bool direct = fresh && nk == a.Lk;
          fresh = false;
          a.scores<T>(bi, h, i0, rows, nk, scale, p.data());
          const T* gblk = gp + i0 * g.strides[nd - 2];
          // dP = g v^T
          gemm(rows, nk, a.Dv, gblk, g.strides[nd - 2], g.strides[nd - 1], vp, a.v.strides[nd - 1], a.v.strides[nd - 2],
               dp.data(), a.Lk);
          for (int64_t r = 0; r < rows; ++r) {
            const int64_t i = i0 + r, vis = a.visible(i);
            T* pr = p.data() + r * a.Lk;
            T* dpr = dp.data() + r * a.Lk;
            if (vis == 0) {  // constant scores: equal weights, no gradient to q or k
              std::fill(pr, pr + nk, T(1) / static_cast<T>(a.Lk));
              std::fill(dpr, dpr + nk, T(0));
              continue;
            }
            ROWS(T, exp_shift_row, pr, pr, vis, lp[i * ls]);
            std::fill(pr + vis, pr + nk, T(0));
            // D_i = g_i . out_i (rows gathered when their last axis is strided)
            const T* orow = o.strides[nd - 1] == 1 ? op + i * o.strides[nd - 2] : nullptr;
            const T* grow = g.strides[nd - 1] == 1 ? gp + i * g.strides[nd - 2] : nullptr;
            if (!orow) {
              ob1.resize(static_cast<size_t>(a.Dv));
              for (int64_t j = 0; j < a.Dv; ++j) ob1[j] = op[i * o.strides[nd - 2] + j * o.strides[nd - 1]];
              orow = ob1.data();
            }
            if (!grow) {
              gb1.resize(static_cast<size_t>(a.Dv));
              for (int64_t j = 0; j < a.Dv; ++j) gb1[j] = gp[i * g.strides[nd - 2] + j * g.strides[nd - 1]];
              grow = gb1.data();
            }
            const T di = ROWS(T, dot_row, grow, orow, a.Dv);
            ROWS(T, softmax_bwd_row, pr, dpr, vis, di, scale);
            std::fill(dpr + vis, dpr + nk, T(0));
          }
          // dv[:nk] += P^T g
          gemm(nk, a.Dv, rows, p.data(), int64_t(1), a.Lk, gblk, g.strides[nd - 2], g.strides[nd - 1], direct ? dvp : tmp.data(), a.Dv);
          if (!direct) ROWS(T, add_row, dvp, tmp.data(), nk * a.Dv);
          // dq = dS k (dS carries the scale)
          gemm(rows, a.D, nk, dp.data(), a.Lk, int64_t(1), kp, a.k.strides[nd - 2], a.k.strides[nd - 1],
               dq + (blk * a.Lq + i0) * a.D, a.D);
          // dk[:nk] += dS^T q
          const T* qblk = qp + i0 * a.q.strides[nd - 2];
          gemm(nk, a.D, rows, dp.data(), int64_t(1), a.Lk, qblk, a.q.strides[nd - 2], a.q.strides[nd - 1], direct ? dkp : tmp.data(), a.D);
          if (!direct) ROWS(T, add_row, dkp, tmp.data(), nk * a.D);
        }
      }
    }
  });
}

}  // namespace

void fast(const Instr& instr, const Inputs& in, const Outputs& outs, Scalars sc) {
  ArrayDesc& out = *outs[0];
  const bool f64 = in[0]->dtype == DType::F64;
  switch (instr.op) {
    case Op::LayerNorm: case Op::RmsNorm:
      return f64 ? norm_fwd<double>(instr.op == Op::LayerNorm, instr, in, out, sc.f(0))
                 : norm_fwd<float>(instr.op == Op::LayerNorm, instr, in, out, static_cast<float>(sc.f(0)));
    case Op::LayerNormBwd: case Op::RmsNormBwd:
      return f64 ? norm_bwd<double>(instr.op == Op::LayerNormBwd, instr, in, outs, sc.f(0))
                 : norm_bwd<float>(instr.op == Op::LayerNormBwd, instr, in, outs, static_cast<float>(sc.f(0)));
    case Op::Rope: return f64 ? rope_t<double>(instr, in, out, sc) : rope_t<float>(instr, in, out, sc);
    case Op::Softmax: case Op::LogSumExp:
      return f64 ? softmax_t<double>(instr.op == Op::LogSumExp, in, out) : softmax_t<float>(instr.op == Op::LogSumExp, in, out);
    case Op::SoftmaxBwd: return f64 ? softmax_bwd_t<double>(in, out) : softmax_bwd_t<float>(in, out);
    case Op::Attention: return f64 ? attention_t<double>(instr, in, outs, sc) : attention_t<float>(instr, in, outs, sc);
    case Op::AttentionBwd:
      return f64 ? attention_bwd_t<double>(instr, in, outs, sc) : attention_bwd_t<float>(instr, in, outs, sc);
    default: throw std::runtime_error("fast: not a fused op");
  }
}

}  // namespace tessera::cpu
