// @file randomBits on the gpu: the same Threefry-2x32 (20 rounds) words as the cpu's random.cc,
// so a key gives identical bits on both devices. Output word i of a key is word (i & 1) of
// threefry(key, counter i >> 1 split low, high); one thread per counter writes both words.
#include "device.cuh"

namespace tessera::cuda {
namespace {

__device__ __forceinline__ uint32_t rotl(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }

__device__ __forceinline__ void threefry2x32(uint32_t k0, uint32_t k1, uint32_t& x0, uint32_t& x1) {
  const int rot[8] = {13, 15, 26, 6, 17, 29, 16, 24};
  const uint32_t ks[3] = {k0, k1, 0x1BD11BDAu ^ k0 ^ k1};
  x0 += ks[0];
  x1 += ks[1];
#pragma unroll
  for (int block = 0; block < 5; ++block) {  // 5 blocks of 4 rounds, a key injection after each
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      x0 += x1;
      x1 = rotl(x1, rot[(block % 2) * 4 + r]);
      x1 ^= x0;
    }
    x0 += ks[(block + 1) % 3];
    x1 += ks[(block + 2) % 3] + static_cast<uint32_t>(block + 1);
  }
}

// Work item w is counter w % pairs of key w / pairs; the key's two words are at koff and koff + kstep.
__global__ void __launch_bounds__(kThreads) random_bits_kernel(const uint32_t* key, uint32_t* out, int64_t num_keys,
                                                               int64_t per_key, Geometry kg, int64_t kstep) {
  const int64_t pairs = (per_key + 1) / 2;
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t w = tid; w < num_keys * pairs; w += step) {
    const int64_t k = w / pairs, p = w % pairs;
    int64_t off[1];
    locate<1>(kg, k, false, off);
    uint32_t x0 = static_cast<uint32_t>(p), x1 = static_cast<uint32_t>(static_cast<uint64_t>(p) >> 32);
    threefry2x32(key[off[0]], key[off[0] + kstep], x0, x1);
    uint32_t* row = out + k * per_key;
    row[2 * p] = x0;
    if (2 * p + 1 < per_key) row[2 * p + 1] = x1;
  }
}

}  // namespace

void random_bits(const Context& c, const ArrayDesc& key, ArrayDesc& out) {
  const int kb = key.ndim() - 1;  // the key's batch axes
  int64_t num_keys = 1;
  for (int d = 0; d < kb; ++d) num_keys *= key.shape[d];
  if (num_keys == 0 || out.size() == 0) return;
  const int64_t per_key = out.size() / num_keys;
  const Shape batch(key.shape.begin(), key.shape.begin() + kb), bst(key.strides.begin(), key.strides.begin() + kb);
  const Shape* st[1] = {&bst};
  const Geometry kg = collapse(batch, st, 1, "randomBits");
  random_bits_kernel<<<blocks_for(c, num_keys * ((per_key + 1) / 2)), kThreads, 0, c.stream>>>(
      key.data<uint32_t>(), out.data<uint32_t>(), num_keys, per_key, kg, key.strides[kb]);
  check_launch("randomBits");
}

}  // namespace tessera::cuda
