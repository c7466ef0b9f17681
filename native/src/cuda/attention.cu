// @file Scaled dot-product attention on the gpu (cpu/fast.cc's semantics): attention(q, k, v,
// [mask]) -> out, lse and attentionBwd -> dq, dk, dv, float32/float64. The rep = H / Hkv query
// heads that share a key/value head are consecutive in a contiguous q, so each key/value head is
// one GEMM "group" of R = rep * Lq query rows: scores S = q k^T for a chunk of groups in one
// batched cuBLAS call, a row kernel for the softmax (scale, additive or causal mask, lse), and
// P v. The backward recomputes P from the saved lse and takes dv = P^T g, dq = dS k, dk = dS^T q,
// where dS = scale P (g v^T - g . out); the rep heads of a group add into dk and dv inside the
// GEMM's sum. The causal rule is the cpu's: query i sees keys j < i + Lk - Lq + 1; a row that sees
// no key averages every value (weights 1 / Lk), with lse the lowest finite value and no gradient
// to q or k.
#include <algorithm>
#include <cstring>
#include <limits>
#include <string>

#include "device.cuh"
#include "group_reduce.cuh"

namespace tessera::cuda {
namespace {

// The mask's strides: leading axes [0, nb) index the (batch..., head) block, then query, key.
struct MaskG {
  int nb = 0;
  int64_t shape[kMaxDims] = {}, st[kMaxDims] = {};
  int64_t si = 0, sj = 0;
};

// What every row kernel needs to place row rr of a chunk starting at group g0.
struct RowsG {
  int64_t R = 0, Lq = 0, Lk = 0, rep = 0, g0 = 0, rows = 0;
  bool causal = false;
  const void* mask = nullptr;  // of the compute type, or null
  MaskG m;
};

__device__ __forceinline__ int64_t visible(const RowsG& a, int64_t i) {
  return a.causal ? min(a.Lk, max(int64_t(0), i + a.Lk - a.Lq + 1)) : a.Lk;
}

template <class T>
__device__ __forceinline__ const T* mask_row(const RowsG& a, int64_t blk, int64_t i) {
  if (!a.mask) return nullptr;
  int64_t off = i * a.m.si;
  for (int d = a.m.nb - 1; d >= 0; --d) off += (blk % a.m.shape[d]) * a.m.st[d], blk /= a.m.shape[d];
  return static_cast<const T*>(a.mask) + off;
}


// The chunk's row rr: its global row (blk * Lq + i, also its lse index), block blk and query i.
#define ATTN_ROW(G)                                                                        \
  const int lane = threadIdx.x % (G);                                                      \
  const int64_t per_block = kThreads / (G);                                                \
  for (int64_t rr = blockIdx.x * per_block + threadIdx.x / (G); rr < a.rows; rr += gridDim.x * per_block)

// s [rows, Lk] scores q.k in, probabilities out; lse per row.
template <class T, int G>
__global__ void __launch_bounds__(kThreads) softmax_rows_kernel(T* s, T* lse, RowsG a, T scale) {
  __shared__ T sm[kThreads / 32];
  ATTN_ROW(G) {
    const int64_t row = a.g0 * a.R + rr, blk = row / a.Lq, i = row % a.Lq, vis = visible(a, i);
    T* sr = s + rr * a.Lk;
    if (vis == 0) {  // every key masked: equal weights, as scores all at the lowest value give
      for (int64_t j = lane; j < a.Lk; j += G) sr[j] = T(1) / static_cast<T>(a.Lk);
      if (lane == 0) lse[row] = std::numeric_limits<T>::lowest();
      continue;
    }
    const T* mr = mask_row<T>(a, blk, i);
    T m = -std::numeric_limits<T>::infinity();
    for (int64_t j = lane; j < vis; j += G) {
      T v = sr[j] * scale;
      if (mr) v += mr[j * a.m.sj];
      sr[j] = v;
      m = fmax(m, v);
    }
    m = group_reduce<G>(m, Max{}, sm);
    T sum = 0;
    for (int64_t j = lane; j < vis; j += G) {
      const T e = exp(sr[j] - m);
      sr[j] = e;
      sum += e;
    }
    sum = group_reduce<G>(sum, Add{}, sm);
    const T inv = T(1) / sum;
    for (int64_t j = lane; j < a.Lk; j += G) sr[j] = j < vis ? sr[j] * inv : T(0);
    if (lane == 0) lse[row] = m + log(sum);
  }
}

// p [rows, Lk] scores q.k in, probabilities out; dp [rows, Lk] g.v in, dS out.
template <class T, int G>
__global__ void __launch_bounds__(kThreads) softmax_bwd_rows_kernel(T* p, T* dp, const T* lse, const T* o, const T* g,
                                                                   int64_t Dv, RowsG a, T scale) {
  __shared__ T sm[kThreads / 32];
  ATTN_ROW(G) {
    const int64_t row = a.g0 * a.R + rr, blk = row / a.Lq, i = row % a.Lq, vis = visible(a, i);
    T *pr = p + rr * a.Lk, *dpr = dp + rr * a.Lk;
    if (vis == 0) {  // constant scores: equal weights, no gradient to q or k
      for (int64_t j = lane; j < a.Lk; j += G) pr[j] = T(1) / static_cast<T>(a.Lk), dpr[j] = 0;
      continue;
    }
    T di = 0;  // g_i . out_i
    for (int64_t d = lane; d < Dv; d += G) di += g[row * Dv + d] * o[row * Dv + d];
    di = group_reduce<G>(di, Add{}, sm);
    const T* mr = mask_row<T>(a, blk, i);
    const T l = lse[row];
    for (int64_t j = lane; j < a.Lk; j += G) {
      if (j >= vis) {
        pr[j] = 0, dpr[j] = 0;
        continue;
      }
      T v = pr[j] * scale;
      if (mr) v += mr[j * a.m.sj];
      const T pv = exp(v - l);
      pr[j] = pv;
      dpr[j] = scale * pv * (dpr[j] - di);
    }
  }
}

template <class Launch>
void by_row_length(const Context& c, int64_t rows, int64_t n, Launch launch) {
  if (rows == 0) return;
  if (n <= 1024) launch(std::integral_constant<int, 32>{}, blocks_for(c, rows * 32));
  else launch(std::integral_constant<int, kThreads>{}, static_cast<int>(std::min<int64_t>(rows, int64_t(c.num_sms) * 16)));
}

ArrayDesc temp(const Context& c, DType t, int64_t n) {
  ArrayDesc a;
  a.dtype = t;
  a.shape = {n};
  a.strides = {1};
  a.storage = c.allocator->allocate(std::max<size_t>(a.nbytes(), 1));
  return a;
}

template <class T>
void attention_typed(const Context& c, const Instr& instr, const Inputs& in, const Outputs& outs, Scalars sc) {
  constexpr DType dt = std::is_same_v<T, double> ? DType::F64 : DType::F32;
  const bool fwd = instr.op == Op::Attention, has_mask = instr.ints[0] == 1;
  const char* name = fwd ? "attention" : "attentionBwd";
  const ArrayDesc &q0 = *in[0], &k0 = *in[1], &v0 = *in[2];
  const int nd = q0.ndim();
  const int64_t H = q0.shape[nd - 3], Lq = q0.shape[nd - 2], D = q0.shape[nd - 1];
  const int64_t Hkv = k0.shape[nd - 3], Lk = k0.shape[nd - 2], Dv = v0.shape[nd - 1];
  int64_t lead = 1;
  for (int d = 0; d < nd - 3; ++d) lead *= q0.shape[d];
  const int64_t G = lead * Hkv;  // key/value heads over the whole batch
  const T scale = static_cast<T>(sc.f(0));
  if (fwd) {
    if (outs[0]->size() == 0 && outs[1]->size() == 0) return;
    if (Lk == 0) {
      fill_bytes(c, *outs[0], 0);
      const T ninf = -std::numeric_limits<T>::infinity();
      uint64_t bits = 0;
      std::memcpy(&bits, &ninf, sizeof(T));
      return fill_bytes(c, *outs[1], bits);
    }
  } else if (G == 0 || Lq == 0 || Lk == 0 || H == 0) {
    for (ArrayDesc* o : outs) fill_bytes(c, *o, 0);
    return;
  }
  if (G == 0 || Lq == 0 || H == 0) return;
  const int64_t rep = H / Hkv, R = rep * Lq;
  // The heads' layout ([B, L, H, D] viewed as [B, H, L, D]) made contiguous in one launch; the
  // backward's other operands join that launch.
  const int b = has_mask ? 4 : 3;
  const std::vector<ArrayDesc> ops = fwd ? contiguous_all(c, {&q0, &k0, &v0})
                                   : contiguous_all(c, {&q0, &k0, &v0, in[b], in[b + 1], in[b + 2]});
  const ArrayDesc &q = ops[0], &k = ops[1], &v = ops[2];
  RowsG a;
  a.R = R, a.Lq = Lq, a.Lk = Lk, a.rep = rep, a.causal = instr.ints[0] == 2;
  if (has_mask) {
    const ArrayDesc& m = *in[3];
    if (nd - 2 > kMaxDims) throw std::runtime_error(std::string(name) + " on device gpu: a mask of more than 10 axes (not ported yet)");
    a.mask = m.data<T>();
    a.m.nb = nd - 2;
    for (int d = 0; d < nd - 2; ++d) a.m.shape[d] = m.shape[d], a.m.st[d] = m.strides[d];
    a.m.si = m.strides[nd - 2], a.m.sj = m.strides[nd - 1];
  }
  // Groups per chunk: about 2^26 scores.
  const int64_t chunk = std::max<int64_t>(1, std::min<int64_t>(G, (int64_t(1) << 26) / std::max<int64_t>(1, R * Lk)));
  const ArrayDesc s = temp(c, dt, chunk * R * Lk);
  if (fwd) {
    T* out = outs[0]->data<T>();
    T* lse = outs[1]->data<T>();
    for (int64_t g0 = 0; g0 < G; g0 += chunk) {
      const int64_t n = std::min(chunk, G - g0);
      gemm(c, dt, false, true, R, Lk, D, q.data<T>() + g0 * R * D, D, R * D, k.data<T>() + g0 * Lk * D, D, Lk * D, s.data<T>(),
           Lk, R * Lk, n, false);
      a.g0 = g0, a.rows = n * R;
      by_row_length(c, a.rows, Lk, [&](auto gsz, int blocks) {
        constexpr int GS = decltype(gsz)::value;
        softmax_rows_kernel<T, GS><<<blocks, kThreads, 0, c.stream>>>(s.data<T>(), lse, a, scale);
      });
      check_launch(name);
      gemm(c, dt, false, false, R, Dv, Lk, s.data<T>(), Lk, R * Lk, v.data<T>() + g0 * Lk * Dv, Dv, Lk * Dv, out + g0 * R * Dv, Dv,
           R * Dv, n, false);
    }
    return;
  }
  const ArrayDesc &o = ops[3], &lse = ops[4], &g = ops[5];
  T *dq = outs[0]->data<T>(), *dk = outs[1]->data<T>(), *dv = outs[2]->data<T>();
  const ArrayDesc dp = temp(c, dt, chunk * R * Lk);
  for (int64_t g0 = 0; g0 < G; g0 += chunk) {
    const int64_t n = std::min(chunk, G - g0);
    const T *qg = q.data<T>() + g0 * R * D, *kg = k.data<T>() + g0 * Lk * D, *vg = v.data<T>() + g0 * Lk * Dv;
    const T* gg = g.data<T>() + g0 * R * Dv;
    gemm(c, dt, false, true, R, Lk, D, qg, D, R * D, kg, D, Lk * D, s.data<T>(), Lk, R * Lk, n, false);
    gemm(c, dt, false, true, R, Lk, Dv, gg, Dv, R * Dv, vg, Dv, Lk * Dv, dp.data<T>(), Lk, R * Lk, n, false);
    a.g0 = g0, a.rows = n * R;
    by_row_length(c, a.rows, std::max(Lk, Dv), [&](auto gsz, int blocks) {
      constexpr int GS = decltype(gsz)::value;
      softmax_bwd_rows_kernel<T, GS><<<blocks, kThreads, 0, c.stream>>>(s.data<T>(), dp.data<T>(), lse.data<T>(), o.data<T>(),
                                                                       g.data<T>(), Dv, a, scale);
    });
    check_launch(name);
    gemm(c, dt, true, false, Lk, Dv, R, s.data<T>(), Lk, R * Lk, gg, Dv, R * Dv, dv + g0 * Lk * Dv, Dv, Lk * Dv, n, false);
    gemm(c, dt, false, false, R, D, Lk, dp.data<T>(), Lk, R * Lk, kg, D, Lk * D, dq + g0 * R * D, D, R * D, n, false);
    gemm(c, dt, true, false, Lk, D, R, dp.data<T>(), Lk, R * Lk, qg, D, R * D, dk + g0 * Lk * D, D, Lk * D, n, false);
  }
}

}  // namespace

void attention(const Context& c, const Instr& instr, const Inputs& in, const Outputs& outs, Scalars sc) {
  switch (in.at(0)->dtype) {
    case DType::F32: return attention_typed<float>(c, instr, in, outs, sc);
    case DType::F64: return attention_typed<double>(c, instr, in, outs, sc);
    default: not_ported(instr.op == Op::Attention ? "attention" : "attentionBwd", in.at(0)->dtype);
  }
}

}  // namespace tessera::cuda
