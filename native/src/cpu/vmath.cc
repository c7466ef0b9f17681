// @file Vectorized float32 exp, tanh and sigmoid: 16 lanes on AVX-512, 8 on AVX2+FMA, chosen at run
// time (cpu_isa(); AVX2 also serves TESSERA_CPU_ISA=generic on a CPU that has it). exp is
// fast_simd.h's: Cody-Waite range reduction (x = n ln2 + r) and a degree-6 polynomial for e^r on
// [-ln2/2, ln2/2] (Cephes' coefficients, ~1 ulp), scaling by 2^n in two steps so that subnormal
// results and overflow to inf come out right. tanh is expm1(2|x|) / (expm1(2|x|) + 2) with x's
// sign (see tanh8); NaN propagates throughout. The two widths apply the same operations in the
// same order to each lane (the tail through masked loads or a padded vector), so every result is
// bit-identical whatever the width, the row length or the element's position.
#include "vmath.h"

#include "fast_simd.h"
#include "isa.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace tessera::cpu {

#if defined(__x86_64__)
namespace {

bool has_avx2() {
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return ok;
}

// The exp of fast_simd.h's 8-lane type (one implementation for every vectorized exp).
__attribute__((target("avx2,fma"))) inline __m256 exp8(__m256 x) { return fastv::vexp(fastv::F256{x}).v; }

// tanh(x) = sign(x) E / (E + 2) with E = expm1(2t), t = min(|x|, 9.5) (tanh rounds to 1 from
// 9.02 on). t = n ln2/2 + h with n = floor(2t / ln2) (one reduction step: n <= 27, and where n is
// large E's error barely reaches tanh), so 2h is in [0, ln2) and E = 2^n (2h + c) + 2^n - 1 with
// c = h^2 Q(h) (Q(h) = 4 q(2h), q a degree-5 minimax fit of (expm1(r) - r) / r^2 on [0, ln2),
// relative error 3e-10). Below 2t = ln2 (n = 0) the quotient's roundings would cost up to 2.5
// ulp, so it takes one correction step: y = E / (E + 2) solves y = t + (c - E y) / 2, which
// evaluated at y0 = E / (E + 2) shrinks y0's error by E / 2. Worst case over every float32, against
// tanh in double: 1.77 ulp.
constexpr float kTanhQ[6] = {1.9999998807907104f, 1.3333394527435303f, 0.6665498614311218f,
                             0.2676738500595093f, 0.08455988764762878f, 0.03428453579545021f};

__attribute__((target("avx2,fma"))) inline __m256 tanh8(__m256 x) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256 t = _mm256_min_ps(_mm256_set1_ps(9.5f), _mm256_andnot_ps(sign, x));  // NaN stays NaN
  const __m256 fn = _mm256_round_ps(_mm256_mul_ps(t, _mm256_set1_ps(2.885390043258667f)), _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  const __m256 h = _mm256_fnmadd_ps(fn, _mm256_set1_ps(0.3465735912322998f), t);
  __m256 q = _mm256_set1_ps(kTanhQ[5]);
  for (int k = 4; k >= 0; --k) q = _mm256_fmadd_ps(q, h, _mm256_set1_ps(kTanhQ[k]));
  const __m256 c = _mm256_mul_ps(_mm256_mul_ps(h, h), q);
  const __m256 s = fastv::pow2i(_mm256_cvtps_epi32(fn));
  const __m256 e = _mm256_fmadd_ps(s, _mm256_fmadd_ps(h, _mm256_set1_ps(2.0f), c), _mm256_sub_ps(s, _mm256_set1_ps(1.0f)));
  const __m256 y0 = _mm256_div_ps(e, _mm256_add_ps(e, _mm256_set1_ps(2.0f)));
  const __m256 y1 = _mm256_fmadd_ps(_mm256_fnmadd_ps(e, y0, c), _mm256_set1_ps(0.5f), t);
  const __m256 y = _mm256_blendv_ps(y0, y1, _mm256_cmp_ps(fn, _mm256_setzero_ps(), _CMP_EQ_OQ));
  return _mm256_or_ps(y, _mm256_and_ps(x, sign));
}

// With e = exp(-|x|) (never overflows): 1 / (1 + e) for x >= 0, e / (1 + e) below.
__attribute__((target("avx2,fma"))) inline __m256 sigmoid8(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 e = exp8(_mm256_or_ps(x, _mm256_set1_ps(-0.0f)));
  const __m256 r = _mm256_div_ps(one, _mm256_add_ps(one, e));
  return _mm256_blendv_ps(_mm256_mul_ps(e, r), r, _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GE_OQ));
}

