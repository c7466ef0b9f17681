// @file Spreading a recording's instructions over captured streams (lanes.h).
#include "lanes.h"

#include <cstdlib>

#include "kernels.h"

namespace tessera::cuda {

namespace {
// TESSERA_GRAPH_LANES=k records on k streams (1: each graph a chain, for comparison).
int lanes_in_use() {
  static const int n = [] {
    const char* v = std::getenv("TESSERA_GRAPH_LANES");
    const int k = v ? std::atoi(v) : 4;
    return k < 1 ? 1 : k > Lanes::kLanes ? Lanes::kLanes : k;
  }();
  return n;
}
}  // namespace

Lanes::~Lanes() {
  for (int k = 1; k < kLanes; ++k)
    if (streams_[k]) cudaStreamDestroy(streams_[k]);
  for (cudaEvent_t e : events_)
    if (e) cudaEventDestroy(e);
}

void Lanes::begin(cudaStream_t origin) {
  streams_[0] = origin;
  for (int k = 0; k < lanes_in_use(); ++k) {
    if (k > 0 && !streams_[k]) check(cudaStreamCreateWithFlags(&streams_[k], cudaStreamNonBlocking), "recording a graph");
    if (!events_[k]) check(cudaEventCreateWithFlags(&events_[k], cudaEventDisableTiming), "recording a graph");
  }
  history_.clear();
  lane_of_.clear();
  allocated_.clear();
  tail_.fill(-1);
  for (auto& row : waited_) row.fill(-1);
  current_ = -1;
  lane_ = 0;
  // The other lanes join the capture: their work may start where the recording starts. (From
  // here on end() joins them back, also when this fails halfway.)
  capturing_ = true;
  check(cudaEventRecord(events_[0], origin), "recording a graph");
  for (int k = 1; k < lanes_in_use(); ++k) check(cudaStreamWaitEvent(streams_[k], events_[0], 0), "recording a graph");
}

void Lanes::end() {
  if (!capturing_) return;
  capturing_ = false;
  current_ = -1;
  for (int k = 1; k < lanes_in_use(); ++k) {  // errors here surface when the capture ends
    if (cudaEventRecord(events_[k], streams_[k]) == cudaSuccess) cudaStreamWaitEvent(streams_[0], events_[k], 0);
  }
  history_.clear();
}

void Lanes::wait_for(int instr) {
  if (instr < 0) return;
  const int other = lane_of_[static_cast<size_t>(instr)];
  if (other == lane_ || waited_[lane_][other] >= instr) return;
  check(cudaEventRecord(events_[other], streams_[other]), "recording a graph");
  check(cudaStreamWaitEvent(streams_[lane_], events_[other], 0), "recording a graph");
  // This lane now follows all the other lane has queued, and all that lane followed.
  waited_[lane_][other] = tail_[other];
  for (int k = 0; k < kLanes; ++k)
    if (waited_[other][k] > waited_[lane_][k]) waited_[lane_][k] = waited_[other][k];
}

void Lanes::wait_for_all(const Access& a) {
  wait_for(a.writer);
  for (int r : a.readers) wait_for(r);
}

cudaStream_t Lanes::enter(const Inputs& in, const Outputs& outs) {
  const int j = static_cast<int>(lane_of_.size());
  // The lane: one whose last instruction this one depends on (the latest such: the longest chain
  // goes on without a wait), else the lane whose last instruction is oldest (likely done by then).
  int lane = -1, best = -1;
  auto consider = [&](int d) {
    if (d < 0) return;
    const int l = lane_of_[static_cast<size_t>(d)];
    if (tail_[l] == d && d > best) best = d, lane = l;
  };
  for (const ArrayDesc* x : in)
    if (x->storage) {
      auto it = history_.find(x->storage->data);
      if (it != history_.end()) consider(it->second.writer);
    }
  for (const ArrayDesc* o : outs)
    if (o->storage) {
      auto it = history_.find(o->storage->data);
      if (it == history_.end()) continue;
      consider(it->second.writer);
      for (int r : it->second.readers) consider(r);
    }
  if (lane < 0) {
    lane = 0;
    for (int k = 1; k < lanes_in_use(); ++k)
      if (tail_[k] < tail_[lane]) lane = k;
  }
  lane_ = lane;
  current_ = j;
  lane_of_.push_back(lane);
  for (const ArrayDesc* x : in)
    if (x->storage) {
      auto it = history_.find(x->storage->data);
      if (it != history_.end()) wait_for(it->second.writer);
    }
  for (const ArrayDesc* o : outs)
    if (o->storage) {
      auto it = history_.find(o->storage->data);
      if (it != history_.end()) wait_for_all(it->second);
    }
  tail_[lane] = j;
  return streams_[lane];
}

void Lanes::handed_out(const void* block) {
  if (current_ < 0) return;
  auto it = history_.find(block);
  if (it != history_.end()) wait_for_all(it->second);
  allocated_.push_back(block);
}

void Lanes::leave(const Inputs& in, const Outputs& outs) {
  const int j = current_;
  if (j < 0) return;
  for (const ArrayDesc* x : in)
    if (x->storage) {
      Access& a = history_[x->storage->data];
      if (a.writer != j && (a.readers.empty() || a.readers.back() != j)) a.readers.push_back(j);
    }
  auto wrote = [&](const void* block) {
    Access& a = history_[block];
    a.writer = j;
    a.readers.clear();
  };
  for (const ArrayDesc* o : outs)
    if (o->storage) wrote(o->storage->data);
  for (const void* b : allocated_) wrote(b);
  allocated_.clear();
  current_ = -1;
}

}  // namespace tessera::cuda
