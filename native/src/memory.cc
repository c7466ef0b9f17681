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

namespace {
// Freed control blocks of storages (allocate_shared puts a Storage and its reference counts in one
// block, all of one size), kept for the next allocation on the same thread: in the steady state an
// instruction's output takes one of these and a buffer from the cache, and allocates no heap memory.
// Trivially destructible, so a storage released while the thread ends still finds it: the
// thread_local Drain frees the blocks then, and `closed` sends any freed later straight back.
struct FreeBlocks {
  void* head = nullptr;
  size_t count = 0;
  size_t size = 0;  // the bytes of every block in the list
  bool closed = false;
};
thread_local FreeBlocks free_blocks;
constexpr size_t kMaxFreeBlocks = 256;
struct Drain {
  ~Drain() {
    FreeBlocks& f = free_blocks;
    while (f.head) {
      void* p = f.head;
      f.head = *static_cast<void**>(p);
      ::operator delete(p);
    }
    f.count = 0;
    f.closed = true;
  }
};
thread_local Drain drain;

template <class T>
struct BlockAllocator {
  using value_type = T;
  BlockAllocator() = default;
  template <class U>
  BlockAllocator(const BlockAllocator<U>&) {}  // NOLINT: rebinding, as allocate_shared does
  T* allocate(size_t n) {
    const size_t bytes = n * sizeof(T);
    FreeBlocks& f = free_blocks;
    if (f.head && bytes == f.size) {
      void* p = f.head;
      f.head = *static_cast<void**>(p);
      --f.count;
      return static_cast<T*>(p);
    }
    (void)&drain;  // constructs this thread's Drain, so its blocks are freed when it ends
    return static_cast<T*>(::operator new(bytes));
  }
  void deallocate(T* p, size_t n) {
    const size_t bytes = n * sizeof(T);
    FreeBlocks& f = free_blocks;
    if (f.size == 0 && bytes >= sizeof(void*)) f.size = bytes;
    if (!f.closed && bytes == f.size && f.count < kMaxFreeBlocks) {
      if (f.count == 0) (void)&drain;  // (a thread that only frees needs its Drain too)
      *reinterpret_cast<void**>(p) = f.head;
      f.head = p;
      ++f.count;
      return;
    }
    ::operator delete(p);
  }
  template <class U>
  bool operator==(const BlockAllocator<U>&) const { return true; }
  template <class U>
  bool operator!=(const BlockAllocator<U>&) const { return false; }
};
}  // namespace

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
  try {
    handed_out(p);
  } catch (...) {  // (a recording that cannot order work on the block: back to the cache)
    std::lock_guard<std::mutex> lock(mutex_);
    cache_[cap].push_back(p);
    cached_ += cap;
    throw;
  }
  size_t now = active_ += cap;
  size_t prev = peak_.load();
  while (now > prev && !peak_.compare_exchange_weak(prev, now)) {
  }
  ++live_;
  auto s = std::allocate_shared<Storage>(BlockAllocator<Storage>());
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
