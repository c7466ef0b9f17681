// @file The backend interface: what the executor needs from a device. The executor itself only
// reshapes metadata (views, donation); every byte is touched through a Backend. The cpu backend
// (cpu/) is always built; a GPU backend implements the same interface with device allocations.
#pragma once
#include <atomic>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "array.h"
#include "program.h"

namespace tessera {

// Size-bucketed caching allocator with memory accounting. Subclasses provide the raw calls.
class Allocator {
 public:
  virtual ~Allocator() = default;
  std::shared_ptr<Storage> allocate(size_t nbytes);
  void release(Storage* s);  // called by ~Storage: back to the cache
  void clear_cache();
  size_t active() const { return active_.load(); }
  size_t peak() const { return peak_.load(); }
  size_t cached() const { return cached_.load(); }
  void reset_peak() { peak_.store(active_.load()); }
  void set_limit(size_t bytes) { limit_ = bytes; }
  size_t limit() const { return limit_; }
  size_t live_allocations() const { return live_.load(); }

 protected:
  virtual void* raw_alloc(size_t nbytes) = 0;  // nullptr when out of memory
  virtual void raw_free(void* p) = 0;
  // Told of every block allocate() hands out, new or reused (a recording orders work by it).
  virtual void handed_out(const void* /*block*/) {}

 private:
  static size_t bucket(size_t nbytes);
  std::mutex mutex_;
  // capacity -> freed blocks, the most recently freed last (reused first: likely still in cache).
  // Buckets keep their vectors when emptied, so a loop that frees and allocates allocates nothing.
  std::map<size_t, std::vector<void*>> cache_;
  std::atomic<size_t> active_{0}, peak_{0}, cached_{0}, live_{0};
  size_t limit_ = SIZE_MAX;
  size_t cache_limit_ = size_t(1) << 30;
};

// A recorded run of a whole body that the device replays with one launch (a CUDA graph): the
// buffers it reads and writes are the ones used while it was recorded; the scalar words the
// recording marked as patched (the values of fills and of fused chains' constants) are re-read
// from `scalars` at every launch, every other word is baked in (replay.cc checks they match).
class Capture {
 public:
  virtual ~Capture() = default;
  // Enqueues one replay with the patched words taken from `scalars` (the run's scalar words).
  virtual void launch(const double* scalars) = 0;
  // Whether word k of the run's scalars is read through a patch (so it may change between runs).
  virtual bool patched(int32_t word) const = 0;
  // False when recording failed or was abandoned: then it only keeps the memory the recording
  // allocated alive until the buffers made from it are gone.
  virtual bool ready() const = 0;
  // Why it is not ready (empty when it is, or when it was abandoned).
  virtual std::string failure() const { return {}; }
};

// A device's implementation of the primitives. The executor routes each instruction to the
// backend its device field names, and only ever touches bytes through these calls, so an
// asynchronous backend (a GPU stream) fits the same loop:
// - run() may only enqueue work; the executor calls begin_program() on each backend a run uses
//   before its first instruction and end_program() after its last (or after a failure), and
//   synchronize() before bytes are read on the host.
// - The executor drops a buffer (Storage) only after the instruction that reads it last has been
//   passed to run(); an asynchronous backend's Allocator must order the reuse of a released
//   block after the work already queued on its stream (a stream-ordered pool does exactly that).
// - supports() is asked for every instruction when a program is decoded, before anything runs,
//   so an op missing on a device is an error naming the op and the device, never a wrong answer.
class Backend {
 public:
  virtual ~Backend() = default;
  // The device's name as errors print it ("cpu", "gpu:0").
  virtual const char* name() const = 0;
  virtual Allocator& allocator() = 0;
  virtual bool supports(Op op) const = 0;
  virtual void begin_program() {}
  virtual void end_program() {}
  virtual void synchronize() {}
  // Copies nbytes of host memory into dst (contiguous, storage already allocated here).
  virtual void write(ArrayDesc& dst, const void* host_src) = 0;
  // Copies an array (any strides) into contiguous host memory of src.nbytes() bytes.
  virtual void read(const ArrayDesc& src, void* host_dst) = 0;
  // Runs one compute instruction. Each output arrives with dtype and shape set; the backend sets
  // its storage and strides (or keeps a storage the executor donated, and writes into it).
  virtual void run(const Instr& instr, const Inputs& inputs, const Outputs& outputs, Scalars scalars) = 0;

  // Recording whole bodies for replay (replay.cc). A backend that can returns true from
  // can_capture(); between begin_capture() and end_capture() run() only records work (nothing
  // executes), allocations come from memory the capture keeps for its replays, and the scalar
  // words of fills and fused constants are read through patches based at `scalars`.
  // end_capture(false) abandons the recording (the result is not ready()); either way the backend
  // is back to running. Buffers allocated while recording must die before the returned object.
  virtual bool can_capture() const { return false; }
  virtual void begin_capture(const double* /*scalars*/) {}
  virtual std::unique_ptr<Capture> end_capture(bool /*keep*/) { return nullptr; }
  // Enqueues a copy of src into dst (same shape and dtype, dst contiguous; devices of this backend).
  virtual void copy(const ArrayDesc& /*src*/, const ArrayDesc& /*dst*/) {}
  // Named counts of what the backend did (tests read them through the addon's counters()).
  virtual std::vector<std::pair<std::string, double>> counters() const { return {}; }
};

// The backend registry: index 0 is the cpu; the device field of an instruction is an index here.
// With TESSERA_TEST_DEVICE set when the addon loads, index 1 is "cpu:1", a second cpu backend
// with its own allocator that does not support matmul (tests of device routing use it).
const std::vector<Backend*>& backends();
Backend& backend(int32_t device);  // throws on an unknown index

Backend& cpu_backend();
// A second cpu backend named `name`, refusing the ops in `unsupported` (for device tests).
Backend* make_cpu_backend(const char* name, std::vector<Op> unsupported);
// The CUDA backend "gpu" (cuda/backend.cc, built when the CUDA toolkit is found): nullptr when
// there is no usable device (no driver, no GPU).
Backend* cuda_backend();

}  // namespace tessera