// Applies f to full vectors, then to the tail through a padded vector.
template <class F>
__attribute__((target("avx2,fma"))) void apply(const float* x, float* y, int64_t n, F f) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, f(_mm256_loadu_ps(x + i)));
  if (i < n) {
    alignas(32) float buf[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t k = i; k < n; ++k) buf[k - i] = x[k];
    _mm256_store_ps(buf, f(_mm256_load_ps(buf)));
    for (int64_t k = i; k < n; ++k) y[k] = buf[k - i];
  }
}

// The 16-lane forms of exp8, tanh8 and sigmoid8: the same operations, lane for lane (exp16 scales
// by 2^n with one vscalefps where exp8 multiplies by 2^(n/2) twice; both round p * 2^n once, so
// the results are the same bits).
#define TESSERA_V16 __attribute__((target("avx512f,avx512dq,avx2,fma"), always_inline)) inline
// fast_simd.h's 16-lane exp (one implementation for every vectorized exp).
TESSERA_V16 __m512 exp16(__m512 x) { return fastv::vexp(fastv::F512{x}).v; }

TESSERA_V16 __m512 tanh16(__m512 x) {
  const __m512 sign = _mm512_set1_ps(-0.0f);
  const __m512 t = _mm512_min_ps(_mm512_set1_ps(9.5f), _mm512_andnot_ps(sign, x));
  const __m512 fn = _mm512_roundscale_ps(_mm512_mul_ps(t, _mm512_set1_ps(2.885390043258667f)), _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  const __m512 h = _mm512_fnmadd_ps(fn, _mm512_set1_ps(0.3465735912322998f), t);
  __m512 q = _mm512_set1_ps(kTanhQ[5]);
  for (int k = 4; k >= 0; --k) q = _mm512_fmadd_ps(q, h, _mm512_set1_ps(kTanhQ[k]));
  const __m512 c = _mm512_mul_ps(_mm512_mul_ps(h, h), q);
  const __m512 s = _mm512_scalef_ps(_mm512_set1_ps(1.0f), fn);
  const __m512 e = _mm512_fmadd_ps(s, _mm512_fmadd_ps(h, _mm512_set1_ps(2.0f), c), _mm512_sub_ps(s, _mm512_set1_ps(1.0f)));
  const __m512 y0 = _mm512_div_ps(e, _mm512_add_ps(e, _mm512_set1_ps(2.0f)));
  const __m512 y1 = _mm512_fmadd_ps(_mm512_fnmadd_ps(e, y0, c), _mm512_set1_ps(0.5f), t);
  const __m512 y = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(fn, _mm512_setzero_ps(), _CMP_EQ_OQ), y0, y1);
  return _mm512_or_ps(y, _mm512_and_ps(x, sign));
}

TESSERA_V16 __m512 sigmoid16(__m512 x) {
  const __m512 one = _mm512_set1_ps(1.0f);
  const __m512 e = exp16(_mm512_or_ps(x, _mm512_set1_ps(-0.0f)));
  const __m512 r = _mm512_div_ps(one, _mm512_add_ps(one, e));
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GE_OQ), _mm512_mul_ps(e, r), r);
}

// Applies f to full vectors, two at a time (independent chains for the out-of-order core), then
// to the tail through masked loads and stores (the masked-off lanes compute on zeros).
template <class F>
__attribute__((target("avx512f,avx512dq,avx2,fma"))) void apply16(const float* x, float* y, int64_t n, F f) {
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512 a = _mm512_loadu_ps(x + i), b = _mm512_loadu_ps(x + i + 16);
    _mm512_storeu_ps(y + i, f(a));
    _mm512_storeu_ps(y + i + 16, f(b));
  }
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, f(_mm512_loadu_ps(x + i)));
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
    _mm512_mask_storeu_ps(y + i, m, f(_mm512_maskz_loadu_ps(m, x + i)));
  }
}

