// @file The scalar semantics of every elementwise op of ops.def: one functor per op (NameF::f and
// NameF::ok<T>, the dtypes it allows), built from the kernel expressions in ops.def, and the
// helpers those expressions call. Included by the kernels that apply them (elementwise.cc, and the
// fused chains of fused.cc), inside an anonymous namespace so each translation unit, whatever
// instruction set it is compiled for, has its own copy.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "../dtype.h"

namespace tessera::cpu {
namespace {

// where's choice without a branch: the chosen value's bits through a mask, so a loop of it is a
// vector blend (a branch per element mispredicts on data such as ReLU masks).
template <class X>
inline X select_bits(bool m, X a, X b) {
  using U = std::conditional_t<sizeof(X) == 1, uint8_t, std::conditional_t<sizeof(X) == 2, uint16_t,
            std::conditional_t<sizeof(X) == 4, uint32_t, uint64_t>>>;
  static_assert(sizeof(U) == sizeof(X), "select_bits needs a 1, 2, 4 or 8 byte type");
  U ua, ub;
  std::memcpy(&ua, &a, sizeof(X));
  std::memcpy(&ub, &b, sizeof(X));
  const U mask = U(0) - U(m);
  const U r = U((ua & mask) | (ub & U(~mask)));
  X out;
  std::memcpy(&out, &r, sizeof(X));
  return out;
}

template <class T> constexpr bool is_int_v = std::is_integral_v<T> && !std::is_same_v<T, bool>;

// Inverse error function: an initial rational approximation (Giles, 2010) polished by two
// Newton steps on erf, which brings it to full double precision.
double erfinv_d(double y) {
  if (y <= -1.0) return y == -1.0 ? -INFINITY : NAN;
  if (y >= 1.0) return y == 1.0 ? INFINITY : NAN;
  if (std::isnan(y)) return y;
  double w = -std::log((1.0 - y) * (1.0 + y)), x;
  if (w < 6.25) {
    w -= 3.125;
    x = -3.6444120640178196996e-21; x = -1.685059138182016589e-19 + x * w; x = 1.2858480715256400167e-18 + x * w;
    x = 1.115787767802518096e-17 + x * w; x = -1.333171662854620906e-16 + x * w; x = 2.0972767875968561637e-17 + x * w;
    x = 6.6376381343583238325e-15 + x * w; x = -4.0545662729752068639e-14 + x * w; x = -8.1519341976054721522e-14 + x * w;
    x = 2.6335093153082322977e-12 + x * w; x = -1.2975133253453532498e-11 + x * w; x = -5.4154120542946279317e-11 + x * w;
    x = 1.051212273321532285e-09 + x * w; x = -4.1126339803469836976e-09 + x * w; x = -2.9070369957882005086e-08 + x * w;
    x = 4.2347877827932403518e-07 + x * w; x = -1.3654692000834678645e-06 + x * w; x = -1.3882523362786468719e-05 + x * w;
    x = 0.0001867342080340571352 + x * w; x = -0.00074070253416626697512 + x * w; x = -0.0060336708714301490533 + x * w;
    x = 0.24015818242558961693 + x * w; x = 1.6536545626831027356 + x * w;
  } else if (w < 16.0) {
    w = std::sqrt(w) - 3.25;
    x = 2.2137376921775787049e-09; x = 9.0756561938885390979e-08 + x * w; x = -2.7517406297064545428e-07 + x * w;
    x = 1.8239629214389227755e-08 + x * w; x = 1.5027403968909827627e-06 + x * w; x = -4.013867526981545969e-06 + x * w;
    x = 2.9234449089955446044e-06 + x * w; x = 1.2475304481671778723e-05 + x * w; x = -4.7318229009055733981e-05 + x * w;
    x = 6.8284851459573175448e-05 + x * w; x = 2.4031110387097893999e-05 + x * w; x = -0.0003550375203628474796 + x * w;
    x = 0.00095328937973738049703 + x * w; x = -0.0016882755560235047313 + x * w; x = 0.0024914420961078508066 + x * w;
    x = -0.0037512085075692412107 + x * w; x = 0.005370914553590063617 + x * w; x = 1.0052589676941592334 + x * w;
    x = 3.0838856104922207635 + x * w;
  } else {
    w = std::sqrt(w) - 5.0;
    x = -2.7109920616438573243e-11; x = -2.5556418169965252055e-10 + x * w; x = 1.5076572693500548083e-09 + x * w;
    x = -3.7894654401267369937e-09 + x * w; x = 7.6157012080783393804e-09 + x * w; x = -1.4960026627149240478e-08 + x * w;
    x = 2.9147953450901080826e-08 + x * w; x = -6.7711997758452339498e-08 + x * w; x = 2.2900482228026654717e-07 + x * w;
    x = -9.9298272942317002539e-07 + x * w; x = 4.5260625972231537039e-06 + x * w; x = -1.9681778105531670567e-05 + x * w;
    x = 7.5995277030017761139e-05 + x * w; x = -0.00021503011930044477347 + x * w; x = -0.00013871931833623122026 + x * w;
    x = 1.0103004648645343977 + x * w; x = 4.8499064014085844221 + x * w;
  }
  x *= y;
  for (int i = 0; i < 2; ++i) {  // Newton: f(x) = erf(x) - y, f'(x) = 2/sqrt(pi) exp(-x^2)
    double err = std::erf(x) - y;
    x -= err / (1.1283791670955126 * std::exp(-x * x));
  }
  return x;
}

// ---- which dtypes an op is defined on (ops.def names these) ----
template <class T> constexpr bool kAny = true;
template <class T> constexpr bool kBool = std::is_same_v<T, bool>;
template <class T> constexpr bool kNotBool = !std::is_same_v<T, bool>;
template <class T> constexpr bool kFloat = is_float_v<T>;
template <class T> constexpr bool kIntegral = std::is_integral_v<T>;  // bool included
template <class T> constexpr bool kInt = is_int_v<T>;

// ---- the scalar helpers that ops.def's kernel expressions call ----
// Integer arithmetic wraps like NumPy's: computed in an unsigned type at least as wide as
// unsigned int (so neither overflow nor integer promotion is undefined), then narrowed.
template <class C> using wrap_t = std::conditional_t<(sizeof(C) < sizeof(unsigned)), unsigned, std::make_unsigned_t<C>>;
template <class C> C neg_of(C x) {
  if constexpr (std::is_integral_v<C>) return C(wrap_t<C>(0) - wrap_t<C>(x));
  else return C(-x);
}
template <class C> C abs_of(C x) {
  if constexpr (std::is_unsigned_v<C>) return x;
  else return x < C(0) ? neg_of(x) : (x == C(0) ? C(0) : x);
}
template <class C> C sub_of(C a, C b) {
  if constexpr (std::is_integral_v<C>) return C(wrap_t<C>(a) - wrap_t<C>(b));
  else return C(a - b);
}
template <class C> C sign_of(C x) {
  if constexpr (std::is_floating_point_v<C>) if (std::isnan(x)) return x;
  return C((x > C(0)) - (x < C(0)));
}
template <class C> C sigmoid_of(C x) {
  return x >= C(0) ? C(1) / (C(1) + std::exp(-x)) : std::exp(x) / (C(1) + std::exp(x));
}
template <class C> C ipow(C base, C exp) {
  if constexpr (std::is_signed_v<C>) {
    if (exp < 0) return base == 1 ? 1 : (base == -1 ? (exp % 2 ? -1 : 1) : 0);
  }
  using U = wrap_t<C>;
  U b = static_cast<U>(base), r = 1;
  for (U e = static_cast<U>(exp); e; e >>= 1, b *= b)
    if (e & 1) r *= b;
  return static_cast<C>(r);
}
// NumPy's floored division and remainder (the sign of the divisor), defined for b == 0 as 0.
template <class C> C int_floor_div(C a, C b) {
  if (b == 0) return 0;
  if constexpr (std::is_signed_v<C>) {
    if (b == -1) return static_cast<C>(0 - static_cast<std::make_unsigned_t<C>>(a));  // no overflow trap
    C q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
    return q;
  } else {
    return a / b;
  }
}
template <class C> C int_mod(C a, C b) {
  if (b == 0) return 0;
  if constexpr (std::is_signed_v<C>) {
    if (b == -1) return 0;
    C r = a % b;
    if (r != 0 && ((r < 0) != (b < 0))) r += b;
    return r;
  } else {
    return a % b;
  }
}
template <class C> void float_divmod(C a, C b, C& div, C& mod) {
  mod = std::fmod(a, b);
  if (b == C(0)) {  // NumPy: a // 0 is a / 0, a % 0 is nan
    div = a / b;
    return;
  }
  div = (a - mod) / b;
  if (mod != C(0)) {
    if ((b < C(0)) != (mod < C(0))) {
      mod += b;
      div -= C(1);
    }
  } else {
    mod = std::copysign(C(0), b);
  }
  if (div != C(0)) {
    C fl = std::floor(div);
    if (div - fl > C(0.5)) fl += C(1);
    div = fl;
  } else {
    div = std::copysign(C(0), a / b);
  }
}
template <class C> C add_of(C a, C b) {
  if constexpr (std::is_same_v<C, bool>) return a || b;
  else if constexpr (std::is_integral_v<C>) return C(wrap_t<C>(a) + wrap_t<C>(b));
  else return C(a + b);
}
template <class C> C mul_of(C a, C b) {
  if constexpr (std::is_same_v<C, bool>) return a && b;
  else if constexpr (std::is_integral_v<C>) return C(wrap_t<C>(a) * wrap_t<C>(b));
  else return C(a * b);
}
template <class C> C div_of(C a, C b) {
  if constexpr (std::is_integral_v<C>) return int_floor_div(a, b);
  else return a / b;
}
template <class C> C pow_of(C a, C b) {
  if constexpr (std::is_integral_v<C>) return ipow(a, b);
  else return std::pow(a, b);
}
template <class C> C max_of(C a, C b) {
  if constexpr (std::is_floating_point_v<C>) if (std::isnan(a) || std::isnan(b)) return a + b;
  return a > b ? a : b;
}
template <class C> C min_of(C a, C b) {
  if constexpr (std::is_floating_point_v<C>) if (std::isnan(a) || std::isnan(b)) return a + b;
  return a < b ? a : b;
}
template <class C> C remainder_of(C a, C b) {
  if constexpr (std::is_integral_v<C>) return int_mod(a, b);
  else { C d, m; float_divmod(a, b, d, m); return m; }
}
template <class C> C floor_divide_of(C a, C b) {
  if constexpr (std::is_integral_v<C>) return int_floor_div(a, b);
  else { C d, m; float_divmod(a, b, d, m); return d; }
}
template <class C> C logaddexp_of(C a, C b) {
  if (std::isnan(a) || std::isnan(b)) return a + b;
  C m = a > b ? a : b;
  if (std::isinf(m)) return m;  // both -inf -> -inf; any +inf -> +inf
  return m + std::log1p(std::exp(-std::abs(a - b)));
}
// Shifts by >= the bit width give 0 (or -1 for negative right shifts) instead of C++'s UB.
template <class C> C shift_left(C a, C b) {
  if (b < C(0) || b >= C(sizeof(C) * 8)) return C(0);
  return C(static_cast<std::make_unsigned_t<C>>(a) << b);
}
template <class C> C shift_right(C a, C b) {
  if (b < C(0) || b >= C(sizeof(C) * 8)) return C(a < C(0) ? C(-1) : C(0));
  return C(a >> b);
}

// ---- one functor per elementwise op of ops.def: NameF::f and the dtypes it allows ----
#define OP(name, str, kind)
#define UNARY(NAME, STR, OK, EXPR)                                \
  struct NAME##F {                                                \
    template <class T> static constexpr bool ok = OK;             \
    template <class C> static C f(C x) { return EXPR; }           \
  };
#define PREDICATE(NAME, STR, OK, EXPR)                            \
  struct NAME##F {                                                \
    template <class T> static constexpr bool ok = OK;             \
    template <class C> static bool f(C x) { return EXPR; }        \
  };
#define BINARY(NAME, STR, OK, EXPR)                               \
  struct NAME##F {                                                \
    template <class T> static constexpr bool ok = OK;             \
    template <class C> static C f(C a, C b) { return EXPR; }      \
  };
#define COMPARE(NAME, STR, EXPR)                                  \
  struct NAME##F {                                                \
    template <class T> static constexpr bool ok = true;           \
    template <class C> static bool f(C a, C b) { return EXPR; }   \
  };
#include "../ops.def"

}  // namespace
}  // namespace tessera::cpu
