// @file The fused elementwise kernel (layout in fused.h). The output is cut into tiles of kTile
// elements; per tile each step runs over whole tiles held in per-thread scratch (L1-resident),
// so memory sees each input read once and each output written once however long the chain.
// Each step applies the same scalar functor as the unfused kernel (elementwise_ops.h), so a
// fused chain gives the results the separate instructions give. float32 exp, tanh and sigmoid
// take the constant-operand ops before them and their reader after them into their own pass
// (vchain_f32, vmath.h), so tanh(x * a + b) * exp(x) is two passes over a tile rather than five.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "elementwise_ops.h"
#include "fused.h"
#include "isa.h"
#include "kernels.h"
#include "threads.h"
#include "vmath.h"

namespace tessera::cpu {
namespace {

constexpr int64_t kTile = 1024;

// Fetches the line at p for writing (without it a store waits for its line to be read in first).
// __builtin_prefetch(p, 1) gives a plain read prefetch unless compiled for PREFETCHW, which every
// x86-64 CPU of the last decade has (older ones run it as a no-op).
inline void prefetch_write(const void* p) {
#if defined(__x86_64__)
  asm volatile("prefetchw %0" : : "m"(*static_cast<const char*>(p)));
#else
  __builtin_prefetch(p, 1);
#endif
}

namespace fused_generic {
#define TILE_TARGET
#include "fused_tiles.inc"
#undef TILE_TARGET
}  // namespace fused_generic

// The tile function of `op` for the CPU's widest instruction set (`one`: fused.h).
template <class T>
TileFn find_tile(Op op, int64_t in, int64_t out, int one = kOneNone) {
  constexpr bool f32 = std::is_same_v<T, float>;
#if defined(__x86_64__)
  if (cpu_isa() == Isa::Avx512) return f32 ? fused_avx512::find_tile_f32(op, in, out, one) : fused_avx512::find_tile_f64(op, in, out, one);
  if (cpu_isa() == Isa::Avx2) return f32 ? fused_avx2::find_tile_f32(op, in, out, one) : fused_avx2::find_tile_f64(op, in, out, one);
#endif
  return f32 ? fused_generic::find_tile_f32(op, in, out, one) : fused_generic::find_tile_f64(op, in, out, one);
}

struct Step {
  TileFn fn;
  int64_t type;
  int32_t a, b, c;
  int32_t scratch;  // the scratch tile this step's result lives in
  int32_t chain = -1;  // folded (below): runs chains[chain] on operands a (and b) instead of fn
  bool skip = false;   // folded into a later step: never run, its register never written
};

// Where each input's tile comes from: straight from memory (contiguous over S), a constant
// (broadcast of one element, filled once per thread), or gathered through its strides.
enum class Source { Direct, Constant, Gather };
struct InputPlan {
  Source source;
  const uint8_t* base;
  size_t itemsize;
  Shape strides;  // broadcast to S, in elements
};

template <class T>
void run_fused(const Instr& instr, const Inputs& in, const Outputs& outs, Scalars sc) {
  const std::vector<int64_t>& ints = instr.ints;
  const int n_in = static_cast<int>(in.size());
  const int64_t n_steps = ints[1];
  const Shape& shape = instr.shape;
  const int nd = static_cast<int>(shape.size());
  int64_t total = 1;
  for (int64_t d : shape) total *= d;
  if (total == 0) return;

  // Registers: kinds, and for steps their tile function and scratch tile (reused after the
  // register's last read: a linear scan over the chain).
  const int n_regs = n_in + static_cast<int>(n_steps);
  std::vector<int64_t> kind(n_regs);
  for (int i = 0; i < n_in; ++i) kind[i] = in[i]->dtype == DType::Bool ? kRegBool : kRegNumber;
  std::vector<Step> steps(n_steps);
  for (int64_t k = 0; k < n_steps; ++k) {
    const int64_t* s = &ints[2 + 5 * k];
    Step& st = steps[k];
    st.type = s[1];
    st.a = static_cast<int32_t>(s[2]), st.b = static_cast<int32_t>(s[3]), st.c = static_cast<int32_t>(s[4]);
    kind[n_in + k] = st.type;
    if (s[0] == kFusedConst) {
      st.fn = nullptr;
    } else {
      const Op op = static_cast<Op>(s[0]);
      const int32_t first = op == Op::Where ? st.b : st.a;  // where's value operands set its input kind
      st.fn = find_tile<T>(op, kind[first], st.type);
      if (!st.fn) throw std::runtime_error("fused step " + std::to_string(k) + ": " + op_name(int32_t(op)) + " is not defined there");
    }
  }
  const int64_t n_out = ints[2 + 5 * n_steps];
  std::vector<int32_t> out_reg(n_out);
  for (int64_t j = 0; j < n_out; ++j) out_reg[j] = static_cast<int32_t>(ints[3 + 5 * n_steps + j]);
  std::vector<InputPlan> plan(n_in);
  for (int i = 0; i < n_in; ++i) {
    const ArrayDesc& x = *in[i];
    InputPlan& p = plan[i];
    p.itemsize = itemsize(x.dtype);
    p.base = x.bytes();
    p.strides.assign(nd, 0);
    const int lead = nd - x.ndim();
    bool all_zero = true;
    for (int d = 0; d < x.ndim(); ++d) {
      if (x.shape[d] != 1) p.strides[lead + d] = x.strides[d];
      all_zero &= p.strides[lead + d] == 0;
    }
    bool contiguous = true;
    int64_t expect = 1;
    for (int d = nd - 1; d >= 0; --d) {
      if (shape[d] != 1 && p.strides[d] != expect) contiguous = false;
      expect *= shape[d];
    }
    p.source = all_zero ? Source::Constant : (contiguous ? Source::Direct : Source::Gather);
  }

  // Binary steps with a constant operand (a broadcast input or a constant step) take the form
  // that reads it once.
  auto constant = [&](int32_t r) { return r < n_in ? plan[r].source == Source::Constant : !steps[r - n_in].fn; };
  for (int64_t k = 0; k < n_steps; ++k) {
    Step& st = steps[k];
    if (!st.fn || st.b < 0 || st.c >= 0) continue;  // binary steps only
    const int one = constant(st.b) ? kOneB : constant(st.a) ? kOneA : kOneNone;
    if (one == kOneNone) continue;
    if (TileFn f = find_tile<T>(static_cast<Op>(ints[2 + 5 * k]), kind[st.a], st.type, one)) st.fn = f;
  }

  // float32 exp, tanh and sigmoid take in the binary steps around them that only they read, and
  // run them on registers (vchain_f32) rather than as passes of their own over tiles: before the
  // function, ops with a constant (x * a + b), after it, one op with another register (its single
  // reader). A step folded into a later one moves there (its operands then live until it runs).
  std::vector<VChain> chains;
  if constexpr (std::is_same_v<T, float>) {
    if (vchain_available()) {
      std::vector<int> reads(n_regs, 0);
      for (const Step& st : steps)
        if (st.fn)
          for (int32_t r : {st.a, st.b, st.c})
            if (r >= 0) ++reads[r];
      for (int32_t r : out_reg) reads[r] += 2;  // an output is stored: never folded away
      auto op_of = [&](int64_t k) { return static_cast<Op>(ints[2 + 5 * k]); };
      // The VOp of step k when it is a binary op on numbers still free to fold.
      auto binary = [&](int64_t k, VOp* v) {
        const Step& st = steps[k];
        if (!st.fn || st.skip || st.chain >= 0 || st.b < 0 || st.c >= 0) return false;
        if (st.type != kRegNumber || kind[st.a] != kRegNumber || kind[st.b] != kRegNumber) return false;
        switch (op_of(k)) {
          case Op::Add: *v = VOp::Add; return true;
          case Op::Sub: *v = VOp::Sub; return true;
          case Op::Mul: *v = VOp::Mul; return true;
          case Op::Div: *v = VOp::Div; return true;
          default: return false;
        }
      };
      auto value = [&](int32_t r, float* v) {  // a constant register's value
        if (r >= n_in) return *v = static_cast<float>(sc.f(steps[r - n_in].a)), true;
        if (plan[r].itemsize != sizeof(float)) return false;
        std::memcpy(v, plan[r].base, sizeof(float));
        return true;
      };
      for (int64_t k = 0; k < n_steps; ++k) {
        Step& st = steps[k];
        if (!st.fn || st.skip || st.b >= 0 || st.type != kRegNumber || kind[st.a] != kRegNumber) continue;
        VChain ch;
        const Op op = op_of(k);
        if (op == Op::Exp) ch.fn = VFn::Exp;
        else if (op == Op::Tanh) ch.fn = VFn::Tanh;
        else if (op == Op::Sigmoid) ch.fn = VFn::Sigmoid;
        else continue;
        // Before: walk back through single-reader binary steps with one constant operand.
        int32_t root = st.a;
        VPre back[VChain::kMaxPre];
        std::vector<int64_t> taken;
        while (ch.n_pre < VChain::kMaxPre && root >= n_in && reads[root] == 1) {
          const int64_t j = root - n_in;
          const Step& sj = steps[j];
          VOp v;
          if (!binary(j, &v)) break;
          const bool ca = constant(sj.a), cb = constant(sj.b);
          if (ca == cb) break;
          VPre pre{v, ca, 0.0f};
          if (!value(ca ? sj.a : sj.b, &pre.c)) break;
          back[ch.n_pre++] = pre;
          taken.push_back(j);
          root = ca ? sj.b : sj.a;
        }
        for (int i = 0; i < ch.n_pre; ++i) ch.pre[i] = back[ch.n_pre - 1 - i];
        // After: the single reader, when it is a binary step taking another register.
        const int32_t self = static_cast<int32_t>(n_in + k);
        int64_t m = -1;
        if (reads[self] == 1)
          for (int64_t q = k + 1; q < n_steps && m < 0; ++q)
            if (steps[q].fn && !steps[q].skip && (steps[q].a == self || steps[q].b == self)) m = q;
        VOp post;
        if (m >= 0 && binary(m, &post)) {
          Step& sm = steps[m];
          ch.post = true;
          ch.post_op = post;
          ch.other_first = sm.b == self;
          sm.b = ch.other_first ? sm.a : sm.b;
          sm.a = root;
          sm.chain = static_cast<int32_t>(chains.size());
          st.skip = true;
        } else if (ch.n_pre > 0) {
          st.a = root;
          st.chain = static_cast<int32_t>(chains.size());
        } else {
          continue;
        }
        for (int64_t j : taken) steps[j].skip = true;
        chains.push_back(ch);
      }
    }
  }

  // Constants are filled once per thread, so each keeps a tile of its own for the whole run;
  // the other steps share the remaining tiles, one freed after its register's last read.
  std::vector<int64_t> last_read(n_regs, -1);
  for (int64_t k = 0; k < n_steps; ++k) {
    const Step& st = steps[k];
    if (!st.fn || st.skip) continue;
    for (int32_t r : {st.a, st.b, st.c})
      if (r >= 0) last_read[r] = k;
  }
  for (int32_t r : out_reg) last_read[r] = n_steps;  // read when the tile is stored
  int n_scratch = 0;
  for (Step& st : steps)
    if (!st.fn) st.scratch = n_scratch++;
  {
    std::vector<int32_t> free_list;
    std::vector<std::vector<int32_t>> dying(n_steps + 1);
    for (int64_t k = 0; k < n_steps; ++k) {
      Step& st = steps[k];
      // Tiles freed by step k - 1's reads: a step never writes a tile one of its operands is in.
      for (int32_t r : dying[k]) free_list.push_back(r);
      if (!st.fn || st.skip) continue;
      if (free_list.empty()) {
        st.scratch = n_scratch++;
      } else {
        st.scratch = free_list.back();
        free_list.pop_back();
      }
      const int64_t last = last_read[n_in + k];
      if (last < 0) free_list.push_back(st.scratch);  // never read: reusable at once
      else if (last < n_steps) dying[last + 1].push_back(st.scratch);
    }
  }

  // A step whose register is an output writes straight into the output, unless that output took
  // over an input's buffer (donation): then the tile is stored only after every step has read it.
  std::vector<int64_t> direct(n_steps, -1);
  for (int64_t j = 0; j < n_out; ++j) {
    bool aliased = false;
    for (const ArrayDesc* x : in) aliased |= x->storage == outs[j]->storage;
    const int64_t k = out_reg[j] - n_in;
    if (!aliased && steps[k].fn && direct[k] < 0) direct[k] = j;
  }
  auto out_at = [&](int64_t j, int64_t start) {
    const ArrayDesc& o = *outs[j];
    return o.bytes() + start * itemsize(o.dtype);
  };

  // The memory a tile streams through: its direct inputs, and the outputs steps write straight to.
  // The next tile's lines are prefetched a share before each step of this one, so memory works
  // while the steps compute (else the first step waits for its reads and the last for its stores),
  // in pieces small enough not to stall on the core's outstanding misses.
  struct Stream {
    const uint8_t* base;
    int64_t itemsize;
    bool write;
  };
  std::vector<Stream> streams;
  for (int i = 0; i < n_in; ++i)
    if (plan[i].source == Source::Direct) streams.push_back({plan[i].base, static_cast<int64_t>(plan[i].itemsize), false});
  for (int64_t k = 0; k < n_steps; ++k)
    if (direct[k] >= 0) streams.push_back({outs[direct[k]]->bytes(), static_cast<int64_t>(itemsize(outs[direct[k]]->dtype)), true});
  // Not where steps were folded (exp, tanh or sigmoid with its ops): such a tile computes long
  // enough for the hardware prefetchers to keep up, and with its few steps each share of the
  // software prefetches is a burst that stalls on the outstanding misses (the chain tanh(x * a + b)
  // * exp(x) over 16M floats ran about 10% slower with them).
  if (!chains.empty()) streams.clear();
  int64_t n_lines = 0, n_fn = 0;
  for (const Stream& st : streams) n_lines += (kTile * st.itemsize + 63) / 64;
  for (const Step& st : steps) n_fn += st.fn && !st.skip;

  // A chain's outputs of 32 MiB and more are stored around the caches (vchain_f32's `stream`):
  // nothing reads that much back from cache soon, and the stores then skip reading each line
  // first. tanh(x * a + b) * exp(x) over 16M floats ran 1.15-1.35x faster so on a Xeon (and
  // the same within noise from 256K to 4M floats, so smaller outputs keep their cached stores).
  const bool stream_out = int64_t(total * sizeof(T)) >= (int64_t(32) << 20);
  const int64_t n_tiles = (total + kTile - 1) / kTile;
  const size_t tile_bytes = kTile * sizeof(T);
  // Small chains stay on one thread: waking another costs more than a few tiles of work.
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 16) / kTile / std::max<int64_t>(1, n_steps / 4));
  // Tiles go out in blocks from a shared counter rather than in one even split: on a shared or
  // virtual machine one thread can fall behind, and the others then take over its blocks. Blocks
  // of up to 256 tiles (1 MiB of float32 per stream; smaller blocks measured slower), at least
  // four per thread.
  const int64_t block_tiles = std::clamp<int64_t>(n_tiles / (4 * num_threads()), 1, 256);
  const int64_t n_blocks = (n_tiles + block_tiles - 1) / block_tiles;
  const int64_t n_workers = n_tiles < grain ? 1 : std::min<int64_t>(num_threads(), n_blocks);
  std::atomic<int64_t> next_block{0};
  parallel_for(n_workers, 1, [&](int64_t, int64_t) {
    std::vector<uint8_t> raw((n_scratch + n_in) * tile_bytes + 64);
    uint8_t* area = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(raw.data()) + 63) & ~uintptr_t(63));
    auto scratch = [&](int s) { return area + s * tile_bytes; };
    auto in_tile = [&](int i) { return area + (n_scratch + i) * tile_bytes; };
    std::vector<const void*> reg(n_regs, nullptr);
    // Constants: broadcast inputs and constant steps, filled once.
    for (int i = 0; i < n_in; ++i) {
      if (plan[i].source != Source::Constant) continue;
      uint8_t* t = in_tile(i);
      for (int64_t e = 0; e < kTile; ++e) std::memcpy(t + e * plan[i].itemsize, plan[i].base, plan[i].itemsize);
      reg[i] = t;
    }
    for (int64_t k = 0; k < n_steps; ++k) {
      const Step& st = steps[k];
      if (st.fn) continue;
      uint8_t* t = scratch(st.scratch);
      if (st.type == kRegBool) {
        const bool v = sc.f(st.a) != 0;
        std::memset(t, v ? 1 : 0, kTile);
      } else {
        const T v = static_cast<T>(sc.f(st.a));
        std::fill(reinterpret_cast<T*>(t), reinterpret_cast<T*>(t) + kTile, v);
      }
      reg[n_in + k] = t;
    }
    // Lines [from, to) of `tile`'s streams, counted through the streams in order.
    auto prefetch = [&](int64_t tile, int64_t from, int64_t to) {
      const int64_t start = tile * kTile, n = std::min(kTile, total - start);
      int64_t line0 = 0;
      for (const Stream& st : streams) {
        const uint8_t* p = st.base + start * st.itemsize;
        const int64_t lines = (n * st.itemsize + 63) / 64;
        for (int64_t l = std::max(from, line0), e = std::min(to, line0 + lines); l < e; ++l) {
          if (st.write) prefetch_write(p + (l - line0) * 64);
          else __builtin_prefetch(p + (l - line0) * 64, 0);
        }
        line0 += lines;
      }
    };
    Shape idx(nd);
    // A block is claimed one ahead, so that a block's last tile can prefetch the next one's first.
    int64_t block = next_block.fetch_add(1);
    if (block < n_blocks) prefetch(block * block_tiles, 0, n_lines);
    while (block < n_blocks) {
      const int64_t following = next_block.fetch_add(1);
      const int64_t t1 = std::min(n_tiles, (block + 1) * block_tiles);
      for (int64_t tile = block * block_tiles; tile < t1; ++tile) {
        const int64_t after = tile + 1 < t1 ? tile + 1 : following < n_blocks ? following * block_tiles : -1;
        const int64_t start = tile * kTile, n = std::min(kTile, total - start);
        for (int i = 0; i < n_in; ++i) {
          const InputPlan& p = plan[i];
          if (p.source == Source::Direct) {
            reg[i] = p.base + start * p.itemsize;
          } else if (p.source == Source::Gather) {
            // Unravel `start`, then walk the odometer (innermost axis in a tight loop).
            int64_t rem = start, off = 0;
            for (int d = nd - 1; d >= 0; --d) {
              idx[d] = rem % shape[d];
              rem /= shape[d];
              off += idx[d] * p.strides[d];
            }
            uint8_t* t = in_tile(i);
            const int64_t inner = shape[nd - 1], st_in = p.strides[nd - 1];
            for (int64_t e = 0; e < n;) {
              const int64_t run = std::min(n - e, inner - idx[nd - 1]);
              if (p.itemsize == sizeof(T)) {
                const T* src = reinterpret_cast<const T*>(p.base) + off;
                T* dst = reinterpret_cast<T*>(t) + e;
                for (int64_t q = 0; q < run; ++q) dst[q] = src[q * st_in];
              } else {
                for (int64_t q = 0; q < run; ++q) t[e + q] = p.base[off + q * st_in];
              }
              e += run;
              off += run * st_in;
              idx[nd - 1] += run;
              for (int d = nd - 1; d > 0 && idx[d] == shape[d]; --d) {
                off -= shape[d] * p.strides[d];
                idx[d] = 0;
                ++idx[d - 1];
                off += p.strides[d - 1];
              }
            }
            reg[i] = t;
          }
        }
        for (int64_t k = 0, q = 0; k < n_steps; ++k) {
          const Step& st = steps[k];
          if (!st.fn || st.skip) continue;
          if (after >= 0) {
            prefetch(after, q * n_lines / n_fn, (q + 1) * n_lines / n_fn);
            ++q;
          }
          void* o = direct[k] >= 0 ? out_at(direct[k], start) : scratch(st.scratch);
          if (st.chain >= 0) {
            vchain_f32(chains[st.chain], static_cast<const float*>(reg[st.a]), st.b >= 0 ? static_cast<const float*>(reg[st.b]) : nullptr,
                       static_cast<float*>(o), n, stream_out && direct[k] >= 0);
          } else {
            st.fn(reg[st.a], st.b >= 0 ? reg[st.b] : nullptr, st.c >= 0 ? reg[st.c] : nullptr, o, n);
          }
          reg[n_in + k] = o;
        }
        for (int64_t j = 0; j < n_out; ++j) {
          const uint8_t* src = static_cast<const uint8_t*>(reg[out_reg[j]]);
          uint8_t* dst = out_at(j, start);
          if (src != dst) std::memcpy(dst, src, n * itemsize(outs[j]->dtype));
        }
      }
      block = following;
    }
    if (stream_out) store_fence();  // the streamed stores land before parallel_for reports done
  });
}

}  // namespace

void fused(const Instr& instr, const Inputs& in, const Outputs& outs, Scalars sc) {
  switch (static_cast<DType>(instr.ints.at(0))) {
    case DType::F32: return run_fused<float>(instr, in, outs, sc);
    case DType::F64: return run_fused<double>(instr, in, outs, sc);
    default: throw std::runtime_error("fused chains compute in float32 or float64");
  }
}

}  // namespace tessera::cpu
