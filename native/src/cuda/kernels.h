// @file The CUDA backend's internal interface: what backend.cc (plain C++ on the CUDA runtime API)
// calls in the kernel families (*.cu, compiled by nvcc), and the strided geometry they share.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "../backend.h"

namespace tessera::cuda {

// While a body is recorded as a CUDA graph (graph.cc), the scalar constants of fills and fused
// chains are read from device memory instead of kernel arguments: each launch of the recording
// first uploads them, converted from that run's scalar words, so one recording serves every
// learning rate, step count and random key.
struct Patches {
  enum class Kind : uint8_t { FullBits, F32, F64, Bool };
  struct Entry {
    uint32_t offset;
    int32_t word;  // index in the run's scalar words
    Kind kind;
    DType dtype;   // FullBits: the fill's dtype
  };
  static constexpr size_t kCapacity = size_t(64) << 10;
  const double* base = nullptr;  // the recorded run's scalar words
  uint8_t* device = nullptr;     // kCapacity bytes
  size_t used = 0;
  std::vector<Entry> entries;
  // 8 bytes of device memory holding *word read as `kind`; consecutive calls are adjacent.
  const void* add(const double* word, Kind kind, DType dtype = DType::U64);
  // The bytes of every entry for a run's scalar words.
  void fill(const double* words, uint8_t* host) const;

  // Index checks (gather, scatter) cannot wait for the device inside a recording. Each gets a
  // record of its own in `check_device`, zeroed once when recording starts and never inside the
  // graph: a bad index sets it and it stays set over later replays, so the host need not read it
  // after every launch (which would wait for each step to finish before queueing the next). The
  // backend's next synchronization (every read of data waits for one) copies the records back and
  // reports the first set one.
  struct Check {
    int64_t n = 0;             // the axis size, for the message
    const char* op = nullptr;
  };
  std::vector<Check> checks;
  unsigned long long* check_device = nullptr;  // kMaxChecks records of 2 words
  unsigned long long* check_host = nullptr;    // their copy in pinned memory
  static constexpr size_t kMaxChecks = 256;
  // A new record's slot (its words are zero); checks[slot] gets its op and axis size once known.
  int new_check();
  unsigned long long* record(int slot) const { return check_device + 2 * slot; }
};
// The message of a set bad-index record (what the plain check throws).
std::string bad_index_message(const unsigned long long* record, int64_t n);
// graph.cc: reports bad indices of replays launched since the last call (throws the first).
void settle_replays();

class Lanes;
// What every launch needs: the stream to queue on (the backend's one stream, or while recording
// the lane the instruction was given), its allocator (for temporaries, which are released in
// stream order) and the switches read when the backend starts.
struct Context {
  cudaStream_t stream = nullptr;
  int num_sms = 1;
  Allocator* allocator = nullptr;
  bool allow_tf32 = false;  // TESSERA_ALLOW_TF32=1: float32 matmul may use TF32 tensor cores
  Patches* patches = nullptr;  // set while recording a graph
  Lanes* lanes = nullptr;      // the backend's (lanes.h): spreads a recording over streams
};

inline void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string(what) + " failed on device gpu: " + cudaGetErrorString(e));
}
// After a launch: a bad configuration shows up here, a fault in the kernel at the next sync.
inline void check_launch(const char* what) { check(cudaGetLastError(), what); }

constexpr int kThreads = 256;  // threads per block of every kernel

// An elementwise iteration space after dropping size-1 axes and merging the axes every operand
// walks contiguously; operand 0 is the output. Passed to kernels by value.
constexpr int kMaxDims = 8;
constexpr int kMaxOperands = 4;
struct Geometry {
  int32_t nd = 0;
  int64_t shape[kMaxDims] = {};
  int64_t st[kMaxOperands][kMaxDims] = {};
};
// Throws (naming `op`) if more than kMaxDims axes remain after merging.
Geometry collapse(const Shape& shape, const Shape* const* strides, int num_operands, const char* op);
// Blocks of 256 threads for n work items, capped at a few waves (the kernels loop grid-stride).
int blocks_for(const Context& c, int64_t n);

// elementwise.cu: unary, predicate, binary, compare and where (any strides; out is contiguous).
void elementwise(const Context& c, const Instr& instr, const Inputs& in, ArrayDesc& out);
// copy.cu: same-shape strided copy by item size, a fill of out with one item's bytes, and casts.
void copy_strided(const Context& c, const ArrayDesc& src, const ArrayDesc& dst);
void fill_bytes(const Context& c, ArrayDesc& out, uint64_t item_bits);
// The same with the item's bytes read from device memory when the kernel runs (graph patches).
void fill_device(const Context& c, ArrayDesc& out, const void* item_bits);
// backend.cc: the bytes of a fill of dtype t with the value of word 0 of sc (the cpu's conversion).
uint64_t full_bits(DType t, Scalars sc);
void cast(const Context& c, const ArrayDesc& x, ArrayDesc& out);
// reduce.cu: reduceSum/Prod/Max/Min over instr.ints (cpu semantics: double accumulation for
// floats), and argmax/argmin along ints[0] (uint32 indices).
void reduce(const Context& c, const Instr& instr, const ArrayDesc& x, ArrayDesc& out);
// matmul.cc: float types through cuBLASLt, else cuBLAS (both opened at run time); every other
// dtype through matmul_generic.cu (the cpu's plain loop: integers wrap).
// With `addend` (out's shape) and/or `bias` ([N]): out = a @ b + addend + bias, in the product's
// epilogue (cuBLASLt), else by adds after it.
void matmul(const Context& c, const ArrayDesc& a, const ArrayDesc& b, ArrayDesc& out, const ArrayDesc* addend = nullptr,
            const ArrayDesc* bias = nullptr);
