// @file The scalar helpers that ops.def's kernel expressions call, for device code: the same
// semantics as the cpu's (cpu/elementwise_ops.h): integer arithmetic wraps like NumPy's, floored
// division and remainder take the divisor's sign, shifts past the bit width give 0 (or -1).
// erfinv uses CUDA's own. (Marking the cpu's helpers __host__ __device__ would let both share one
// definition; kept apart while that header is in flux.)
#pragma once
#include <cmath>
#include <type_traits>

#include "device.cuh"

namespace tessera::cuda {

template <class T> constexpr bool is_int_v = std::is_integral_v<T> && !std::is_same_v<T, bool>;
// Which dtypes an op is defined on (ops.def names these).
template <class T> constexpr bool kAny = true;
template <class T> constexpr bool kBool = std::is_same_v<T, bool>;
template <class T> constexpr bool kNotBool = !std::is_same_v<T, bool>;
template <class T> constexpr bool kFloat = is_float_v<T>;
template <class T> constexpr bool kIntegral = std::is_integral_v<T>;
template <class T> constexpr bool kInt = is_int_v<T>;

#define TD __device__ __forceinline__
template <class C> using wrap_t = std::conditional_t<(sizeof(C) < sizeof(unsigned)), unsigned, std::make_unsigned_t<C>>;

TD double erfinv_d(double y) { return ::erfinv(y); }
template <class C> TD C neg_of(C x) {
  if constexpr (std::is_integral_v<C>) return C(wrap_t<C>(0) - wrap_t<C>(x));
  else return C(-x);
}
template <class C> TD C abs_of(C x) {
  if constexpr (std::is_unsigned_v<C>) return x;
  else return x < C(0) ? neg_of(x) : (x == C(0) ? C(0) : x);
}
template <class C> TD C sub_of(C a, C b) {
  if constexpr (std::is_integral_v<C>) return C(wrap_t<C>(a) - wrap_t<C>(b));
  else return C(a - b);
}
template <class C> TD C sign_of(C x) {
  if constexpr (std::is_floating_point_v<C>) if (std::isnan(x)) return x;
  return C((x > C(0)) - (x < C(0)));
}
template <class C> TD C sigmoid_of(C x) {
  return x >= C(0) ? C(1) / (C(1) + std::exp(-x)) : std::exp(x) / (C(1) + std::exp(x));
}
template <class C> TD C ipow(C base, C exp) {
  if constexpr (std::is_signed_v<C>) {
    if (exp < 0) return base == 1 ? 1 : (base == -1 ? (exp % 2 ? -1 : 1) : 0);
  }
  using U = wrap_t<C>;
  U b = static_cast<U>(base), r = 1;
  for (U e = static_cast<U>(exp); e; e >>= 1, b *= b)
    if (e & 1) r *= b;
  return static_cast<C>(r);
}
template <class C> TD C int_floor_div(C a, C b) {
  if (b == 0) return 0;
  if constexpr (std::is_signed_v<C>) {
    if (b == -1) return static_cast<C>(0 - static_cast<std::make_unsigned_t<C>>(a));
    C q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
    return q;
  } else {
    return a / b;
  }
}
template <class C> TD C int_mod(C a, C b) {
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
template <class C> TD void float_divmod(C a, C b, C& div, C& mod) {
  mod = std::fmod(a, b);
  if (b == C(0)) {
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
template <class C> TD C add_of(C a, C b) {
  if constexpr (std::is_same_v<C, bool>) return a || b;
  else if constexpr (std::is_integral_v<C>) return C(wrap_t<C>(a) + wrap_t<C>(b));
  else return C(a + b);
}
template <class C> TD C mul_of(C a, C b) {
  if constexpr (std::is_same_v<C, bool>) return a && b;
  else if constexpr (std::is_integral_v<C>) return C(wrap_t<C>(a) * wrap_t<C>(b));
  else return C(a * b);
}
template <class C> TD C div_of(C a, C b) {
  if constexpr (std::is_integral_v<C>) return int_floor_div(a, b);
  else return a / b;
}
template <class C> TD C pow_of(C a, C b) {
  if constexpr (std::is_integral_v<C>) return ipow(a, b);
  else return std::pow(a, b);
}
template <class C> TD C max_of(C a, C b) {
  if constexpr (std::is_floating_point_v<C>) if (std::isnan(a) || std::isnan(b)) return a + b;
  return a > b ? a : b;
}
template <class C> TD C min_of(C a, C b) {
  if constexpr (std::is_floating_point_v<C>) if (std::isnan(a) || std::isnan(b)) return a + b;
  return a < b ? a : b;
}
template <class C> TD C remainder_of(C a, C b) {
  if constexpr (std::is_integral_v<C>) return int_mod(a, b);
  else { C d, m; float_divmod(a, b, d, m); return m; }
}
template <class C> TD C floor_divide_of(C a, C b) {
  if constexpr (std::is_integral_v<C>) return int_floor_div(a, b);
  else { C d, m; float_divmod(a, b, d, m); return d; }
}
template <class C> TD C logaddexp_of(C a, C b) {
  if (std::isnan(a) || std::isnan(b)) return a + b;
  C m = a > b ? a : b;
  if (std::isinf(m)) return m;
  return m + std::log1p(std::exp(-std::abs(a - b)));
}
template <class C> TD C shift_left(C a, C b) {
  if (b < C(0) || b >= C(sizeof(C) * 8)) return C(0);
  return C(static_cast<std::make_unsigned_t<C>>(a) << b);
}
template <class C> TD C shift_right(C a, C b) {
  if (b < C(0) || b >= C(sizeof(C) * 8)) return C(a < C(0) ? C(-1) : C(0));
  return C(a >> b);
}
#undef TD

}  // namespace tessera::cuda
