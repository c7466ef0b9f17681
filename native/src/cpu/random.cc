// @file randomBits: counter-based random words from Threefry-2x32 with 20 rounds (Salmon et al.,
// "Parallel random numbers: as easy as 1, 2, 3", 2011; the generator JAX and MLX use).
// The key input is [K..., 2] uint32 (one key per leading index); the output is [K..., S...]
// uint32. For each key, output word i is word (i & 1) of threefry(key, counter (i >> 1) as a
// 64-bit integer split low, high). A word depends only on its key and index, so the result is
// the same whatever the thread count or the chunking.
#include <cstdint>

#include "kernels.h"
#include "threads.h"

namespace tessera::cpu {
namespace {

inline uint32_t rotl(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }

// Threefry-2x32, 20 rounds: x = counter, k = key; unsigned arithmetic wraps (no UB).
inline void threefry2x32(uint32_t k0, uint32_t k1, uint32_t& x0, uint32_t& x1) {
  static constexpr int kRot[8] = {13, 15, 26, 6, 17, 29, 16, 24};
  const uint32_t ks[3] = {k0, k1, 0x1BD11BDAu ^ k0 ^ k1};
  x0 += ks[0];
  x1 += ks[1];
  for (int block = 0; block < 5; ++block) {  // 5 blocks of 4 rounds, a key injection after each
    for (int r = 0; r < 4; ++r) {
      x0 += x1;
      x1 = rotl(x1, kRot[(block % 2) * 4 + r]);
      x1 ^= x0;
    }
    x0 += ks[(block + 1) % 3];
    x1 += ks[(block + 2) % 3] + static_cast<uint32_t>(block + 1);
  }
}

}  // namespace

void random_bits(const Instr& instr, const Inputs& in, ArrayDesc& out) {
  const ArrayDesc& key = *in.at(0);
  const int kb = key.ndim() - 1;  // the key's batch axes
  int64_t num_keys = 1;
  for (int d = 0; d < kb; ++d) num_keys *= key.shape[d];
  if (num_keys == 0 || out.size() == 0) return;
  const int64_t per_key = out.size() / num_keys, pairs = (per_key + 1) / 2;
  const uint32_t* kp = key.data<uint32_t>();
  const int64_t kstride = key.strides[kb];
  uint32_t* op = out.data<uint32_t>();
  parallel_for(num_keys * pairs, 4096, [&](int64_t begin, int64_t end) {
    int64_t k = begin / pairs, p = begin % pairs;
    for (int64_t idx = begin; idx < end; k++, p = 0) {
      int64_t off = 0, rem = k;  // the key's offset: unravel k over its batch axes
      for (int d = kb - 1; d >= 0; --d) {
        off += (rem % key.shape[d]) * key.strides[d];
        rem /= key.shape[d];
      }
      const uint32_t k0 = kp[off], k1 = kp[off + kstride];
      uint32_t* row = op + k * per_key;
      for (; p < pairs && idx < end; ++p, ++idx) {
        uint32_t x0 = static_cast<uint32_t>(p), x1 = static_cast<uint32_t>(static_cast<uint64_t>(p) >> 32);
        threefry2x32(k0, k1, x0, x1);
        row[2 * p] = x0;
        if (2 * p + 1 < per_key) row[2 * p + 1] = x1;
      }
    }
  });
}

}  // namespace tessera::cpu
