// @file The executor: the handle table that JavaScript's arrays point into, the table of decoded
// bodies that can be replayed, and the loop that runs one program (views in place, compute
// through each instruction's backend, transfers between devices, early frees, donation).
#pragma once
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "backend.h"
#include "program.h"

namespace tessera {

// Per-instruction timings gathered while a profile is open (mx.profile): opcode and nanoseconds,
// each run's block headed by (-1, number of instructions).
struct ProfileLog {
  std::mutex mutex;
  std::vector<std::pair<int32_t, int64_t>> entries;
};

struct Replay;  // replay.h: a kept body's recording for one-launch replays

// Keeps the nodes of a hash map's erased entries for its next inserts: a table whose size holds
// steady (a loop making and freeing arrays) then allocates nothing per entry.
template <class Map>
class NodePool {
 public:
  NodePool() { spare_.reserve(kMax); }
  template <class V>
  void insert(Map& m, const typename Map::key_type& k, V&& v) {
    if (spare_.empty()) {
      m.emplace(k, std::forward<V>(v));
      return;
    }
    typename Map::node_type n = std::move(spare_.back());
    spare_.pop_back();
    n.key() = k;
    n.mapped() = std::forward<V>(v);
    m.insert(std::move(n));
  }
  // Erases the entry at `it`; returns its value.
  typename Map::mapped_type erase(Map& m, typename Map::iterator it) {
    typename Map::node_type n = m.extract(it);
    typename Map::mapped_type v = std::move(n.mapped());
    if (spare_.size() < kMax) spare_.push_back(std::move(n));
    return v;
  }

 private:
  static constexpr size_t kMax = 256;
  std::vector<typename Map::node_type> spare_;
};

// A body with its bindings resolved, ready to run on any thread.
struct BoundProgram {
  std::shared_ptr<const Program> program;
  std::vector<double> scalars;   // an owned copy: the JS typed array may be collected meanwhile
  std::vector<ArrayDesc> inputs;  // the descriptors of the input handles, in slot order
  std::shared_ptr<ProfileLog> profile;  // set while a profile is open: each instruction is timed
  std::shared_ptr<Replay> replay;  // a kept body's replay state (runBody), else null
};

class Executor {
 public:
  int32_t add(ArrayDesc desc);
  void free(int32_t handle);
  ArrayDesc get(int32_t handle) const;  // throws on an unknown handle
  size_t num_handles() const;

  // Decodes and validates a body (call on any thread; touches no handles).
  static std::shared_ptr<const Program> decode(const int32_t* code, size_t n);
  // Keeps a decoded body for replay; returns its id. release_body forgets it.
  int32_t keep_body(std::shared_ptr<const Program> body);
  std::shared_ptr<const Program> body(int32_t id) const;
  // The replay state of a kept body (null when its instructions cannot be recorded as one launch).
  std::shared_ptr<Replay> replay(int32_t id) const;
  void release_body(int32_t id);
  size_t num_bodies() const;

  // Resolves a body's bindings (call on the JS thread: reads the handle table).
  BoundProgram bind(std::shared_ptr<const Program> body, const int32_t* handles, size_t num_handles,
                    const double* scalars, size_t num_scalars) const;
  // Runs a bound program and returns its outputs (safe off the JS thread; touches no handles).
  // The vector comes from spare_list(): give it back with recycle() once its outputs are taken.
  std::vector<ArrayDesc> run(BoundProgram& bound);
  // An empty vector of descriptors with the capacity an earlier use of this thread left, and its
  // return: a binding's inputs and a run's outputs use these, so a small evaluation allocates none.
  static std::vector<ArrayDesc> spare_list();
  static void recycle(std::vector<ArrayDesc>&& v);
  // Runs p's instructions over `slots` (inputs bound), freeing each slot after its last read.
  // `pinned` storages are held by a recording (replay.cc) besides the slots: they count as
  // unshared when deciding whether an instruction may write over a dying input.
  void execute(const Program& p, std::vector<ArrayDesc>& slots, const double* scalars, ProfileLog* profile,
               const std::vector<const Storage*>* pinned = nullptr);

 private:
  // `ins` and `outp` are the thread's reused operand vectors (see ThreadScratch).
  void run_instr(const Program& p, const Instr& instr, std::vector<ArrayDesc>& slots, const double* scalars,
                 const std::vector<const Storage*>* pinned, Inputs& ins, Outputs& outp);
  mutable std::mutex mutex_;
  using HandleMap = std::unordered_map<int32_t, ArrayDesc>;
  HandleMap handles_;
  NodePool<HandleMap> handle_nodes_;
  int32_t next_handle_ = 1;
  std::unordered_map<int32_t, std::shared_ptr<const Program>> bodies_;
  std::unordered_map<int32_t, std::shared_ptr<Replay>> replays_;
  int32_t next_body_ = 1;
};

}  // namespace tessera