// ---- vchain_f32: prologue ops, the function and the epilogue op on registers, vector by vector ----

TESSERA_V16 __m512 binop16(VOp op, __m512 a, __m512 b) {
  switch (op) {
    case VOp::Add: return _mm512_add_ps(a, b);
    case VOp::Sub: return _mm512_sub_ps(a, b);
    case VOp::Mul: return _mm512_mul_ps(a, b);
    default: return _mm512_div_ps(a, b);
  }
}
template <VFn F>
TESSERA_V16 __m512 chain16(const VChain& ch, const __m512* c, __m512 v, __m512 o) {
  for (int j = 0; j < ch.n_pre; ++j) v = ch.pre[j].const_first ? binop16(ch.pre[j].op, c[j], v) : binop16(ch.pre[j].op, v, c[j]);
  v = F == VFn::Exp ? exp16(v) : F == VFn::Tanh ? tanh16(v) : sigmoid16(v);
  if (ch.post) v = ch.other_first ? binop16(ch.post_op, o, v) : binop16(ch.post_op, v, o);
  return v;
}
// As apply16: two vectors at a time, the tail through masked loads and stores. Without an
// epilogue `other` is x (loaded, unused), so the loop has one shape. `Stream` (y 64-byte aligned)
// stores the full vectors around the caches (vchain_f32; the caller fences).
template <VFn F, bool Stream>
__attribute__((target("avx512f,avx512dq,avx2,fma"))) void vchain16(const VChain& ch, const float* x, const float* other, float* y, int64_t n) {
  __m512 c[VChain::kMaxPre];
  for (int j = 0; j < VChain::kMaxPre; ++j) c[j] = _mm512_set1_ps(j < ch.n_pre ? ch.pre[j].c : 0.0f);
  if (!ch.post) other = x;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512 a = chain16<F>(ch, c, _mm512_loadu_ps(x + i), _mm512_loadu_ps(other + i));
    const __m512 b = chain16<F>(ch, c, _mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(other + i + 16));
    if constexpr (Stream) {
      _mm512_stream_ps(y + i, a);
      _mm512_stream_ps(y + i + 16, b);
    } else {
      _mm512_storeu_ps(y + i, a);
      _mm512_storeu_ps(y + i + 16, b);
    }
  }
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, chain16<F>(ch, c, _mm512_loadu_ps(x + i), _mm512_loadu_ps(other + i)));
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
    _mm512_mask_storeu_ps(y + i, m, chain16<F>(ch, c, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, other + i)));
  }
}
#undef TESSERA_V16

#define TESSERA_V8 __attribute__((target("avx2,fma"), always_inline)) inline
TESSERA_V8 __m256 binop8(VOp op, __m256 a, __m256 b) {
  switch (op) {
    case VOp::Add: return _mm256_add_ps(a, b);
    case VOp::Sub: return _mm256_sub_ps(a, b);
    case VOp::Mul: return _mm256_mul_ps(a, b);
    default: return _mm256_div_ps(a, b);
  }
}
template <VFn F>
TESSERA_V8 __m256 chain8(const VChain& ch, const __m256* c, __m256 v, __m256 o) {
  for (int j = 0; j < ch.n_pre; ++j) v = ch.pre[j].const_first ? binop8(ch.pre[j].op, c[j], v) : binop8(ch.pre[j].op, v, c[j]);
  v = F == VFn::Exp ? exp8(v) : F == VFn::Tanh ? tanh8(v) : sigmoid8(v);
  if (ch.post) v = ch.other_first ? binop8(ch.post_op, o, v) : binop8(ch.post_op, v, o);
  return v;
}
// As apply: full vectors, then the tail through padded vectors (`stream`: as vchain16, y 32-byte
// aligned).
template <VFn F, bool Stream>
__attribute__((target("avx2,fma"))) void vchain8(const VChain& ch, const float* x, const float* other, float* y, int64_t n) {
  __m256 c[VChain::kMaxPre];
  for (int j = 0; j < VChain::kMaxPre; ++j) c[j] = _mm256_set1_ps(j < ch.n_pre ? ch.pre[j].c : 0.0f);
  if (!ch.post) other = x;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = chain8<F>(ch, c, _mm256_loadu_ps(x + i), _mm256_loadu_ps(other + i));
    if constexpr (Stream) _mm256_stream_ps(y + i, v);
    else _mm256_storeu_ps(y + i, v);
  }
  if (i < n) {
    alignas(32) float bx[8] = {0, 0, 0, 0, 0, 0, 0, 0}, bo[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t k = i; k < n; ++k) bx[k - i] = x[k], bo[k - i] = other[k];
    _mm256_store_ps(bx, chain8<F>(ch, c, _mm256_load_ps(bx), _mm256_load_ps(bo)));
    for (int64_t k = i; k < n; ++k) y[k] = bx[k - i];
  }
}
#undef TESSERA_V8

