// @file Lanes: while a body is recorded as a CUDA graph, its instructions are spread over a few
// captured streams so that independent work (a layer's input gradient, weight gradient and bias
// gradient; the query, key and value products) becomes parallel branches of the graph, which the
// device runs side by side. A step of small products otherwise leaves most of the GPU idle.
//
// Dependencies are found from the memory each instruction touches, per block (a storage's base
// address): an instruction reads its inputs' blocks and writes its outputs' blocks and every
// block it allocates (outputs, temporaries). A read waits for the block's last writer; a write
// waits for its last writer and every reader since. A block the recording's allocator hands out
// again (a value or temporary that died) is a write by its new owner, so it waits for everything
// its previous owners did with it: that is why the allocator reports each block it hands out
// (Allocator::handed_out) before the instruction queues work on it.
//
// A wait is an event recorded on the other lane and waited on by this one: it orders this lane
// after everything the other lane has queued so far (a superset of what is needed, never less).
#pragma once
#include <cuda_runtime_api.h>

#include <array>
#include <unordered_map>
#include <vector>

#include "../backend.h"

namespace tessera::cuda {

class Lanes {
 public:
  static constexpr int kLanes = 8;  // at most; 4 by default (TESSERA_GRAPH_LANES sets it)
  ~Lanes();
  // At the start of a capture of `origin` (lane 0): the other lanes join it.
  void begin(cudaStream_t origin);
  // Before instruction `instr` runs: picks its lane, makes the lane wait for what the instruction
  // reads and overwrites (donated outputs), and returns the stream to queue its work on.
  cudaStream_t enter(const Inputs& in, const Outputs& outs);
  // A block handed out by the recording's allocator during the current instruction.
  void handed_out(const void* block);
  // After the instruction queued its work: what it read and wrote.
  void leave(const Inputs& in, const Outputs& outs);
  // Before the capture ends: every lane joins lane 0 again (also after a failure).
  void end();

 private:
  struct Access {
    int writer = -1;           // instruction index
    std::vector<int> readers;  // since that write
  };
  void wait_for(int instr);  // the current lane waits until `instr` (on its lane) is done
  void wait_for_all(const Access& a);

  cudaStream_t streams_[kLanes] = {};
  cudaEvent_t events_[kLanes] = {};
  bool capturing_ = false;
  std::unordered_map<const void*, Access> history_;
  std::vector<int> lane_of_;  // per instruction
  std::array<int, kLanes> tail_{};  // the last instruction queued on each lane (-1: none)
  // waited_[a][b]: lane a is ordered after lane b's instructions up to this index.
  std::array<std::array<int, kLanes>, kLanes> waited_{};
  int current_ = -1, lane_ = 0;
  std::vector<const void*> allocated_;  // blocks handed out during the current instruction
};

}  // namespace tessera::cuda
