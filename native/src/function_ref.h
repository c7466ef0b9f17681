// @file FunctionRef: a non-owning reference to a callable, for functions that call a callback
// before they return and never keep it (parallel_for, strided_rows). Unlike std::function it never
// allocates: a kernel's lambda capturing more than two references made a std::function allocate
// on every call, and every tiny evaluation paid for it.
#pragma once
#include <memory>
#include <type_traits>
#include <utility>

namespace tessera {

template <class Sig>
class FunctionRef;

template <class R, class... A>
class FunctionRef<R(A...)> {
 public:
  // Refers to f, which must outlive every call through this reference (a temporary lambda passed
  // as an argument lives until the call returns).
  template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, FunctionRef> && std::is_invocable_r_v<R, F&, A...>>>
  FunctionRef(F&& f)  // NOLINT: implicit, as std::function is
      : obj_(const_cast<void*>(static_cast<const void*>(std::addressof(f)))),
        call_([](void* o, A... a) -> R { return (*static_cast<std::remove_reference_t<F>*>(o))(std::forward<A>(a)...); }) {}
  R operator()(A... a) const { return call_(obj_, std::forward<A>(a)...); }

 private:
  void* obj_;
  R (*call_)(void*, A...);
};

}  // namespace tessera