bool wide() { return cpu_isa() == Isa::Avx512; }

}  // namespace

bool vexp_f32(const float* x, float* y, int64_t n) {
  if (wide()) {
    apply16(x, y, n, [](__m512 v) __attribute__((target("avx512f,avx512dq,avx2,fma"))) { return exp16(v); });
    return true;
  }
  if (!has_avx2()) return false;
  apply(x, y, n, [](__m256 v) __attribute__((target("avx2,fma"))) { return exp8(v); });
  return true;
}
bool vtanh_f32(const float* x, float* y, int64_t n) {
  if (wide()) {
    apply16(x, y, n, [](__m512 v) __attribute__((target("avx512f,avx512dq,avx2,fma"))) { return tanh16(v); });
    return true;
  }
  if (!has_avx2()) return false;
  apply(x, y, n, [](__m256 v) __attribute__((target("avx2,fma"))) { return tanh8(v); });
  return true;
}
bool vsigmoid_f32(const float* x, float* y, int64_t n) {
  if (wide()) {
    apply16(x, y, n, [](__m512 v) __attribute__((target("avx512f,avx512dq,avx2,fma"))) { return sigmoid16(v); });
    return true;
  }
  if (!has_avx2()) return false;
  apply(x, y, n, [](__m256 v) __attribute__((target("avx2,fma"))) { return sigmoid8(v); });
  return true;
}

bool vchain_available() { return wide() || has_avx2(); }
void store_fence() { _mm_sfence(); }
namespace {
template <bool Stream>
bool vchain_as(const VChain& ch, const float* x, const float* other, float* y, int64_t n) {
  if (wide()) {
    switch (ch.fn) {
      case VFn::Exp: vchain16<VFn::Exp, Stream>(ch, x, other, y, n); return true;
      case VFn::Tanh: vchain16<VFn::Tanh, Stream>(ch, x, other, y, n); return true;
      default: vchain16<VFn::Sigmoid, Stream>(ch, x, other, y, n); return true;
    }
  }
  if (!has_avx2()) return false;
  switch (ch.fn) {
    case VFn::Exp: vchain8<VFn::Exp, Stream>(ch, x, other, y, n); return true;
    case VFn::Tanh: vchain8<VFn::Tanh, Stream>(ch, x, other, y, n); return true;
    default: vchain8<VFn::Sigmoid, Stream>(ch, x, other, y, n); return true;
  }
}
}  // namespace

bool vchain_f32(const VChain& ch, const float* x, const float* other, float* y, int64_t n, bool stream) {
  // Streaming stores need y aligned to the vector: 64 bytes serves both widths.
  if (stream && (reinterpret_cast<uintptr_t>(y) & 63) == 0) return vchain_as<true>(ch, x, other, y, n);
  return vchain_as<false>(ch, x, other, y, n);
}

#else
bool vexp_f32(const float*, float*, int64_t) { return false; }
bool vtanh_f32(const float*, float*, int64_t) { return false; }
bool vsigmoid_f32(const float*, float*, int64_t) { return false; }
bool vchain_available() { return false; }
bool vchain_f32(const VChain&, const float*, const float*, float*, int64_t, bool) { return false; }
void store_fence() {}
#endif

}  // namespace tessera::cpu