void matmul_generic(const Context& c, const ArrayDesc& a, const ArrayDesc& b, ArrayDesc& out);
// matmul.cc: row-major batched C = op(A) @ op(B) ([M, K] @ [K, N]) on float32/float64 through
// cuBLAS; op transposes when ta / tb (A then stored [K, M], B [N, K]); ld* are row strides, s* batch
// strides (elements); accumulate adds to C instead of overwriting it.
void gemm(const Context& c, DType t, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const void* A, int64_t lda, int64_t sa,
          const void* B, int64_t ldb, int64_t sb, void* C, int64_t ldc, int64_t sc, int64_t batch, bool accumulate);
// matmul.cc: the cuBLAS workspace of `stream` (one per stream: lanes may run products side by side).
void* workspace_for(cudaStream_t stream, size_t& bytes);
// matmul_lt.cc: a product as cuBLAS sees it (column-major, see matmul.cc; ops and leading
// dimensions of our A and B), with an optional addend (D's layout) and bias over N. False when
// cuBLASLt is missing or offers no algorithm for it (nothing was queued then).
struct LtProduct {
  DType dtype;
  int op_a, op_b;
  int64_t m, n, k, batch;
  const void* a;
  int64_t lda, sa;
  const void* b;
  int64_t ldb, sb;
  const void* c;     // nullptr: none
  void* d;
  const void* bias;  // nullptr: none
};
bool lt_matmul(const Context& c, const LtProduct& q);
// Named counts of matmul_lt.cc's graph replays (backend counters, which tests read).
std::vector<std::pair<std::string, double>> lt_counters();
// copy.cu: a itself when row-contiguous, else a contiguous copy (its storage is released in
// stream order when the returned descriptor dies, so kernels queued before that may read it).
ArrayDesc contiguous(const Context& c, const ArrayDesc& a);
// contiguous() of each array (at most 6), with the copies that are needed made in one launch.
std::vector<ArrayDesc> contiguous_all(const Context& c, std::initializer_list<const ArrayDesc*> in);
// random.cu: randomBits(key [K..., 2] uint32) -> [K..., S...] uint32, the cpu's Threefry words.
void random_bits(const Context& c, const ArrayDesc& key, ArrayDesc& out);
// indexing.cu: gather(x, idx) along ints[0] and scatter(base, idx, updates) along ints[0] with
// mode ints[1] (cpu/indexing.cc); an index outside [-n, n) throws the cpu's error.
void gather(const Context& c, const Instr& instr, const ArrayDesc& x, const ArrayDesc& idx, ArrayDesc& out);
void scatter(const Context& c, const Instr& instr, const Inputs& in, ArrayDesc& out);
// scan.cu: scan along ints[1] combining with ints[0] (sum, prod, max, min, logaddexp); ints[2]
// reverse, ints[3] inclusive.
void scan(const Context& c, const Instr& instr, const ArrayDesc& x, ArrayDesc& out);
// sort.cu: sort(x) -> values, uint32 indices along ints[0] (stable, NaN last); ints [axis, kth,
// sort_tail] select as the cpu does.
void sort(const Context& c, const Instr& instr, const ArrayDesc& x, ArrayDesc& values, ArrayDesc& indices);
// fast.cu: layerNorm(Bwd), rmsNorm(Bwd), rope, softmax(Bwd), logsumexp (float32/float64).
void fast(const Context& c, const Instr& instr, const Inputs& in, const Outputs& outs, Scalars sc);
// conv.cu: conv and convWeightGrad (im2col chunks through gemm; half types through float32),
// window and windowAdd (cpu/conv.cc's semantics and ints).
void conv(const Context& c, const Instr& instr, const Inputs& in, ArrayDesc& out);
void window(const Context& c, const Instr& instr, const Inputs& in, ArrayDesc& out);
// attention.cu: attention and attentionBwd (float32/float64), per group of query heads sharing a
// key/value head: scores through gemm, a row kernel for the softmax, gemm again.
void attention(const Context& c, const Instr& instr, const Inputs& in, const Outputs& outs, Scalars sc);
// linalg.cu: cholesky, inv, solve, qr, eigh, svd (cpu/linalg.cc's algorithms, one thread per
// matrix, in double); singular and indefinite matrices throw the cpu's errors after a wait.
void linalg(const Context& c, const Instr& instr, const Inputs& in, const Outputs& outs);
// fused.cu: a fused elementwise chain (cpu/fused.h's layout) as one kernel generated for its steps
// and compiled at run time by NVRTC; fused_available() is false where NVRTC cannot be opened.
bool fused_available();
void fused(const Context& c, const Instr& instr, const Inputs& in, const Outputs& outs, Scalars sc);
// graph.cc: recording a body as a CUDA graph (CudaBackend::begin_capture / end_capture). start
// points c's allocator and patches at the recording's and begins capturing c.stream, which
// c.lanes's other streams join; finish joins them again, ends the capture and returns the replayable graph (not ready() when `keep` is false or capture
// failed), which launches under `mutex` (the backend's).
struct Recording;
std::shared_ptr<Recording> start_recording(Context& c, const double* scalars);
std::unique_ptr<Capture> finish_recording(std::shared_ptr<Recording> r, Lanes& lanes, cudaStream_t stream, std::recursive_mutex& mutex,
                                          bool keep);
// The error for a dtype a ported op does not handle on the gpu yet.
[[noreturn]] void not_ported(const char* op, DType t);

}  // namespace tessera::cuda
