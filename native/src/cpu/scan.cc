// @file Scans (cumulative sum, product, max, min and logaddexp along one axis, inclusive or
// exclusive, in either direction) and the stable sort along one axis (values and indices).
// Floating scans accumulate in double, as the reductions do; integer sums and products wrap in
// 64 bits (never signed overflow) and are narrowed to the dtype, like NumPy.
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <vector>

#include "combine.h"
#include "kernels.h"
#include "threads.h"

namespace tessera::cpu {
namespace {

struct LogAddExpS {
  template <class A> static A init() { return -std::numeric_limits<A>::infinity(); }
  template <class A> static A step(A a, A b) {
    if (std::isnan(a) || std::isnan(b)) return a + b;
    A m = a > b ? a : b;
    if (std::isinf(m)) return m;  // both -inf -> -inf; any +inf -> +inf
    return m + std::log1p(std::exp(-std::abs(a - b)));
  }
};

// The element offsets of multi-indices [0, count) of the axes `dims` (row-major) under `strides`.
struct Axes {
  Shape dims, strides;
  int64_t offset(int64_t i) const {
    int64_t off = 0;
    for (int d = static_cast<int>(dims.size()) - 1; d >= 0; --d) {
      off += (i % dims[d]) * strides[d];
      i /= dims[d];
    }
    return off;
  }
};
// x's axes split around `axis`: outer (before) and inner (after), with the element counts.
struct Around {
  Axes outer, inner;
  int64_t n_outer = 1, n_inner = 1;
};
Around split_around(const ArrayDesc& x, int axis) {
  Around s;
  for (int d = 0; d < x.ndim(); ++d) {
    if (d == axis) continue;
    Axes& a = d < axis ? s.outer : s.inner;
    a.dims.push_back(x.shape[d]);
    a.strides.push_back(x.strides[d]);
    (d < axis ? s.n_outer : s.n_inner) *= x.shape[d];
  }
  return s;
}

// Output (contiguous) is [outer, n, inner]. Work items are (outer index, a chunk of inner
// indices): each walks the axis once, carrying one accumulator per inner index, so the writes
// (and the reads of a contiguous input) go along rows.
template <class T, class R>
void scan_typed(const ArrayDesc& x, int axis, bool reverse, bool inclusive, ArrayDesc& out) {
  constexpr bool kWide = std::is_same_v<R, SumOp> || std::is_same_v<R, ProdOp>;
  using A = std::conditional_t<is_float_v<T>, double,
            std::conditional_t<kWide, std::conditional_t<std::is_signed_v<T>, int64_t, uint64_t>, T>>;
  const int64_t n = x.shape[axis];
  if (out.size() == 0) return;
  Around s = split_around(x, axis);
  const int64_t chunk = std::min<int64_t>(s.n_inner, 256);
  const int64_t n_chunks = (s.n_inner + chunk - 1) / chunk;
  const int64_t sx = x.strides[axis];
  const T* xp = x.data<T>();
  T* op = out.data<T>();
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, n * chunk));
  parallel_for(s.n_outer * n_chunks, grain, [&](int64_t b, int64_t e) {
    std::unique_ptr<A[]> acc(new A[chunk]);
    std::unique_ptr<int64_t[]> in_off(new int64_t[chunk]);
    for (int64_t w = b; w < e; ++w) {
      const int64_t o = w / n_chunks, j0 = (w % n_chunks) * chunk, m = std::min(chunk, s.n_inner - j0);
      const int64_t xbase = s.outer.offset(o);
      for (int64_t j = 0; j < m; ++j) in_off[j] = xbase + s.inner.offset(j0 + j), acc[j] = R::template init<A>();
      T* obase = op + o * n * s.n_inner + j0;
      for (int64_t t = 0; t < n; ++t) {
        const int64_t k = reverse ? n - 1 - t : t;
        const T* xk = xp + k * sx;
        T* ok = obase + k * s.n_inner;
        for (int64_t j = 0; j < m; ++j) {
          A v = A(compute_t<T>(xk[in_off[j]]));
          if (inclusive) acc[j] = R::step(acc[j], v);
          if constexpr (is_half_v<T>) ok[j] = T(acc[j]);
          else ok[j] = static_cast<T>(acc[j]);
          if (!inclusive) acc[j] = R::step(acc[j], v);
        }
      }
    }
  });
}

// Ascending with NaN last (a strict weak order: every NaN is equivalent, above every number).
template <class C> bool less_nan_last(C a, C b) {
  if constexpr (std::is_floating_point_v<C>) {
    if (std::isnan(a)) return false;
    if (std::isnan(b)) return true;
  }
  return a < b;
}

