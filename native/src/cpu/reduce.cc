// @file Reductions over a set of axes (sum, prod, max, min) and arg-reductions over one axis.
// float32/float64 inputs whose reduced axes collapse to one run (a full reduction, rows over the
// last axis, columns over leading axes with the kept axes innermost, and their strided forms) go
// through the vector kernels of reduce_simd.h: pairwise in double (float32 sums pre-add four
// elements in float32; error bounds there), long runs split into fixed blocks of kBlock elements
// whose values combine in a fixed tree, so the result depends on the shape only, never on the
// thread count. Other dtypes and layouts accumulate serially in double (integers in 64 bits,
// wrapping like NumPy).
#include <atomic>
#include <cmath>
#include <limits>
#include <memory>
#include <stdexcept>
#include <vector>

#include "combine.h"
#include "kernels.h"
#include "reduce_simd.h"
#include "strided.h"
#include "threads.h"

namespace tessera::cpu {
namespace {

// Splits the input's axes into kept (output) and reduced ones.
struct Split {
  Shape kept_shape, kept_strides, red_shape, red_strides;
};
Split split_axes(const ArrayDesc& x, const std::vector<int64_t>& axes) {
  Split s;
  std::vector<bool> reduced(x.ndim(), false);
  for (auto a : axes) {
    if (a < 0 || a >= x.ndim()) throw std::runtime_error("reduction axis out of range (this is a bug)");
    reduced[a] = true;
  }
  for (int d = 0; d < x.ndim(); ++d) {
    (reduced[d] ? s.red_shape : s.kept_shape).push_back(x.shape[d]);
    (reduced[d] ? s.red_strides : s.kept_strides).push_back(x.strides[d]);
  }
  return s;
}

template <class T, class R>
void reduce_typed(const ArrayDesc& x, const std::vector<int64_t>& axes, ArrayDesc& out) {
  using A = std::conditional_t<std::is_same_v<R, SumOp> || std::is_same_v<R, ProdOp>, acc_t<T>,
                               std::conditional_t<std::is_same_v<T, bool>, bool, compute_t<T>>>;
  Split s = split_axes(x, axes);
  const T* xp = x.data<T>();
  T* op = out.data<T>();
  int64_t n_out = out.size(), n_red = 1;
  for (auto d : s.red_shape) n_red *= d;
  auto finish = [](A v) -> T {
    if constexpr (is_half_v<T>) return T(v);
    else return static_cast<T>(v);
  };
  // Fast path: the input is contiguous and the kept axes are its innermost ones (e.g. summing a
  // [N, D] matrix over axis 0): accumulate whole rows, reading memory in order.
  bool kept_inner = x.is_row_contiguous() && n_out > 1;
  if (kept_inner) {
    int first_kept = -1;
    for (int d = 0; d < x.ndim(); ++d) {
      bool red = false;
      for (auto a : axes) red |= (a == d);
      if (!red && x.shape[d] != 1 && first_kept < 0) first_kept = d;
      if (red && first_kept >= 0 && x.shape[d] != 1) kept_inner = false;
    }
  }
  if (kept_inner) {
    parallel_for(n_out, 4096, [&](int64_t b, int64_t e) {
      std::unique_ptr<A[]> acc(new A[e - b]);
      for (int64_t j = 0; j < e - b; ++j) acc[j] = R::template init<A>();
      for (int64_t r = 0; r < n_red; ++r) {
        const T* row = xp + r * n_out;
        for (int64_t j = b; j < e; ++j) acc[j - b] = R::step(acc[j - b], A(compute_t<T>(row[j])));
      }
      for (int64_t j = b; j < e; ++j) op[j] = finish(acc[j - b]);
    });
    return;
  }
  // General path: each output element walks its reduced sub-array.
  int nk = static_cast<int>(s.kept_shape.size()), nr = static_cast<int>(s.red_shape.size());
  int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(n_red, 1));
  parallel_for(n_out, grain, [&](int64_t b, int64_t e) {
    Shape ridx(nr);
    for (int64_t o = b; o < e; ++o) {
      int64_t base = 0, rem = o;
      for (int d = nk - 1; d >= 0; --d) {
        base += (rem % s.kept_shape[d]) * s.kept_strides[d];
        rem /= s.kept_shape[d];
      }
      A acc = R::template init<A>();
      if (n_red > 0) {
        int64_t inner = nr ? s.red_shape[nr - 1] : 1, inner_stride = nr ? s.red_strides[nr - 1] : 0;
        std::fill(ridx.begin(), ridx.end(), 0);
        int64_t off = base;
        for (int64_t r = 0; r < n_red; r += inner) {
          const T* p = xp + off;
          for (int64_t i = 0; i < inner; ++i) acc = R::step(acc, A(compute_t<T>(p[i * inner_stride])));
          for (int d = nr - 2; d >= 0; --d) {
            off += s.red_strides[d];
            if (++ridx[d] < s.red_shape[d]) break;
            off -= s.red_strides[d] * s.red_shape[d];
            ridx[d] = 0;
          }
        }
      }
      op[o] = finish(acc);
    }
  });
}

// ---- The vectorized float32/float64 path ----

// An axis after collapsing: size, stride, reduced or kept.
struct Ax {
  int64_t n, stride;
  bool red;
};

// x's axes without size-1 ones, adjacent axes of the same kind merged where their strides allow.
std::vector<Ax> collapse(const ArrayDesc& x, const std::vector<int64_t>& axes) {
  std::vector<Ax> out;
  for (int d = 0; d < x.ndim(); ++d) {
    if (x.shape[d] == 1) continue;
    bool red = false;
    for (auto a : axes) red |= (a == d);
    Ax a{x.shape[d], x.strides[d], red};
    if (!out.empty() && out.back().red == red && out.back().stride == a.stride * a.n) {
      out.back().n *= a.n;
      out.back().stride = a.stride;
    } else {
      out.push_back(a);
    }
  }
  return out;
}

// Offsets of the kept axes `outer` (row-major order) for outer index o.
int64_t outer_offset(const std::vector<Ax>& outer, int64_t o) {
  int64_t off = 0;
  for (int d = static_cast<int>(outer.size()) - 1; d >= 0; --d) {
    off += (o % outer[d].n) * outer[d].stride;
    o /= outer[d].n;
  }
  return off;
}

// Work below this many elements stays on the calling thread (waking a worker costs more).
constexpr int64_t kParallelMin = 1 << 17;

// A contiguous run of any length: fixed blocks, combined in a fixed tree; parallel over blocks
// when `parallel` and the run is long. Each thread streams its own contiguous share of the blocks
// (one unbroken stream for the prefetchers), a few blocks per claim, then takes what is left of
// the others' shares: a worker that wakes late (tens of microseconds, on a busy or virtual
// machine) no longer holds the whole reduction up by that much. Which thread computes a block
// never changes its value, so the result stays independent of the thread count.
template <class T>
double run_blocked(rsimd::Kind k, const T* p, int64_t n, bool parallel) {
  using rsimd::kBlock;
  if (n <= kBlock) return rsimd::run(k, p, n);
  int64_t nb = (n + kBlock - 1) / kBlock;
  std::vector<double> part(nb);
  auto blocks = [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) part[i] = rsimd::run(k, p + i * kBlock, std::min(kBlock, n - i * kBlock));
  };
  constexpr int64_t kMinShare = kParallelMin / kBlock;  // blocks per thread at least
  const int64_t shares = parallel ? std::min<int64_t>(num_threads(), (nb + kMinShare - 1) / kMinShare) : 1;
  if (shares <= 1) {
    blocks(0, nb);
  } else {
    constexpr int64_t kClaim = 4;  // blocks per claim (512 KB of float32)
    struct alignas(64) Cursor {
      std::atomic<int64_t> next;
    };
    std::unique_ptr<Cursor[]> cur(new Cursor[shares]);
    for (int64_t s = 0; s < shares; ++s) cur[s].next.store(nb * s / shares, std::memory_order_relaxed);
    parallel_for(shares, 1, [&](int64_t me, int64_t) {
      for (int64_t o = 0; o < shares; ++o) {
        const int64_t s = (me + o) % shares, end = nb * (s + 1) / shares;
        for (int64_t b; (b = cur[s].next.fetch_add(kClaim, std::memory_order_relaxed)) < end;)
          blocks(b, std::min(end, b + kClaim));
      }
    });
  }
  return rsimd::combine_tree(k, part.data(), nb);
}

