// @file The caching allocator shared by backends: size buckets, a bounded cache of freed blocks,
// and the counters behind mx.getActiveMemory() and friends.
#include <algorithm>
#include <new>
#include <stdexcept>
#include <string>

#include "backend.h"

namespace tessera {

Storage::~Storage() {
  if (allocator) allocator->release(this);
}

size_t Allocator::bucket(size_t nbytes) {
  // Powers of two up to 1 MiB keep reuse high for small arrays; larger ones round to 64 KiB so
  // the waste stays under 6%.
  if (nbytes <= 64) return 64;
  if (nbytes <= (size_t(1) << 20)) {
    size_t b = 64;
    while (b < nbytes) b <<= 1;
    return b;
  }
  size_t unit = size_t(1) << 16;
  return (nbytes + unit - 1) / unit * unit;
}

std::shared_ptr<Storage> Allocator::allocate(size_t nbytes) {
  size_t cap = bucket(nbytes);
  if (active_.load() + cap > limit_)
    throw std::runtime_error("memory limit exceeded: allocating " + std::to_string(nbytes) + " bytes with " +
                             std::to_string(active_.load()) + " in use and a limit of " + std::to_string(limit_) +
                             " (see setMemoryLimit)");
  void* p = nullptr;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = cache_.find(cap);
    if (it != cache_.end() && !it->second.empty()) {
      p = it->second.back();
      it->second.pop_back();
      cached_ -= cap;
    }
  }
  if (!p) {
    p = raw_alloc(cap);
    if (!p) {
      clear_cache();
      p = raw_alloc(cap);
    }
    if (!p) throw std::runtime_error("out of memory allocating " + std::to_string(nbytes) + " bytes");
  }
  size_t now = active_ += cap;
  size_t prev = peak_.load();
  while (now > prev && !peak_.compare_exchange_weak(prev, now)) {
  }
  ++live_;
  auto s = std::make_shared<Storage>();
  s->data = p;
  s->nbytes = nbytes;
  s->capacity = cap;
  s->allocator = this;
  return s;
}

void Allocator::release(Storage* s) {
  active_ -= s->capacity;
  --live_;
  std::lock_guard<std::mutex> lock(mutex_);
  if (cached_ + s->capacity <= cache_limit_) {
    cache_[s->capacity].push_back(s->data);
    cached_ += s->capacity;
  } else {
    raw_free(s->data);
  }
}

void Allocator::clear_cache() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& [cap, blocks] : cache_)
    for (void* p : blocks) raw_free(p);
  cache_.clear();
  cached_ = 0;
}

}  // namespace tessera
