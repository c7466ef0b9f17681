// @file Gather and scatter along one axis, with data-dependent indices checked as they are read:
// an index outside [-n, n) throws (naming the index and the axis size) before any access.
#include <stdexcept>
#include <string>
#include <type_traits>

#include "kernels.h"
#include "strided.h"

namespace tessera::cpu {
namespace {

[[noreturn]] void out_of_bounds(const std::string& index, int64_t n) {
  throw std::runtime_error("index " + index + " is out of bounds for an axis of size " + std::to_string(n));
}

// The index as a position in [0, n) (negative ones count from the end); throws outside [-n, n).
template <class I>
inline int64_t position(I v, int64_t n) {
  if constexpr (std::is_unsigned_v<I>) {
    if (static_cast<uint64_t>(v) < static_cast<uint64_t>(n)) return static_cast<int64_t>(v);
    out_of_bounds(std::to_string(v), n);
  } else {
    int64_t k = v;
    if (k >= -n && k < n) return k < 0 ? k + n : k;
    out_of_bounds(std::to_string(k), n);
  }
}

// Calls f(TypeTag<I>{}) with I the C++ type of the integer dtype t.
template <class F>
void dispatch_index(DType t, F&& f) {
  switch (t) {
    case DType::U8: return f(TypeTag<uint8_t>{});
    case DType::U16: return f(TypeTag<uint16_t>{});
    case DType::U32: return f(TypeTag<uint32_t>{});
    case DType::U64: return f(TypeTag<uint64_t>{});
    case DType::I8: return f(TypeTag<int8_t>{});
    case DType::I16: return f(TypeTag<int16_t>{});
    case DType::I32: return f(TypeTag<int32_t>{});
    case DType::I64: return f(TypeTag<int64_t>{});
    default: throw std::runtime_error("indices must have an integer dtype");
  }
}

// Items of `size` bytes, moved as words (gather only copies).
template <class F>
void dispatch_words(size_t size, F&& f) {
  switch (size) {
    case 1: return f(TypeTag<uint8_t>{});
    case 2: return f(TypeTag<uint16_t>{});
    case 4: return f(TypeTag<uint32_t>{});
    default: return f(TypeTag<uint64_t>{});
  }
}

// Integer arithmetic wraps (unsigned, so no signed-overflow UB); bool adds as or, multiplies as and.
template <class C> using wrap_t = std::conditional_t<(sizeof(C) < sizeof(unsigned)), unsigned, std::make_unsigned_t<C>>;

template <class T>
inline void combine(T& dst, T v, int64_t mode) {
  using C = compute_t<T>;
  C a = static_cast<C>(dst), b = static_cast<C>(v);
  C r;
  if constexpr (std::is_same_v<C, bool>) {
    r = (mode == kScatterAdd || mode == kScatterMax) ? (a || b) : (a && b);
  } else if constexpr (std::is_integral_v<C>) {
    switch (mode) {
      case kScatterAdd: r = C(wrap_t<C>(a) + wrap_t<C>(b)); break;
      case kScatterMul: r = C(wrap_t<C>(a) * wrap_t<C>(b)); break;
      case kScatterMax: r = a > b ? a : b; break;
      default: r = a < b ? a : b; break;
    }
  } else {
    switch (mode) {
      case kScatterAdd: r = a + b; break;
      case kScatterMul: r = a * b; break;
      case kScatterMax: r = (std::isnan(a) || std::isnan(b)) ? a + b : (a > b ? a : b); break;
      default: r = (std::isnan(a) || std::isnan(b)) ? a + b : (a < b ? a : b); break;
    }
  }
  if constexpr (is_half_v<T>) dst = T(static_cast<float>(r));
  else dst = r;
}

}  // namespace

void gather(const Instr& instr, const Inputs& in, ArrayDesc& out) {
  const ArrayDesc &x = *in.at(0), &idx = *in.at(1);
  const int axis = static_cast<int>(instr.ints.at(0));
  const int64_t n = x.shape[axis], step = x.strides[axis];
  Shape xs = x.strides;  // x walked without its gathered axis; the index supplies that coordinate
  xs[axis] = 0;
  dispatch_words(itemsize(x.dtype), [&](auto w) {
    using W = typename decltype(w)::type;
    dispatch_index(idx.dtype, [&](auto t) {
      using I = typename decltype(t)::type;
      const W* xp = static_cast<const W*>(x.storage->data) + x.offset;
      const I* ip = static_cast<const I*>(idx.storage->data) + idx.offset;
      W* op = out.data<W>();
      strided_rows(out.shape, {&out.strides, &idx.strides, &xs}, [&](const int64_t* off, int64_t len, const int64_t* st) {
        for (int64_t i = 0; i < len; ++i) {
          int64_t k = position(ip[off[1] + i * st[1]], n);
          op[off[0] + i * st[0]] = xp[off[2] + i * st[2] + k * step];
        }
      });
    });
  });
}

void scatter(const Instr& instr, const Inputs& in, ArrayDesc& out) {
  const ArrayDesc &base = *in.at(0), &idx = *in.at(1), &upd = *in.at(2);
  const int axis = static_cast<int>(instr.ints.at(0));
  const int64_t mode = instr.ints.at(1);
  copy_strided(base, out);
  if (upd.size() == 0) return;
  const int64_t n = out.shape[axis], m = upd.shape[axis];
  const int64_t out_step = out.strides[axis], idx_step = idx.strides[axis], upd_step = upd.strides[axis];
  // Positions that differ only along `axis` may hit the same element, so each thread takes whole
  // lines along it and walks them in order: repeated indices combine in a fixed order.
  Shape lines, os, is, us;
  for (int d = 0; d < upd.ndim(); ++d) {
    if (d == axis) continue;
    lines.push_back(upd.shape[d]), os.push_back(out.strides[d]), is.push_back(idx.strides[d]), us.push_back(upd.strides[d]);
  }
  int64_t num_lines = 1;
  for (int64_t d : lines) num_lines *= d;
  DISPATCH_ALL(out.dtype, {
    dispatch_index(idx.dtype, [&](auto t) {
      using I = typename decltype(t)::type;
      const T* up = static_cast<const T*>(upd.storage->data) + upd.offset;
      const I* ip = static_cast<const I*>(idx.storage->data) + idx.offset;
      T* op = out.data<T>();
      parallel_for(num_lines, std::max<int64_t>(1, 16384 / m), [&](int64_t b, int64_t e) {
        for (int64_t r = b; r < e; ++r) {
          int64_t o = 0, io = 0, uo = 0, rest = r;
          for (int d = static_cast<int>(lines.size()) - 1; d >= 0; --d) {
            int64_t c = rest % lines[d];
            rest /= lines[d];
            o += c * os[d], io += c * is[d], uo += c * us[d];
          }
          for (int64_t j = 0; j < m; ++j) {
            int64_t k = position(ip[io + j * idx_step], n);
            T v = up[uo + j * upd_step];
            if (mode == kScatterSet) op[o + k * out_step] = v;
            else combine(op[o + k * out_step], v, mode);
          }
        }
      });
    });
  });
}

}  // namespace tessera::cpu