// a[j] = a[j] (op) b[j], j < w.
void combine_rows(rsimd::Kind k, double* a, const double* b, int64_t w) {
  switch (k) {
    case rsimd::Kind::Sum:
      for (int64_t j = 0; j < w; ++j) a[j] += b[j];
      break;
    case rsimd::Kind::Prod:
      for (int64_t j = 0; j < w; ++j) a[j] *= b[j];
      break;
    case rsimd::Kind::Max:
      for (int64_t j = 0; j < w; ++j) a[j] = (b[j] > a[j]) || (b[j] != b[j]) ? b[j] : a[j];
      break;
    case rsimd::Kind::Min:
      for (int64_t j = 0; j < w; ++j) a[j] = (b[j] < a[j]) || (b[j] != b[j]) ? b[j] : a[j];
      break;
  }
}

// Tries the vector path; false when the dtype or layout is not one it takes.
template <class T>
bool reduce_fast(rsimd::Kind k, const ArrayDesc& x, const std::vector<int64_t>& axes, ArrayDesc& out) {
  if constexpr (!std::is_same_v<T, float> && !std::is_same_v<T, double>) {
    return false;
  } else {
    std::vector<Ax> ax = collapse(x, axes);
    int nred = 0, red_at = -1;
    for (int i = 0; i < static_cast<int>(ax.size()); ++i)
      if (ax[i].red) ++nred, red_at = i;
    if (nred != 1) return false;  // nothing to reduce (a copy) or several runs: the general path
    const Ax red = ax[red_at];
    const T* xp = x.data<T>();
    T* op = out.data<T>();
    const int64_t n_out = out.size();
    if (red.stride == 1) {
      // Rows: each output is one contiguous run.
      std::vector<Ax> outer;
      for (auto& a : ax)
        if (!a.red) outer.push_back(a);
      if (n_out == 1) {
        op[0] = static_cast<T>(run_blocked(k, xp, red.n, true));
        return true;
      }
      if (red.n > rsimd::kBlock && n_out < 2 * num_threads()) {
        for (int64_t o = 0; o < n_out; ++o) op[o] = static_cast<T>(run_blocked(k, xp + outer_offset(outer, o), red.n, true));
        return true;
      }
      parallel_for(n_out, std::max<int64_t>(1, kParallelMin / red.n), [&](int64_t b, int64_t e) {
        for (int64_t o = b; o < e; ++o) op[o] = static_cast<T>(run_blocked(k, xp + outer_offset(outer, o), red.n, false));
      });
      return true;
    }
    // Columns: the innermost kept axis is contiguous and comes after the reduced one, so each row
    // of the reduced axis is a contiguous stretch of outputs.
    if (ax.back().red || ax.back().stride != 1 || red_at > static_cast<int>(ax.size()) - 2) return false;
    const int64_t C = ax.back().n, R = red.n, ld = red.stride;
    std::vector<Ax> outer;
    for (int i = 0; i + 1 < static_cast<int>(ax.size()); ++i)
      if (!ax[i].red) outer.push_back(ax[i]);
    const int64_t n_outer = n_out / C;
    // Tasks: outer index x column chunk x row block, all fixed by the shape. Row blocks' partial
    // columns combine in a fixed tree afterwards.
    const int64_t cw = std::min<int64_t>(C, 4096), ncb = (C + cw - 1) / cw;
    auto up16 = [](int64_t v) { return (v + 15) / 16 * 16; };
    const int64_t rb = std::min(R, std::max(up16(65536 / cw), up16((R + 15) / 16))), nrb = (R + rb - 1) / rb;
    const int64_t tasks = n_outer * ncb * nrb;
    std::vector<double> part(static_cast<size_t>(tasks * cw));
    parallel_for(tasks, std::max<int64_t>(1, kParallelMin / (rb * cw)), [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        int64_t r = t % nrb, c = (t / nrb) % ncb, o = t / (nrb * ncb);
        int64_t j0 = c * cw, w = std::min(cw, C - j0), r0 = r * rb;
        rsimd::cols(k, xp + outer_offset(outer, o) + r0 * ld + j0, std::min(rb, R - r0), w, ld, part.data() + t * cw);
      }
    });
    // Row blocks combine elementwise in combine_tree's order (halves split at ceil(n / 2)).
    auto tree = [&](auto&& self, double* first, int64_t n, int64_t w) -> void {
      if (n == 1) return;
      int64_t h = (n + 1) / 2;
      self(self, first, h, w);
      self(self, first + h * cw, n - h, w);
      combine_rows(k, first, first + h * cw, w);
    };
    for (int64_t o = 0; o < n_outer; ++o)
      for (int64_t c = 0; c < ncb; ++c) {
        int64_t j0 = c * cw, w = std::min(cw, C - j0);
        double* base = part.data() + (o * ncb + c) * nrb * cw;
        tree(tree, base, nrb, w);
        for (int64_t j = 0; j < w; ++j) op[o * C + j0 + j] = static_cast<T>(base[j]);
      }
    return true;
  }
}

