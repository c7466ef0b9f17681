// @file The backend interface: what the executor needs from a device. The executor itself only
// reshapes metadata (views, donation); every byte is touched through a Backend. The cpu backend
// (cpu/) is always built; a GPU backend implements the same interface with device allocations.
#pragma once
#include <atomic>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "array.h"
#include "program.h"

namespace tessera {

// Size-bucketed caching allocator with memory accounting. Subclasses provide the raw calls.
class Allocator {
 public:
  virtual ~Allocator() = default;
  std::shared_ptr<Storage> allocate(size_t nbytes);
  void release(Storage* s);  // called by ~Storage: back to the cache
  void clear_cache();
  size_t active() const { return active_.load(); }
  size_t peak() const { return peak_.load(); }
  size_t cached() const { return cached_.load(); }
  void reset_peak() { peak_.store(active_.load()); }
  void set_limit(size_t bytes) { limit_ = bytes; }
  size_t limit() const { return limit_; }
  size_t live_allocations() const { return live_.load(); }

 protected:
  virtual void* raw_alloc(size_t nbytes) = 0;  // nullptr when out of memory
  virtual void raw_free(void* p) = 0;

 private:
  static size_t bucket(size_t nbytes);
  std::mutex mutex_;
  std::multimap<size_t, void*> cache_;  // capacity -> block
  std::atomic<size_t> active_{0}, peak_{0}, cached_{0}, live_{0};
  size_t limit_ = SIZE_MAX;
  size_t cache_limit_ = size_t(1) << 30;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;
  virtual Allocator& allocator() = 0;
  // Copies nbytes of host memory into a fresh contiguous array.
  virtual void write(ArrayDesc& dst, const void* host_src) = 0;
  // Copies an array (any strides) into contiguous host memory of dst.nbytes() bytes.
  virtual void read(const ArrayDesc& src, void* host_dst) = 0;
  // Runs one compute instruction. `out` arrives with dtype and shape set; the backend sets its
  // storage and strides (or keeps a storage the executor donated, which it must then write into).
  virtual void run(const Instr& instr, const std::vector<const ArrayDesc*>& inputs, ArrayDesc& out) = 0;
};

Backend& cpu_backend();

}  // namespace tessera
