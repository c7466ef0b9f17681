// @file Grow-only, 64-byte-aligned scratch memory for kernels that need a work buffer on every
// call (GEMM packing, im2col): kept per thread between calls, so a kernel neither allocates nor
// touches fresh pages each time it runs.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>

namespace tessera::cpu {

// Use it thread_local, so concurrent calls and the pool's workers never share it. get() keeps
// nothing of the previous contents when it grows.
class Scratch {
 public:
  Scratch() = default;
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  ~Scratch() { std::free(raw_); }
  template <class T>
  T* get(size_t count) {
    size_t bytes = count * sizeof(T);
    if (bytes > cap_) {
      std::free(raw_);
      cap_ = 0;
      raw_ = std::malloc(bytes + 64);
      if (!raw_) throw std::bad_alloc();
      cap_ = bytes;
    }
    return reinterpret_cast<T*>((reinterpret_cast<uintptr_t>(raw_) + 63) & ~uintptr_t(63));
  }

 private:
  void* raw_ = nullptr;
  size_t cap_ = 0;
};

}  // namespace tessera::cpu
