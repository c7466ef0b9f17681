// @file SmallVector: a vector of trivially copyable T that keeps up to N elements inline. Shapes
// and strides are its main use (array.h's Shape): nearly every array has at most 6 axes, and
// every instruction builds descriptors with both, so keeping them off the heap removes most of an
// evaluation's allocations. The subset of std::vector's interface the code base uses.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <iterator>
#include <new>
#include <stdexcept>
#include <type_traits>
#include <vector>

namespace tessera {

template <class T, size_t N>
class SmallVector {
  static_assert(std::is_trivially_copyable_v<T>, "SmallVector holds trivially copyable elements only");

 public:
  using value_type = T;
  using size_type = size_t;
  using iterator = T*;
  using const_iterator = const T*;
  using reference = T&;
  using const_reference = const T&;

  SmallVector() = default;
  explicit SmallVector(size_t n) { resize(n); }
  SmallVector(size_t n, const T& v) { assign(n, v); }
  SmallVector(std::initializer_list<T> l) { assign(l.begin(), l.end()); }
  template <class It, class = std::enable_if_t<!std::is_integral_v<It>>>
  SmallVector(It first, It last) { assign(first, last); }
  SmallVector(const std::vector<T>& v) { assign(v.begin(), v.end()); }  // NOLINT: implicit, as a vector would copy
  SmallVector(const SmallVector& o) { assign(o.begin(), o.end()); }
  SmallVector(SmallVector&& o) noexcept { take(o); }
  ~SmallVector() { release(); }

  SmallVector& operator=(const SmallVector& o) {
    if (this != &o) assign(o.begin(), o.end());
    return *this;
  }
  SmallVector& operator=(SmallVector&& o) noexcept {
    if (this != &o) {
      release();
      take(o);
    }
    return *this;
  }
  SmallVector& operator=(std::initializer_list<T> l) {
    assign(l.begin(), l.end());
    return *this;
  }
  operator std::vector<T>() const { return std::vector<T>(begin(), end()); }  // NOLINT

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  size_t capacity() const { return cap_; }
  T* data() { return ptr(); }
  const T* data() const { return ptr(); }
  T* begin() { return ptr(); }
  T* end() { return ptr() + size_; }
  const T* begin() const { return ptr(); }
  const T* end() const { return ptr() + size_; }
  std::reverse_iterator<T*> rbegin() { return std::reverse_iterator<T*>(end()); }
  std::reverse_iterator<T*> rend() { return std::reverse_iterator<T*>(begin()); }
  std::reverse_iterator<const T*> rbegin() const { return std::reverse_iterator<const T*>(end()); }
  std::reverse_iterator<const T*> rend() const { return std::reverse_iterator<const T*>(begin()); }
  T& operator[](size_t i) { return ptr()[i]; }
  const T& operator[](size_t i) const { return ptr()[i]; }
  T& at(size_t i) { return i < size_ ? ptr()[i] : (throw_range(), ptr()[0]); }
  const T& at(size_t i) const { return i < size_ ? ptr()[i] : (throw_range(), ptr()[0]); }
  T& front() { return ptr()[0]; }
  const T& front() const { return ptr()[0]; }
  T& back() { return ptr()[size_ - 1]; }
  const T& back() const { return ptr()[size_ - 1]; }

