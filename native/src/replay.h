// @file Replaying a kept body (a compiled function's program) as one device launch: after a few
// plain runs, the body's run is recorded by its backend (a CUDA graph), and later runs whose
// bindings fit the recording copy what changed into its buffers and launch it once. Runs that do
// not fit (another view of a buffer, a buffer still held elsewhere, a baked scalar that changed)
// run plainly, so the result never depends on whether a replay served the run.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "executor.h"

namespace tessera {

// The replay state of one kept body, or null when it cannot be recorded (its instructions are
// not all on one device whose backend records, or TESSERA_GRAPHS=0).
std::shared_ptr<Replay> make_replay(const Program& p);

// Serves `bound` (a run of a kept body) from its recording, recording it first once the body has
// run plainly kWarmRuns times; false when the run must be plain (outs untouched, bound intact).
bool run_replay(Executor& ex, BoundProgram& bound, std::vector<ArrayDesc>& outs);

// Counters for tests: recordings made, runs served by a replay, runs that could not be.
struct ReplayStats {
  int64_t captures = 0, replays = 0, misses = 0, failures = 0;
  int64_t copies = 0;  // inputs replays copied into their recording (a batch, not updated parameters)
  std::string last_failure;  // why the last recording failed
  std::string last_miss;     // why the last run the recording could not serve ran plainly
  std::string last_copies;   // the inputs (index, dtype, shape) the last replay that copied any copied in
};
ReplayStats replay_stats();

}  // namespace tessera
