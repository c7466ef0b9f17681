// @file Reductions over a set of axes (sum, prod, max, min) and arg-reductions over one axis.
// Floating sums and products accumulate in double; integer ones in 64 bits, wrapping like NumPy.
#include <cmath>
#include <limits>
#include <memory>
#include <stdexcept>
#include <vector>

#include "combine.h"
#include "kernels.h"
#include "strided.h"

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

template <class R>
void reduce_dispatch(const ArrayDesc& x, const std::vector<int64_t>& axes, ArrayDesc& out) {
  if (x.dtype != out.dtype) throw std::runtime_error("reduction output dtype differs (this is a bug)");
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
