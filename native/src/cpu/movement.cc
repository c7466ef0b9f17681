// @file Data movement that needs bytes, not math: strided copies (dtype-agnostic, by item size),
// concatenation, and the fills behind full and arange.
#include <cstring>
#include <stdexcept>

#include "kernels.h"
#include "strided.h"

namespace tessera::cpu {
namespace {

template <class W>
void copy_words(const ArrayDesc& src, const ArrayDesc& dst) {
  const W* sp = static_cast<const W*>(src.storage->data) + src.offset;
  W* dp = static_cast<W*>(dst.storage->data) + dst.offset;
  strided_rows(dst.shape, {&dst.strides, &src.strides}, [&](const int64_t* off, int64_t n, const int64_t* st) {
    if (st[0] == 1 && st[1] == 1) {
      std::memcpy(dp + off[0], sp + off[1], n * sizeof(W));
    } else if (st[1] == 0) {
      W v = sp[off[1]];
      for (int64_t i = 0; i < n; ++i) dp[off[0] + i * st[0]] = v;
    } else {
      for (int64_t i = 0; i < n; ++i) dp[off[0] + i * st[0]] = sp[off[1] + i * st[1]];
    }
  });
}

}  // namespace

void copy_strided(const ArrayDesc& src, const ArrayDesc& dst) {
  if (src.shape != dst.shape || src.dtype != dst.dtype) throw std::runtime_error("copy between different shapes (this is a bug)");
  switch (itemsize(src.dtype)) {
    case 1: return copy_words<uint8_t>(src, dst);
    case 2: return copy_words<uint16_t>(src, dst);
    case 4: return copy_words<uint32_t>(src, dst);
    default: return copy_words<uint64_t>(src, dst);
  }
}

void concatenate(const Instr& instr, const Inputs& in, ArrayDesc& out) {
  int64_t axis = instr.ints.at(0), pos = 0;
  for (const ArrayDesc* x : in) {
    ArrayDesc part = out;  // a view of out's slab for this input
    part.shape = x->shape;
    part.offset = out.offset + pos * out.strides[axis];
    copy_strided(*x, part);
    pos += x->shape[axis];
  }
}

void slice_update(const Instr& instr, const Inputs& in, ArrayDesc& out) {
  const ArrayDesc &base = *in.at(0), &update = *in.at(1);
  copy_strided(base, out);
  ArrayDesc view = out;
  view.shape = update.shape;
  for (int d = 0; d < out.ndim(); ++d) {
    int64_t start = instr.ints.at(2 * d), step = instr.ints.at(2 * d + 1);
    if (update.shape[d] > 0) view.offset += start * out.strides[d];
    view.strides[d] = out.strides[d] * step;
  }
  copy_strided(update, view);
}

void fill(const Instr& instr, Scalars sc, ArrayDesc& out) {
  DISPATCH_ALL(out.dtype, {
    T* p = out.data<T>();
    auto make = [](double v) -> T {
      if constexpr (is_half_v<T>) return T(v);
      else return convert<T>(v);
    };
    if (instr.op == Op::Full) {
      if (instr.num_scalars != 1) throw std::runtime_error("full takes one scalar");
      T v;  // 64-bit integer fills carry the integer's bits, so values past 2^53 stay exact
      if constexpr (std::is_same_v<T, int64_t> || std::is_same_v<T, uint64_t>) v = static_cast<T>(sc.i(0));
      else v = make(sc.f(0));
      parallel_for(out.size(), 65536, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) p[i] = v;
      });
    } else {  // arange: start + i * step, computed in double like NumPy
      if (instr.num_scalars != 2) throw std::runtime_error("arange takes two scalars");
      double start = sc.f(0), step = sc.f(1);
      parallel_for(out.size(), 65536, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) p[i] = make(start + static_cast<double>(i) * step);
      });
    }
  });
}

}  // namespace tessera::cpu
