// @file Vectorized float32 math over contiguous rows (16 lanes on AVX-512, 8 on AVX2+FMA, chosen at
// run time; bit-identical results either way). Each returns false when the machine has neither, and
// the caller uses its scalar loop instead.
#pragma once
#include <cstdint>

namespace tessera::cpu {

bool vexp_f32(const float* x, float* y, int64_t n);
bool vtanh_f32(const float* x, float* y, int64_t n);
bool vsigmoid_f32(const float* x, float* y, int64_t n);

// A short chain around one of the functions above, evaluated on registers, vector by vector (the
// fused kernel's folded steps, fused.cc): y = post(f(pre_k(...pre_1(x))), other), where each pre_j
// is a binary op with a constant and post a binary op with a row `other`. Each op is the plain
// IEEE float32 operation with its operands in the chain's order, and f the function above, so the
// results are the bits the separate passes give.
enum class VFn : uint8_t { Exp, Tanh, Sigmoid };
enum class VOp : uint8_t { Add, Sub, Mul, Div };
struct VPre {
  VOp op;
  bool const_first;  // op(c, v) rather than op(v, c)
  float c;
};
struct VChain {
  static constexpr int kMaxPre = 3;
  VFn fn;
  int n_pre = 0;
  VPre pre[kMaxPre];
  bool post = false;
  VOp post_op = VOp::Mul;
  bool other_first = false;  // post(other, f(...)) rather than post(f(...), other)
};
// Whether vchain_f32 runs on this machine (the vectorized functions do).
bool vchain_available();
// Applies `ch` over n elements (`other` read only when ch.post); false when !vchain_available().
// `stream`: y is memory that is not read again soon (a large output), so full vectors are stored
// around the caches (non-temporal stores: no read of y's lines before they are written). The
// values are the same either way; the caller runs store_fence() before another thread may read y
// (a fence per call would wait for every store to drain, tile after tile).
bool vchain_f32(const VChain& ch, const float* x, const float* other, float* y, int64_t n, bool stream = false);
// Orders this thread's streaming stores before its later stores (an sfence on x86).
void store_fence();

}  // namespace tessera::cpu
