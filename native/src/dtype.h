// @file Element types: the DType enum shared with TypeScript, half-precision storage types, and
// the dispatch macros that turn a runtime DType into a template argument.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

namespace tessera {

// Same order as DTYPE_CODES in packages/core/src/dtype.ts.
enum class DType : int32_t { Bool, U8, U16, U32, U64, I8, I16, I32, I64, F16, BF16, F32, F64 };
constexpr int kNumDTypes = 13;

inline size_t itemsize(DType t) {
  switch (t) {
    case DType::Bool: case DType::U8: case DType::I8: return 1;
    case DType::U16: case DType::I16: case DType::F16: case DType::BF16: return 2;
    case DType::U32: case DType::I32: case DType::F32: return 4;
    default: return 8;
  }
}
const char* dtype_name(DType t);

inline float bits_to_float(uint32_t b) { float f; std::memcpy(&f, &b, 4); return f; }
inline uint32_t float_to_bits(float f) { uint32_t b; std::memcpy(&b, &f, 4); return b; }

// double -> float rounded to odd (truncate, then set the last bit if inexact). Rounding that float
// again to a type with at least 2 fewer mantissa bits gives the correctly rounded result, so
// half types built from doubles don't round twice.
inline float to_float_round_odd(double d) {
  float f = static_cast<float>(d);
  if (std::isnan(d) || std::isinf(f) || static_cast<double>(f) == d) return f;
  if (std::fabs(static_cast<double>(f)) > std::fabs(d)) f = std::nextafter(f, 0.0f);
  return bits_to_float(float_to_bits(f) | 1u);
}

// IEEE binary16, stored as its bits; arithmetic happens in float through the conversions.
struct float16 {
  uint16_t bits;
  float16() = default;
  explicit float16(float f) : bits(from_float(f)) {}
  explicit float16(double d) : float16(to_float_round_odd(d)) {}
  template <class I, class = std::enable_if_t<std::is_integral_v<I>>>
  explicit float16(I i) : float16(static_cast<float>(i)) {}
  operator float() const { return to_float(bits); }
  static float to_float(uint16_t h) {
    uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ffu;
    if (exp == 0x1f) return bits_to_float(sign | 0x7f800000u | (man << 13));  // inf / nan
    if (exp == 0) {  // zero or subnormal: value = man * 2^-24
      float v = std::ldexp(static_cast<float>(man), -24);
      return sign ? -v : v;
    }
    return bits_to_float(sign | ((exp + 112) << 23) | (man << 13));
  }
  static uint16_t from_float(float f) {
    uint32_t x = float_to_bits(f);
    uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) return sign | (ax > 0x7f800000u ? 0x7e00u : 0x7c00u);  // nan / inf
    if (ax >= 0x477ff000u) return sign | 0x7c00u;  // rounds to >= 65520: overflow to inf
    if (ax < 0x38800000u) {  // below the smallest normal: subnormal, round to nearest even
      float v = bits_to_float(ax);
      float scaled = v * 16777216.0f;  // 2^24: the subnormal's integer mantissa, exact
      return sign | static_cast<uint16_t>(std::nearbyint(scaled));
    }
    // Normal: drop 13 mantissa bits with round-to-nearest-even.
    uint32_t rounded = ax + 0xfffu + ((ax >> 13) & 1u);
    return sign | static_cast<uint16_t>((rounded - 0x38000000u) >> 13);
  }
};

// bfloat16: the top half of a float32, rounded to nearest even.
struct bfloat16 {
  uint16_t bits;
  bfloat16() = default;
  explicit bfloat16(float f) : bits(from_float(f)) {}
  explicit bfloat16(double d) : bfloat16(to_float_round_odd(d)) {}
  template <class I, class = std::enable_if_t<std::is_integral_v<I>>>
  explicit bfloat16(I i) : bfloat16(static_cast<float>(i)) {}
  operator float() const { return bits_to_float(static_cast<uint32_t>(bits) << 16); }
  static uint16_t from_float(float f) {
    uint32_t x = float_to_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);  // quiet nan
    return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
  }
};

template <class T> struct is_half : std::false_type {};
template <> struct is_half<float16> : std::true_type {};
template <> struct is_half<bfloat16> : std::true_type {};
template <class T> constexpr bool is_half_v = is_half<T>::value;
template <class T> constexpr bool is_float_v = is_half_v<T> || std::is_floating_point_v<T>;

// The type arithmetic on T happens in: half types compute in float.
template <class T> using compute_t = std::conditional_t<is_half_v<T>, float, T>;

// Converts between any two element types (bool is 0/1; floats to bool compare with zero).
template <class To, class From>
inline To convert(From v) {
  if constexpr (std::is_same_v<To, bool>) {
    if constexpr (is_half_v<From>) return static_cast<float>(v) != 0.0f;
    else return v != From(0);
  } else if constexpr (is_half_v<From>) {
    return convert<To>(static_cast<float>(v));  // saturating, like any float to integer
  } else if constexpr (is_float_v<From> && std::is_integral_v<To>) {
    // Out-of-range and NaN casts are undefined in C++; saturate like a hardware convert would not,
    // but deterministically: NaN -> 0, beyond range -> the extreme value.
    if (!(v == v)) return To(0);
    if (v >= static_cast<From>(std::numeric_limits<To>::max())) return std::numeric_limits<To>::max();
    if (v <= static_cast<From>(std::numeric_limits<To>::lowest())) return std::numeric_limits<To>::lowest();
    return static_cast<To>(v);
  } else {
    return static_cast<To>(v);
  }
}

template <class T> struct TypeTag { using type = T; };

// DISPATCH_ALL(dtype, T, body): runs body with T bound to the C++ type of dtype.
#define TESSERA_CASE(D, CT, ...) \
  case ::tessera::DType::D: { using T = CT; __VA_ARGS__; break; }
#define DISPATCH_FLOAT_CASES(...)                  \
  TESSERA_CASE(F16, ::tessera::float16, __VA_ARGS__) \
  TESSERA_CASE(BF16, ::tessera::bfloat16, __VA_ARGS__) \
  TESSERA_CASE(F32, float, __VA_ARGS__)            \
  TESSERA_CASE(F64, double, __VA_ARGS__)
#define DISPATCH_INT_CASES(...)           \
  TESSERA_CASE(U8, uint8_t, __VA_ARGS__)  \
  TESSERA_CASE(U16, uint16_t, __VA_ARGS__) \
  TESSERA_CASE(U32, uint32_t, __VA_ARGS__) \
  TESSERA_CASE(U64, uint64_t, __VA_ARGS__) \
  TESSERA_CASE(I8, int8_t, __VA_ARGS__)   \
  TESSERA_CASE(I16, int16_t, __VA_ARGS__) \
  TESSERA_CASE(I32, int32_t, __VA_ARGS__) \
  TESSERA_CASE(I64, int64_t, __VA_ARGS__)
#define DISPATCH_ALL(dtype, ...)                                     \
  switch (dtype) {                                                   \
    TESSERA_CASE(Bool, bool, __VA_ARGS__)                            \
    DISPATCH_INT_CASES(__VA_ARGS__)                                  \
    DISPATCH_FLOAT_CASES(__VA_ARGS__)                                \
    default: throw std::runtime_error("unsupported dtype");          \
  }

}  // namespace tessera
