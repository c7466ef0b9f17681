// @file The combiners shared by reductions (reduce.cc) and scans (scan.cc): an identity and a
// step for sum, product, max and min, and the type each accumulates in.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "../dtype.h"

namespace tessera::cpu {

// Floating sums and products accumulate in double; integer ones in 64 bits, wrapping like NumPy.
template <class T>
using acc_t = std::conditional_t<is_float_v<T>, double,
              std::conditional_t<std::is_same_v<T, bool>, int64_t,
              std::conditional_t<std::is_signed_v<T>, int64_t, uint64_t>>>;

struct SumOp {
  template <class A> static A init() { return A(0); }
  template <class A> static A step(A acc, A v) {
    if constexpr (std::is_integral_v<A>) return A(uint64_t(acc) + uint64_t(v));  // wraps, never UB
    else return acc + v;
  }
};
struct ProdOp {
  template <class A> static A init() { return A(1); }
  template <class A> static A step(A acc, A v) {
    if constexpr (std::is_integral_v<A>) return A(uint64_t(acc) * uint64_t(v));  // wraps, never UB
    else return acc * v;
  }
};
struct MaxOp {
  template <class A> static A init() {
    if constexpr (std::is_floating_point_v<A>) return -std::numeric_limits<A>::infinity();
    else return std::numeric_limits<A>::lowest();
  }
  template <class A> static A step(A acc, A v) {
    if constexpr (std::is_floating_point_v<A>) { if (std::isnan(v) || std::isnan(acc)) return v + acc; }
    return v > acc ? v : acc;
  }
};
struct MinOp {
  template <class A> static A init() {
    if constexpr (std::is_floating_point_v<A>) return std::numeric_limits<A>::infinity();
    else return std::numeric_limits<A>::max();
  }
  template <class A> static A step(A acc, A v) {
    if constexpr (std::is_floating_point_v<A>) { if (std::isnan(v) || std::isnan(acc)) return v + acc; }
    return v < acc ? v : acc;
  }
};

}  // namespace tessera::cpu
