// @file Recording a kept body as a CUDA graph (replay.cc decides when; backend.cc's
// begin_capture/end_capture call this). While recording, the stream is captured in relaxed mode
// (with the lanes that spread independent instructions over parallel branches: lanes.h);
// allocations come from the recording's own memory (a caching allocator over cudaMalloc whose
// blocks stay the recording's for as long as its graph can replay: a replay writes the same
// addresses every time); fill values and fused chains' constants come from patches, 8-byte slots
// of device memory that each launch first uploads from that run's scalar words (through a ring
// of pinned buffers, so the host never waits for the previous launch to read its slot).
#include <cuda_runtime_api.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <set>

#include "kernels.h"
#include "lanes.h"

namespace tessera::cuda {

namespace {

// The recording's memory: blocks are reused within the recording (in capture order, which is
// the graph's) and freed only with it: a block the cache lets go of while recording (past its
// bound, or to retry an allocation) is still the graph's, and the device must not hand its
// addresses out again (lanes.h keys its ordering by the blocks' addresses, too).
class RecordingAllocator : public Allocator {
 public:
  ~RecordingAllocator() override {
    clear_cache();
    for (void* p : released_) cudaFree(p);
  }
  Lanes* lanes = nullptr;  // while recording: told of each block handed out (lanes.h)

 protected:
  void* raw_alloc(size_t nbytes) override {
    void* p = nullptr;
    if (cudaMalloc(&p, nbytes) != cudaSuccess) {
      cudaGetLastError();
      return nullptr;
    }
    return p;
  }
  void raw_free(void* p) override { released_.push_back(p); }
  void handed_out(const void* block) override {
    if (lanes) lanes->handed_out(block);
  }

 private:
  std::vector<void*> released_;
};

}  // namespace

struct Recording {
  RecordingAllocator memory;
  Patches patches;
  ~Recording() {
    if (patches.device) cudaFree(patches.device);
    if (patches.check_device) cudaFree(patches.check_device);
    if (patches.check_host) cudaFreeHost(patches.check_host);
  }
};

int Patches::new_check() {
  if (checks.size() == kMaxChecks) throw std::runtime_error("recording a graph: more than 256 index checks");
  checks.emplace_back();
  return static_cast<int>(checks.size() - 1);
}

const void* Patches::add(const double* word, Kind kind, DType dtype) {
  if (used + 8 > kCapacity) throw std::runtime_error("recording a graph: more than 8192 scalar constants");
  entries.push_back({static_cast<uint32_t>(used), static_cast<int32_t>(word - base), kind, dtype});
  used += 8;
  return device + entries.back().offset;
}

void Patches::fill(const double* words, uint8_t* host) const {
  for (const Entry& e : entries) {
    uint8_t* p = host + e.offset;
    const double v = words[e.word];
    switch (e.kind) {
      case Kind::FullBits: {
        const uint64_t bits = full_bits(e.dtype, Scalars{words + e.word});
        std::memcpy(p, &bits, 8);
        break;
      }
      case Kind::F32: {  // as run_fused passes a float32 chain's constant
        const float f = static_cast<float>(v);
        std::memcpy(p, &f, 4);
        break;
      }
      case Kind::F64: std::memcpy(p, &v, 8); break;
      case Kind::Bool: *p = v != 0; break;
    }
  }
}

namespace {

class Graph;
// Graphs launched since their index records were last read (settle_replays reads them).
std::mutex pending_mutex;
std::set<Graph*> pending;

class Graph : public Capture {
 public:
  Graph(std::shared_ptr<Recording> r, cudaGraphExec_t exec, cudaStream_t stream, std::recursive_mutex& mutex, std::string failure)
      : r_(std::move(r)), exec_(r_ ? exec : nullptr), stream_(stream), mutex_(mutex), failure_(std::move(failure)) {
    if (!r_) return;
    const Patches& p = r_->patches;
    int32_t last = -1;
    for (const Patches::Entry& e : p.entries) last = std::max(last, e.word);
    patched_.assign(static_cast<size_t>(last + 1), 0);
    for (const Patches::Entry& e : p.entries) patched_[e.word] = 1;
    if (exec_ && p.used) {
      for (size_t k = 0; k < kRing; ++k) {
        check(cudaMallocHost(&staging_[k], p.used), "recording a graph");
        check(cudaEventCreateWithFlags(&uploaded_[k], cudaEventDisableTiming), "recording a graph");
      }
    }
  }
  ~Graph() override {
    {
      std::lock_guard<std::mutex> lock(pending_mutex);
      pending.erase(this);
    }
    if (exec_) {
      std::lock_guard<std::recursive_mutex> lock(mutex_);  // not while another thread records
      cudaStreamSynchronize(stream_);  // a replay in flight still uses the recording's memory
      cudaGraphExecDestroy(exec_);
    }
    for (size_t k = 0; k < kRing; ++k) {
      if (staging_[k]) cudaFreeHost(staging_[k]);
      if (uploaded_[k]) cudaEventDestroy(uploaded_[k]);
    }
  }
  bool ready() const override { return exec_ != nullptr; }
  std::string failure() const override { return failure_; }
  bool patched(int32_t word) const override {
    return word >= 0 && static_cast<size_t>(word) < patched_.size() && patched_[word];
  }
  // Waits for the launches so far and throws the first bad index their records hold (resetting
  // them, so later calls start clean). Several calls may have run since the last read: the error
  // cannot tell which one went wrong, so it says all of their results are invalid.
  void settle() {
    {
      std::lock_guard<std::mutex> lock(pending_mutex);
      if (!pending.erase(this)) return;
    }
    const Patches& p = r_->patches;
    const size_t bytes = 16 * p.checks.size();
    std::lock_guard<std::recursive_mutex> lock(mutex_);
    check(cudaMemcpyAsync(p.check_host, p.check_device, bytes, cudaMemcpyDeviceToHost, stream_), "replay");
    check(cudaStreamSynchronize(stream_), "replay");
    for (size_t i = 0; i < p.checks.size(); ++i) {
      const unsigned long long* rec = p.check_host + 2 * i;
      if (rec[0] == 0) continue;
      const std::string message = std::string(p.checks[i].op) + " in a replayed compiled call: " + bad_index_message(rec, p.checks[i].n) +
                                  " (the results of the calls replayed since the last read of gpu data are invalid)";
      check(cudaMemsetAsync(p.check_device, 0, bytes, stream_), "replay");
      std::memset(p.check_host, 0, bytes);
      throw std::runtime_error(message);
    }
  }