template <class R> constexpr rsimd::Kind kind_of() {
  if constexpr (std::is_same_v<R, SumOp>) return rsimd::Kind::Sum;
  else if constexpr (std::is_same_v<R, ProdOp>) return rsimd::Kind::Prod;
  else if constexpr (std::is_same_v<R, MaxOp>) return rsimd::Kind::Max;
  else return rsimd::Kind::Min;
}

template <class R>
void reduce_dispatch(const ArrayDesc& x, const std::vector<int64_t>& axes, ArrayDesc& out) {
  if (x.dtype != out.dtype) throw std::runtime_error("reduction output dtype differs (this is a bug)");
  if (x.size() > 0 && out.size() > 0) {
    if (x.dtype == DType::F32 && reduce_fast<float>(kind_of<R>(), x, axes, out)) return;
    if (x.dtype == DType::F64 && reduce_fast<double>(kind_of<R>(), x, axes, out)) return;
  }
  DISPATCH_ALL(x.dtype, reduce_typed<T, R>(x, axes, out));
}

// Index of the first maximum (minimum) along one axis; NaN counts as the extreme, as in NumPy.
template <class T, bool IsMax>
void arg_typed(const ArrayDesc& x, int64_t axis, ArrayDesc& out) {
  using C = compute_t<T>;
  Split s = split_axes(x, {axis});
  const T* xp = x.data<T>();
  uint32_t* op = out.data<uint32_t>();
  int64_t n = x.shape[axis], stride = x.strides[axis], n_out = out.size();
  int nk = static_cast<int>(s.kept_shape.size());
  if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
    if (stride == 1 && n >= 64) {
      // Contiguous rows: the vector kernel finds each row's extreme, then its first index.
      parallel_for(n_out, std::max<int64_t>(1, (1 << 17) / n), [&](int64_t b, int64_t e) {
        for (int64_t o = b; o < e; ++o) {
          int64_t base = 0, rem = o;
          for (int d = nk - 1; d >= 0; --d) {
            base += (rem % s.kept_shape[d]) * s.kept_strides[d];
            rem /= s.kept_shape[d];
          }
          op[o] = static_cast<uint32_t>(rsimd::arg(IsMax, xp + base, n));
        }
      });
      return;
    }
  }
  parallel_for(n_out, std::max<int64_t>(1, 16384 / std::max<int64_t>(n, 1)), [&](int64_t b, int64_t e) {
    for (int64_t o = b; o < e; ++o) {
      int64_t base = 0, rem = o;
      for (int d = nk - 1; d >= 0; --d) {
        base += (rem % s.kept_shape[d]) * s.kept_strides[d];
        rem /= s.kept_shape[d];
      }
      int64_t best = 0;
      C bv = C(xp[base]);
      for (int64_t i = 1; i < n; ++i) {
        C v = C(xp[base + i * stride]);
        if constexpr (is_float_v<T>) {
          if (std::isnan(bv)) break;
          if (std::isnan(v)) { best = i; bv = v; break; }
        }
        if (IsMax ? v > bv : v < bv) { best = i; bv = v; }
      }
      op[o] = static_cast<uint32_t>(best);
    }
  });
}

}  // namespace

void reduce(const Instr& instr, const Inputs& in, ArrayDesc& out) {
  const ArrayDesc& x = *in[0];
  switch (instr.op) {
    case Op::ReduceSum: return reduce_dispatch<SumOp>(x, instr.ints, out);
    case Op::ReduceProd: return reduce_dispatch<ProdOp>(x, instr.ints, out);
    case Op::ReduceMax: return reduce_dispatch<MaxOp>(x, instr.ints, out);
    case Op::ReduceMin: return reduce_dispatch<MinOp>(x, instr.ints, out);
    case Op::Argmax:
    case Op::Argmin: {
      if (instr.ints.size() != 1) throw std::runtime_error("expected one axis (this is a bug)");
      if (x.shape[instr.ints[0]] == 0) throw std::runtime_error("attempt to get the arg-extreme of an empty axis");
      bool is_max = instr.op == Op::Argmax;
      DISPATCH_ALL(x.dtype, if (is_max) arg_typed<T, true>(x, instr.ints[0], out); else arg_typed<T, false>(x, instr.ints[0], out));
      return;
    }
    default: throw std::runtime_error("not a reduction (this is a bug)");
  }
}

}  // namespace tessera::cpu
