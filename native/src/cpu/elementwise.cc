// @file Elementwise kernels: the functor of each elementwise op (elementwise_ops.h), instantiated
// for the dtypes the op allows, run over strided operands with fast paths for contiguous and
// scalar-broadcast rows.
#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "elementwise_ops.h"
#include "kernels.h"
#include "strided.h"
#include "vmath.h"

namespace tessera::cpu {
namespace {

// float32 rows with a vectorized kernel (vmath.h); other ops and types use the scalar functor.
using SimdF32 = bool (*)(const float*, float*, int64_t);
template <class Fn> constexpr SimdF32 kSimdF32 = nullptr;
template <class Fn> constexpr bool kHasSimdF32 = false;
template <> constexpr SimdF32 kSimdF32<ExpF> = &vexp_f32;
template <> constexpr bool kHasSimdF32<ExpF> = true;
template <> constexpr SimdF32 kSimdF32<TanhF> = &vtanh_f32;
template <> constexpr bool kHasSimdF32<TanhF> = true;
template <> constexpr SimdF32 kSimdF32<SigmoidF> = &vsigmoid_f32;
template <> constexpr bool kHasSimdF32<SigmoidF> = true;

[[noreturn]] void unsupported(const Instr& instr, DType t) {
  throw std::runtime_error(std::string("not defined for dtype ") + dtype_name(t));
}

template <class T, class Fn>
void run_unary(const ArrayDesc& x, ArrayDesc& out) {
  using C = compute_t<T>;
  using R = decltype(Fn::f(C()));
  using U = std::conditional_t<std::is_same_v<R, bool>, bool, T>;
  const T* xp = x.data<T>();
  U* op = out.data<U>();
  strided_rows(out.shape, {&out.strides, &x.strides}, [&](const int64_t* off, int64_t n, const int64_t* st) {
    U* o = op + off[0];
    const T* a = xp + off[1];
    if constexpr (std::is_same_v<T, float> && std::is_same_v<U, float> && kHasSimdF32<Fn>) {
      if (st[1] == 1 && kSimdF32<Fn>(a, o, n)) return;
      // Strided rows go through the vector kernel too (gathered a block at a time), so the
      // result never depends on the operand's layout (nor on whether the op was fused).
      if (st[1] != 1 && kSimdF32<Fn>(a, o, 0)) {
        float buf[256];
        for (int64_t i0 = 0; i0 < n; i0 += 256) {
          const int64_t m = std::min<int64_t>(256, n - i0);
          for (int64_t i = 0; i < m; ++i) buf[i] = a[(i0 + i) * st[1]];
          kSimdF32<Fn>(buf, o + i0, m);
        }
        return;
      }
    }
    if (st[1] == 1)
      for (int64_t i = 0; i < n; ++i) o[i] = U(Fn::f(C(a[i])));
    else
      for (int64_t i = 0; i < n; ++i) o[i] = U(Fn::f(C(a[i * st[1]])));
  });
}

template <class T, class Fn>
void run_binary(const ArrayDesc& x, const ArrayDesc& y, ArrayDesc& out) {
  using C = compute_t<T>;
  using R = decltype(Fn::f(C(), C()));
  using U = std::conditional_t<std::is_same_v<R, bool>, bool, T>;
  const T* xp = x.data<T>();
  const T* yp = y.data<T>();
  U* op = out.data<U>();
  strided_rows(out.shape, {&out.strides, &x.strides, &y.strides},
                  [&](const int64_t* off, int64_t n, const int64_t* st) {
                    U* o = op + off[0];
                    const T* a = xp + off[1];
                    const T* b = yp + off[2];
                    if (st[1] == 1 && st[2] == 1) {
                      for (int64_t i = 0; i < n; ++i) o[i] = U(Fn::f(C(a[i]), C(b[i])));
                    } else if (st[1] == 1 && st[2] == 0) {
                      const C bv = C(b[0]);
                      for (int64_t i = 0; i < n; ++i) o[i] = U(Fn::f(C(a[i]), bv));
                    } else if (st[1] == 0 && st[2] == 1) {
                      const C av = C(a[0]);
                      for (int64_t i = 0; i < n; ++i) o[i] = U(Fn::f(av, C(b[i])));
                    } else {
                      for (int64_t i = 0; i < n; ++i) o[i] = U(Fn::f(C(a[i * st[1]]), C(b[i * st[2]])));
                    }
                  });
}

template <class Fn>
void unary(const Instr& instr, const Inputs& in, ArrayDesc& out) {
  DType t = in[0]->dtype;
  DISPATCH_ALL(t, if constexpr (Fn::template ok<T>) run_unary<T, Fn>(*in[0], out); else unsupported(instr, t));
}
template <class Fn>
void binary(const Instr& instr, const Inputs& in, ArrayDesc& out) {
  DType t = in[0]->dtype;
  if (in[1]->dtype != t) throw std::runtime_error("operand dtypes differ (this is a bug)");
  DISPATCH_ALL(t, if constexpr (Fn::template ok<T>) run_binary<T, Fn>(*in[0], *in[1], out); else unsupported(instr, t));
}

void where(const Inputs& in, ArrayDesc& out) {
  const ArrayDesc &c = *in[0], &x = *in[1], &y = *in[2];
  if (c.dtype != DType::Bool) throw std::runtime_error("condition must be bool (this is a bug)");
  DISPATCH_ALL(out.dtype, {
    const bool* cp = c.data<bool>();
    const T* xp = x.data<T>();
    const T* yp = y.data<T>();
    T* op = out.data<T>();
    // select_bits: a blend the compiler vectorizes, not a branch per element.
    strided_rows(out.shape, {&out.strides, &c.strides, &x.strides, &y.strides},
                    [&](const int64_t* off, int64_t n, const int64_t* st) {
                      T* o = op + off[0];
                      const bool* m = cp + off[1];
                      const T* a = xp + off[2];
                      const T* b = yp + off[3];
                      if (st[1] == 1 && st[2] == 1 && st[3] == 1) {
                        for (int64_t i = 0; i < n; ++i) o[i] = select_bits(m[i], a[i], b[i]);
                      } else {
                        for (int64_t i = 0; i < n; ++i) o[i] = select_bits(m[i * st[1]], a[i * st[2]], b[i * st[3]]);
                      }
                    });
  });
}

void cast(const Inputs& in, ArrayDesc& out) {
  const ArrayDesc& x = *in[0];
  DISPATCH_ALL(x.dtype, {
    using From = T;
    const From* xp = x.data<From>();
    DISPATCH_ALL(out.dtype, {
      T* op = out.data<T>();
      strided_rows(out.shape, {&out.strides, &x.strides}, [&](const int64_t* off, int64_t n, const int64_t* st) {
        for (int64_t i = 0; i < n; ++i) {
          if constexpr (is_half_v<T>) op[off[0] + i] = T(convert<double>(xp[off[1] + i * st[1]]));  // one rounding
          else op[off[0] + i] = convert<T>(xp[off[1] + i * st[1]]);
        }
      });
    });
  });
}

template <class T>
void run_divmod(const ArrayDesc& x, const ArrayDesc& y, ArrayDesc& q, ArrayDesc& r) {
  using C = compute_t<T>;
  const T* xp = x.data<T>();
  const T* yp = y.data<T>();
  T* qp = q.data<T>();
  T* rp = r.data<T>();
  strided_rows(q.shape, {&q.strides, &r.strides, &x.strides, &y.strides},
               [&](const int64_t* off, int64_t n, const int64_t* st) {
                 for (int64_t i = 0; i < n; ++i) {
                   C a = C(xp[off[2] + i * st[2]]), b = C(yp[off[3] + i * st[3]]), d, m;
                   if constexpr (std::is_integral_v<C>) {
                     d = int_floor_div(a, b);
                     m = int_mod(a, b);
                   } else {
                     float_divmod(a, b, d, m);
                   }
                   qp[off[0] + i * st[0]] = T(d);
                   rp[off[1] + i * st[1]] = T(m);
                 }
               });
}

}  // namespace

void divmod(const Inputs& in, const Outputs& outs) {
  const ArrayDesc &x = *in.at(0), &y = *in.at(1);
  if (outs.size() != 2 || x.dtype != y.dtype) throw std::runtime_error("divmod takes two operands of one dtype and gives two outputs");
  DISPATCH_ALL(x.dtype, {
    if constexpr (std::is_same_v<T, bool>) throw std::runtime_error("not defined for dtype bool");
    else run_divmod<T>(x, y, *outs[0], *outs[1]);
  });
}

void elementwise(const Instr& instr, const Inputs& in, ArrayDesc& out) {
  switch (instr.op) {
#define OP(name, str, kind)
#define UNARY(NAME, STR, OK, EXPR) case Op::NAME: return unary<NAME##F>(instr, in, out);
#define PREDICATE(NAME, STR, OK, EXPR) case Op::NAME: return unary<NAME##F>(instr, in, out);
#define BINARY(NAME, STR, OK, EXPR) case Op::NAME: return binary<NAME##F>(instr, in, out);
#define COMPARE(NAME, STR, EXPR) case Op::NAME: return binary<NAME##F>(instr, in, out);
#include "../ops.def"
    case Op::Where: return where(in, out);
    case Op::Cast: return cast(in, out);
    default: throw std::runtime_error("not an elementwise op (this is a bug)");
  }
}

}  // namespace tessera::cpu