  void launch(const double* scalars) override {
    std::lock_guard<std::recursive_mutex> lock(mutex_);
    const Patches& p = r_->patches;
    if (p.used) {
      const size_t k = next_++ % kRing;
      check(cudaEventSynchronize(uploaded_[k]), "replay");  // the slot's last upload has been read
      p.fill(scalars, static_cast<uint8_t*>(staging_[k]));
      check(cudaMemcpyAsync(p.device, staging_[k], p.used, cudaMemcpyHostToDevice, stream_), "replay");
      check(cudaEventRecord(uploaded_[k], stream_), "replay");
    }
    check(cudaGraphLaunch(exec_, stream_), "replay");
    if (!p.checks.empty()) {
      std::lock_guard<std::mutex> lock(pending_mutex);
      pending.insert(this);
    }
  }

 private:
  static constexpr size_t kRing = 4;
  std::shared_ptr<Recording> r_;
  cudaGraphExec_t exec_;
  cudaStream_t stream_;
  std::recursive_mutex& mutex_;
  std::string failure_;
  std::vector<char> patched_;
  std::array<void*, kRing> staging_{};
  std::array<cudaEvent_t, kRing> uploaded_{};
  size_t next_ = 0;
};

}  // namespace

void settle_replays() {
  std::vector<Graph*> graphs;
  {
    std::lock_guard<std::mutex> lock(pending_mutex);
    graphs.assign(pending.begin(), pending.end());
  }
  for (Graph* g : graphs) g->settle();
}

std::shared_ptr<Recording> start_recording(Context& c, const double* scalars) {
  auto r = std::make_shared<Recording>();
  r->patches.base = scalars;
  void* device = nullptr;
  check(cudaMalloc(&device, Patches::kCapacity), "recording a graph");
  r->patches.device = static_cast<uint8_t*>(device);
  void* host = nullptr;
  check(cudaMallocHost(&host, Patches::kMaxChecks * 16), "recording a graph");
  r->patches.check_host = static_cast<unsigned long long*>(host);
  void* records = nullptr;
  check(cudaMalloc(&records, Patches::kMaxChecks * 16), "recording a graph");
  r->patches.check_device = static_cast<unsigned long long*>(records);
  // Zeroed once, before the capture: replays leave a set record set until settle reads it.
  check(cudaMemsetAsync(records, 0, Patches::kMaxChecks * 16, c.stream), "recording a graph");
  check(cudaStreamBeginCapture(c.stream, cudaStreamCaptureModeRelaxed), "recording a graph");
  r->memory.lanes = c.lanes;
  c.lanes->begin(c.stream);
  c.allocator = &r->memory;
  c.patches = &r->patches;
  return r;
}

std::unique_ptr<Capture> finish_recording(std::shared_ptr<Recording> r, Lanes& lanes, cudaStream_t stream, std::recursive_mutex& mutex,
                                          bool keep) {
  lanes.end();
  if (r) r->memory.lanes = nullptr;
  cudaGraph_t graph = nullptr;
  cudaError_t e = cudaStreamEndCapture(stream, &graph);
  keep &= r != nullptr;  // null when beginning the capture failed
  cudaGraphExec_t exec = nullptr;
  if (keep && e == cudaSuccess && graph) e = cudaGraphInstantiate(&exec, graph, 0);
  if (graph) cudaGraphDestroy(graph);
  std::string failure;
  if (keep && e != cudaSuccess) failure = std::string("capturing the stream: ") + cudaGetErrorString(e);
  if (!keep || e != cudaSuccess) {
    cudaGetLastError();  // clear what the failed capture left
    if (exec) cudaGraphExecDestroy(exec);
    exec = nullptr;
  }
  return std::make_unique<Graph>(std::move(r), exec, stream, mutex, std::move(failure));
}

}  // namespace tessera::cuda
