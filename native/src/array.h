// @file Storage (a refcounted allocation owned by a backend) and ArrayDesc (a strided view of
// one): the unit that handles name and kernels read and write.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "dtype.h"
#include "small_vector.h"

namespace tessera {

class Allocator;

// One allocation. Freed (returned to its allocator's cache) when the last view lets go.
struct Storage {
  void* data = nullptr;   // host or device address, depending on the allocator
  size_t nbytes = 0;      // bytes requested
  size_t capacity = 0;    // bytes actually held (the cache's size bucket)
  Allocator* allocator = nullptr;
  ~Storage();
};

// Axes: inline up to 6 (small_vector.h), so building a descriptor rarely allocates.
using Shape = SmallVector<int64_t, 6>;

// A strided view: element (i0, i1, ...) lives at data + (offset + sum(ik * strides[k])) * itemsize.
struct ArrayDesc {
  std::shared_ptr<Storage> storage;
  DType dtype = DType::F32;
  Shape shape;
  Shape strides;       // in elements; 0 for broadcast axes, negative for flipped slices
  int64_t offset = 0;  // in elements
  int32_t device = 0;  // the backend holding the storage (an index in backends())

  int64_t size() const {
    int64_t n = 1;
    for (auto d : shape) n *= d;
    return n;
  }
  int ndim() const { return static_cast<int>(shape.size()); }
  size_t nbytes() const { return static_cast<size_t>(size()) * itemsize(dtype); }
  bool is_row_contiguous() const {
    int64_t expected = 1;
    for (int i = ndim() - 1; i >= 0; --i) {
      if (shape[i] != 1 && strides[i] != expected) return false;
      expected *= shape[i];
    }
    return true;
  }
  // The first element as T (offset counts elements of the array's dtype: use T of that size).
  template <class T> T* data() const {
    return static_cast<T*>(storage->data) + offset;
  }
  // The first element's address, whatever the dtype.
  uint8_t* bytes() const { return static_cast<uint8_t*>(storage->data) + offset * static_cast<int64_t>(itemsize(dtype)); }
};

inline Shape row_major_strides(const Shape& shape) {
  Shape s(shape.size());
  int64_t acc = 1;
  for (int i = static_cast<int>(shape.size()) - 1; i >= 0; --i) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

}  // namespace tessera