  void reserve(size_t n) {
    if (n <= cap_) return;
    T* fresh = static_cast<T*>(std::malloc(n * sizeof(T)));
    if (!fresh) throw std::bad_alloc();
    if (size_) std::memcpy(fresh, ptr(), size_ * sizeof(T));
    if (heap_) std::free(heap_);
    heap_ = fresh;
    cap_ = n;
  }
  void clear() { size_ = 0; }
  void resize(size_t n) { resize(n, T()); }
  void resize(size_t n, const T& v) {
    const T copy = v;  // v may live in this vector
    if (n > cap_) reserve(std::max(n, 2 * cap_));
    for (size_t i = size_; i < n; ++i) ptr()[i] = copy;
    size_ = n;
  }
  void assign(size_t n, const T& v) {
    const T copy = v;
    size_ = 0;
    resize(n, copy);
  }
  template <class It, class = std::enable_if_t<!std::is_integral_v<It>>>
  void assign(It first, It last) {
    const size_t n = static_cast<size_t>(std::distance(first, last));
    if (n > cap_) {  // (a range inside this vector never needs more room than it has)
      size_ = 0;
      reserve(n);
    }
    T* p = ptr();
    size_t i = 0;
    for (It it = first; it != last; ++it) p[i++] = static_cast<T>(*it);
    size_ = n;
  }
  void push_back(const T& v) {
    if (size_ == cap_) {
      const T copy = v;  // v may live in this vector
      reserve(2 * cap_);
      ptr()[size_++] = copy;
      return;
    }
    ptr()[size_++] = v;
  }
  void emplace_back(const T& v) { push_back(v); }
  void pop_back() { --size_; }
  T* insert(const T* pos, const T& v) {
    const size_t at = static_cast<size_t>(pos - ptr());
    const T copy = v;
    if (size_ == cap_) reserve(2 * cap_);
    T* p = ptr();
    std::memmove(p + at + 1, p + at, (size_ - at) * sizeof(T));
    p[at] = copy;
    ++size_;
    return p + at;
  }
  template <class It, class = std::enable_if_t<!std::is_integral_v<It>>>
  T* insert(const T* pos, It first, It last) {
    const size_t at = static_cast<size_t>(pos - ptr());
    const SmallVector copy(first, last);  // the range may live in this vector
    const size_t n = copy.size();
    if (size_ + n > cap_) reserve(std::max(size_ + n, 2 * cap_));
    T* p = ptr();
    std::memmove(p + at + n, p + at, (size_ - at) * sizeof(T));
    std::memcpy(p + at, copy.data(), n * sizeof(T));
    size_ += n;
    return p + at;
  }
  T* insert(const T* pos, std::initializer_list<T> l) { return insert(pos, l.begin(), l.end()); }
  T* erase(const T* pos) { return erase(pos, pos + 1); }
  T* erase(const T* first, const T* last) {
    T* p = ptr();
    const size_t a = static_cast<size_t>(first - p), b = static_cast<size_t>(last - p);
    std::memmove(p + a, p + b, (size_ - b) * sizeof(T));
    size_ -= b - a;
    return p + a;
  }

  friend bool operator==(const SmallVector& a, const SmallVector& b) {
    return a.size_ == b.size_ && std::equal(a.begin(), a.end(), b.begin());
  }
  friend bool operator!=(const SmallVector& a, const SmallVector& b) { return !(a == b); }
  friend bool operator==(const SmallVector& a, const std::vector<T>& b) {
    return a.size_ == b.size() && std::equal(a.begin(), a.end(), b.begin());
  }
  friend bool operator!=(const SmallVector& a, const std::vector<T>& b) { return !(a == b); }
  friend bool operator<(const SmallVector& a, const SmallVector& b) {
    return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end());
  }

 private:
  T* ptr() { return heap_ ? heap_ : inline_; }
  const T* ptr() const { return heap_ ? heap_ : inline_; }
  void release() {
    if (heap_) std::free(heap_);
    heap_ = nullptr;
    cap_ = N;
    size_ = 0;
  }
  // Moves o's elements here (this holds nothing); o is left empty.
  void take(SmallVector& o) {
    size_ = o.size_;
    if (o.heap_) {
      heap_ = o.heap_, cap_ = o.cap_;
      o.heap_ = nullptr, o.cap_ = N;
    } else {
      std::memcpy(inline_, o.inline_, o.size_ * sizeof(T));
    }
    o.size_ = 0;
  }
  [[noreturn]] static void throw_range();

  T* heap_ = nullptr;
  size_t size_ = 0, cap_ = N;
  T inline_[N];
};

template <class T, size_t N>
void SmallVector<T, N>::throw_range() {
  throw std::out_of_range("SmallVector::at");
}

}  // namespace tessera