// The selection: kth < 0 sorts the whole line (stable); kth >= 0 only places the element a stable
// sort would put at kth, in O(n): every element before it in the sort's order comes first and every
// one after it last, each side in its original order (so the result does not depend on how
// nth_element permutes), and with `sort_tail` the side after kth sorted (topk: O(n + k log k)).
template <class T>
void sort_typed(const ArrayDesc& x, int axis, int64_t kth, bool sort_tail, ArrayDesc& values, ArrayDesc& indices) {
  using C = compute_t<T>;
  const int64_t n = x.shape[axis];
  if (values.size() == 0) return;
  Around s = split_around(x, axis);
  const int64_t sx = x.strides[axis];
  const T* xp = x.data<T>();
  T* vp = values.data<T>();
  uint32_t* ip = indices.data<uint32_t>();
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, n));
  parallel_for(s.n_outer * s.n_inner, grain, [&](int64_t b, int64_t e) {
    std::vector<C> key(n);
    std::vector<uint32_t> idx(n);
    // The stable sort's order as a total one: by value (NaN last), ties by position.
    auto before = [&](uint32_t a, uint32_t c) {
      if (less_nan_last(key[a], key[c])) return true;
      if (less_nan_last(key[c], key[a])) return false;
      return a < c;
    };
    for (int64_t line = b; line < e; ++line) {
      const int64_t o = line / s.n_inner, j = line % s.n_inner;
      const T* xl = xp + s.outer.offset(o) + s.inner.offset(j);
      for (int64_t k = 0; k < n; ++k) key[k] = C(xl[k * sx]);
      std::iota(idx.begin(), idx.end(), 0u);
      if (kth < 0) {
        std::stable_sort(idx.begin(), idx.end(), [&](uint32_t a, uint32_t c) { return less_nan_last(key[a], key[c]); });
      } else {
        std::nth_element(idx.begin(), idx.begin() + kth, idx.end(), before);
        const uint32_t pivot = idx[kth];
        // Exactly kth elements precede the pivot in a total order, so `lo` ends at kth.
        int64_t lo = 0, hi = kth + 1;
        for (uint32_t i = 0; i < uint32_t(n); ++i) {
          if (i == pivot) continue;
          idx[before(i, pivot) ? lo++ : hi++] = i;
        }
        idx[kth] = pivot;
        if (sort_tail) std::sort(idx.begin() + kth + 1, idx.end(), before);
      }
      const int64_t obase = o * n * s.n_inner + j;
      for (int64_t k = 0; k < n; ++k) {
        vp[obase + k * s.n_inner] = xl[int64_t(idx[k]) * sx];  // the element itself (NaN payloads, -0)
        ip[obase + k * s.n_inner] = idx[k];
      }
    }
  });
}

template <class R>
void scan_dispatch(const ArrayDesc& x, int axis, bool reverse, bool inclusive, ArrayDesc& out) {
  DISPATCH_ALL(x.dtype, scan_typed<T, R>(x, axis, reverse, inclusive, out));
}

}  // namespace

void scan(const Instr& instr, const Inputs& in, ArrayDesc& out) {
  const ArrayDesc& x = *in.at(0);
  if (instr.ints.size() != 4) throw std::runtime_error("scan expects 4 ints (this is a bug)");
  const auto kind = static_cast<ScanKind>(instr.ints[0]);
  const int axis = static_cast<int>(instr.ints[1]);
  const bool reverse = instr.ints[2] != 0, inclusive = instr.ints[3] != 0;
  if (x.dtype == DType::Bool && (kind == ScanKind::Sum || kind == ScanKind::Prod))
    throw std::runtime_error("scan: bool sums and products are int32 (this is a bug)");
  switch (kind) {
    case ScanKind::Sum: return scan_dispatch<SumOp>(x, axis, reverse, inclusive, out);
    case ScanKind::Prod: return scan_dispatch<ProdOp>(x, axis, reverse, inclusive, out);
    case ScanKind::Max: return scan_dispatch<MaxOp>(x, axis, reverse, inclusive, out);
    case ScanKind::Min: return scan_dispatch<MinOp>(x, axis, reverse, inclusive, out);
    case ScanKind::LogAddExp:
      switch (x.dtype) {
        DISPATCH_FLOAT_CASES(scan_typed<T, LogAddExpS>(x, axis, reverse, inclusive, out))
        default: throw std::runtime_error("scan: logaddexp is defined on floating dtypes (this is a bug)");
      }
      return;
  }
  throw std::runtime_error("scan: unknown kind (this is a bug)");
}

void sort(const Instr& instr, const Inputs& in, const Outputs& outs) {
  const ArrayDesc& x = *in.at(0);
  const int axis = static_cast<int>(instr.ints.at(0));
  // ints [axis] sorts; [axis, kth, sort_tail] selects (see sort_typed).
  const int64_t kth = instr.ints.size() == 3 ? instr.ints[1] : -1;
  const bool sort_tail = instr.ints.size() == 3 && instr.ints[2] != 0;
  DISPATCH_ALL(x.dtype, sort_typed<T>(x, axis, kth, sort_tail, *outs.at(0), *outs.at(1)));
}

}  // namespace tessera::cpu
