// @file strided_rows: axis collapsing and the odometer over rows (see strided.h).
#include "strided.h"

#include <algorithm>
#include <array>

namespace tessera::cpu {

void strided_rows(const Shape& shape, std::initializer_list<const Shape*> operands, RowFn row, int64_t grain) {
  constexpr size_t kMax = 4;
  const size_t N = operands.size();
  const Shape* const* strides = operands.begin();
  Shape dims;
  std::array<Shape, kMax> st;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    if (shape[d] == 0) return;
    bool merge = !dims.empty();
    for (size_t k = 0; k < N && merge; ++k) merge = st[k].back() == (*strides[k])[d] * shape[d];
    if (merge) {
      dims.back() *= shape[d];
      for (size_t k = 0; k < N; ++k) st[k].back() = (*strides[k])[d];
    } else {
      dims.push_back(shape[d]);
      for (size_t k = 0; k < N; ++k) st[k].push_back((*strides[k])[d]);
    }
  }
  if (dims.empty()) {  // a single element
    dims.push_back(1);
    for (size_t k = 0; k < N; ++k) st[k].push_back(0);
  }
  const int outer_nd = static_cast<int>(dims.size()) - 1;
  const int64_t inner = dims.back();
  int64_t rows = 1;
  for (int d = 0; d < outer_nd; ++d) rows *= dims[d];
  std::array<int64_t, kMax> inner_strides{};
  for (size_t k = 0; k < N; ++k) inner_strides[k] = st[k].back();
  if (rows == 1) {  // one long row: split it instead
    parallel_for(inner, grain, [&](int64_t b, int64_t e) {
      std::array<int64_t, kMax> off{};
      for (size_t k = 0; k < N; ++k) off[k] = b * inner_strides[k];
      row(off.data(), e - b, inner_strides.data());
    });
    return;
  }
  int64_t row_grain = std::max<int64_t>(1, grain / std::max<int64_t>(inner, 1));
  parallel_for(rows, row_grain, [&](int64_t begin, int64_t end) {
    // Unravel the first row index, then step an odometer.
    Shape idx(outer_nd, 0);
    std::array<int64_t, kMax> off{};
    int64_t r = begin;
    for (int d = outer_nd - 1; d >= 0; --d) {
      idx[d] = r % dims[d];
      r /= dims[d];
      for (size_t k = 0; k < N; ++k) off[k] += idx[d] * st[k][d];
    }
    for (int64_t i = begin; i < end; ++i) {
      row(off.data(), inner, inner_strides.data());
      for (int d = outer_nd - 1; d >= 0; --d) {
        for (size_t k = 0; k < N; ++k) off[k] += st[k][d];
        if (++idx[d] < dims[d]) break;
        for (size_t k = 0; k < N; ++k) off[k] -= st[k][d] * dims[d];
        idx[d] = 0;
      }
    }
  });
}

}  // namespace tessera::cpu
