// @file Replays of kept bodies (replay.h). The recording's buffers:
// - input i lives in in[i]: the bound input's own buffer when the run that recorded held its
//   only reference (a donated parameter: the body may write its update over it) or when the
//   input had that same buffer in the plain run before (a constant, a batch reused: the recording
//   shares it, and an array's buffer never changes while another owner holds it; a view, such as
//   a constant broadcast mask, is shared the same way), else a private copy made before recording
//   (a new batch every call: the caller's old one may live on);
// - output j is either an input's buffer (written in place, handed back to the caller, who
//   donates it again next step) or a buffer the recording owns, copied out into a fresh buffer
//   after every launch (the caller may keep last step's loss while this step overwrites it).
// A replay therefore needs, per input, the same buffer and view as recorded (then, if written in
// place, held by nobody but this run), or a recorded whole buffer that nobody else holds (then the
// input is copied into it); and every scalar word the recording baked in unchanged.
#include "replay.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

namespace tessera {

// Member order matters: the buffers (in, out) are destroyed before the capture owning their memory.
struct Replay {
  std::mutex mutex;
  Backend* backend = nullptr;
  int runs = 0;    // plain runs so far (recording waits for kWarmRuns: kernels compiled, libraries up)
  int misses = 0;  // consecutive runs the recording could not serve
  int failures = 0;  // recordings that failed
  int recordings = 0;  // recordings made (one is dropped after kMaxMisses misses in a row)
  bool off = false;
  std::vector<const Storage*> seen;  // the inputs' buffers in the last plain run (compared, never used)
  std::unique_ptr<Capture> capture;
  std::vector<ArrayDesc> in;      // the recorded input buffers and views
  std::vector<char> in_owned;     // in[i] was the caller's donated buffer (may be written in place)
  std::vector<char> in_view;      // in[i] is a shared view of a caller's buffer (never copied into)
  std::vector<long> in_refs;      // references the recording itself holds to in[i]'s buffer
  std::vector<ArrayDesc> out;     // the outputs as recorded (no buffer where out_input says whose)
  std::vector<int32_t> out_input;  // the input whose buffer output j is, or -1 (copied out)
  std::vector<double> words;      // the scalar words when recorded
};

namespace {

constexpr int kWarmRuns = 2;
constexpr int kMaxMisses = 8;      // then the recording is dropped (and made again after warm runs)
constexpr int kMaxRecordings = 3;  // then the body runs plainly for good

std::atomic<int64_t> n_captures{0}, n_replays{0}, n_misses{0}, n_failures{0}, n_copies{0};
std::mutex failure_mutex;
std::string last_failure, last_miss;
// The inputs the last replay that copied anything copied in (what replayStats names); kept as
// plain values so the replay path allocates nothing.
struct CopiedInput {
  size_t index;
  DType dtype;
  Shape shape;
};
constexpr size_t kNamedCopies = 8;
CopiedInput last_copies[kNamedCopies];
size_t num_last_copies = 0;

void failed(const std::string& why) {
  ++n_failures;
  std::lock_guard<std::mutex> lock(failure_mutex);
  last_failure = why;
}

bool graphs_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("TESSERA_GRAPHS");
    return !(v && std::string(v) == "0");
  }();
  return on;
}

bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

ArrayDesc contiguous_like(const ArrayDesc& x, std::shared_ptr<Storage> storage) {
  ArrayDesc d;
  d.dtype = x.dtype;
  d.shape = x.shape;
  d.device = x.device;
  d.strides = row_major_strides(x.shape);
  d.storage = std::move(storage);
  return d;
}

// A byte-for-byte view of a whole storage (for copying an output's buffer out, views and all).
ArrayDesc bytes_of(const std::shared_ptr<Storage>& s, int32_t device) {
  ArrayDesc d;
  d.dtype = DType::U8;
  d.shape = {static_cast<int64_t>(s->nbytes)};
  d.strides = {1};
  d.device = device;
  d.storage = s;
  return d;
}

// The outputs of a launch: in-place ones as recorded, the others copied out of the recording.
void hand_out(Replay& r, std::vector<ArrayDesc>& outs) {
  Backend& be = *r.backend;
  outs.reserve(r.out.size());
  for (size_t j = 0; j < r.out.size(); ++j) {
    ArrayDesc o = r.out[j];
    if (r.out_input[j] >= 0) {
      o.storage = r.in[r.out_input[j]].storage;
    } else if (o.storage) {
      std::shared_ptr<Storage> fresh = be.allocator().allocate(o.storage->nbytes);
      if (o.storage->nbytes) be.copy(bytes_of(o.storage, o.device), bytes_of(fresh, o.device));
      o.storage = std::move(fresh);
    }
    outs.push_back(std::move(o));
  }
}

// Buffers first: those the recording allocated return to memory the capture owns.
void drop(Replay& r, bool for_good) {
  r.in.clear();
  r.out.clear();
  r.in_refs.clear();
  r.capture.reset();
  r.runs = 0;
  r.off = for_good;
}

// Records the body over buffers of its own (see the file comment), then launches it once.
bool record(Executor& ex, BoundProgram& bound, Replay& r, std::vector<ArrayDesc>& outs) {
  const Program& p = *bound.program;
  Backend& be = *r.backend;
  const size_t n = static_cast<size_t>(p.num_inputs);
  r.in.assign(n, ArrayDesc());
  r.in_owned.assign(n, 0);
  r.in_view.assign(n, 0);
  std::vector<const Storage*> pinned;
  // Every recorded input is a whole contiguous buffer of its own (no two inputs share one), so a
  // later input can be copied into it.
  auto recorded = [&](const std::shared_ptr<Storage>& s) {
    for (const ArrayDesc& y : r.in)
      if (y.storage == s) return true;
    return false;
  };
  for (size_t i = 0; i < n; ++i) {
    const ArrayDesc& x = bound.inputs[i];
    const bool whole = x.storage && x.offset == 0 && x.is_row_contiguous() && x.storage->nbytes == static_cast<size_t>(x.nbytes());
    if (whole && x.storage.use_count() == 1) {
      pinned.push_back(x.storage.get());
      r.in[i] = std::move(bound.inputs[i]);  // the slot and the recording: its only owners (x is moved from)
      r.in_owned[i] = 1;
    } else if (whole && i < r.seen.size() && r.seen[i] == x.storage.get() && !recorded(x.storage)) {
      r.in[i] = x;  // the same buffer as last run: shared, read where it is
    } else if (!whole && x.storage && i < r.seen.size() && r.seen[i] == x.storage.get()) {
      r.in[i] = x;  // a view of the same buffer as last run (a constant mask): read where it is
      r.in_view[i] = 1;
    } else {
      r.in[i] = contiguous_like(x, be.allocator().allocate(x.nbytes()));
      if (x.nbytes()) be.copy(x, r.in[i]);
    }
  }
  std::unique_ptr<Capture> capture;  // declared before the slots: buffers it allocated die first
  std::vector<ArrayDesc> slots(p.num_slots);
  for (size_t i = 0; i < n; ++i) slots[i] = r.in[i];
  std::string why;
  try {
    be.begin_capture(bound.scalars.data());
    ex.execute(p, slots, bound.scalars.data(), nullptr, &pinned);
  } catch (const std::exception& e) {
    why = e.what();  // e.g. an op that waits for the device: the body runs plainly from now on
  }
  capture = be.end_capture(why.empty());
  if (!capture || !capture->ready()) {
    slots.clear();
    failed(!why.empty() ? why : capture ? capture->failure() : std::string("the backend kept no recording"));
    for (size_t i = 0; i < n; ++i)
      if (r.in_owned[i]) bound.inputs[i] = r.in[i];  // recording ran nothing: the buffer is as it was
    // Once more after the next warm runs: a first recording can fail for work done once (a
    // kernel compiled, a library loaded while capturing); twice, and the body runs plainly.
    drop(r, ++r.failures >= 2);
    return false;  // nothing ran: bound.inputs are intact for the plain run
  }
  r.capture = std::move(capture);
  ++r.recordings;
  r.misses = 0;
  r.words = bound.scalars;
  r.out.clear();
  r.out_input.clear();
  for (int32_t s : p.outputs) {
    const ArrayDesc& o = slots[s];
    int32_t from = -1;
    for (size_t i = 0; i < n && from < 0; ++i)
      if (r.in_owned[i] && o.storage == r.in[i].storage) from = static_cast<int32_t>(i);
    r.out.push_back(o);
    r.out_input.push_back(from);
    if (from >= 0) r.out.back().storage.reset();
  }
  r.in_refs.assign(n, 1);  // its input (no other input shares the buffer) and its outputs
  for (size_t i = 0; i < n; ++i)
    for (const ArrayDesc& o : r.out) r.in_refs[i] += o.storage && o.storage == r.in[i].storage;
  slots.clear();
  bound.inputs.clear();
  r.capture->launch(bound.scalars.data());
  hand_out(r, outs);
  ++n_captures;
  return true;
}

// Whether the recording can serve this run (`copy` gets the inputs to copy into it); else why not.
std::string misfit(const BoundProgram& bound, const Replay& r, std::vector<size_t>& copy) {
  const std::vector<double>& w = bound.scalars;
  if (w.size() != r.words.size()) return "the number of scalar words changed";
  for (size_t k = 0; k < w.size(); ++k)
    if (!same_bits(w[k], r.words[k]) && !r.capture->patched(static_cast<int32_t>(k)))
      return "scalar word " + std::to_string(k) + " changed and is baked into the recording";
  for (size_t i = 0; i < r.in.size(); ++i) {
    const ArrayDesc& x = bound.inputs[i];
    const ArrayDesc& mine = r.in[i];
    auto input = [i] { return "input " + std::to_string(i); };  // built only for a miss (the hot path allocates nothing)
    if (x.storage == mine.storage) {
      if (x.offset != mine.offset || x.strides != mine.strides) return input() + " is another view of its recorded buffer";
      // May be written in place: only this run and the recording may hold it.
      if (r.in_owned[i] && x.storage.use_count() != 2)
        return input() + " (updated in place) is held elsewhere: " + std::to_string(x.storage.use_count() - 2) + " more reference(s)";
    } else {
      if (r.in_view[i]) return input() + " changed buffers, and the recording reads it as a view of another buffer";
      if (mine.storage.use_count() != r.in_refs[i])  // someone still reads the recorded buffer
        return input() + " changed buffers, and its recorded buffer is still held elsewhere: " +
               std::to_string(mine.storage.use_count() - r.in_refs[i]) + " more reference(s)";
      copy.push_back(i);
    }
  }
  return {};
}

}  // namespace

std::shared_ptr<Replay> make_replay(const Program& p) {
  if (!graphs_enabled() || p.instrs.empty()) return nullptr;
  const int32_t device = p.instrs[0].device;
  for (const Instr& in : p.instrs)
    if (in.device != device || in.op == Op::Transfer) return nullptr;
  Backend& be = backend(device);
  if (!be.can_capture()) return nullptr;
  auto r = std::make_shared<Replay>();
  r->backend = &be;
  return r;
}

bool run_replay(Executor& ex, BoundProgram& bound, std::vector<ArrayDesc>& outs) {
  Replay& r = *bound.replay;
  std::unique_lock<std::mutex> lock(r.mutex, std::try_to_lock);
  if (!lock.owns_lock() || r.off) return false;  // another thread is replaying it: run plainly
  if (!r.capture) {
    if (++r.runs > kWarmRuns && record(ex, bound, r, outs)) return true;
    r.seen.clear();  // this run is plain: what the recording will compare with
    for (const ArrayDesc& x : bound.inputs) r.seen.push_back(x.storage.get());
    return false;
  }
  std::vector<size_t> copy;
  if (std::string why = misfit(bound, r, copy); !why.empty()) {
    ++n_misses;
    {
      std::lock_guard<std::mutex> lock(failure_mutex);
      last_miss = std::move(why);
    }
    // The bindings changed for good (a new buffer each call where the recording shares one):
    // recorded again after warm runs, which see the new pattern.
    if (++r.misses > kMaxMisses) drop(r, r.recordings >= kMaxRecordings);
    return false;
  }
  r.misses = 0;
  for (size_t i : copy) r.backend->copy(bound.inputs[i], r.in[i]);
  if (!copy.empty()) {
    n_copies += static_cast<int64_t>(copy.size());
    std::lock_guard<std::mutex> lock(failure_mutex);
    num_last_copies = std::min(copy.size(), kNamedCopies);
    for (size_t k = 0; k < num_last_copies; ++k)
      last_copies[k] = {copy[k], bound.inputs[copy[k]].dtype, bound.inputs[copy[k]].shape};
  }
  bound.inputs.clear();  // in-place inputs are now held by the recording alone
  r.capture->launch(bound.scalars.data());
  hand_out(r, outs);
  ++n_replays;
  return true;
}

ReplayStats replay_stats() {
  std::lock_guard<std::mutex> lock(failure_mutex);
  std::string copies;
  for (size_t k = 0; k < num_last_copies; ++k) {
    const CopiedInput& c = last_copies[k];
    copies += (k ? "; input " : "input ") + std::to_string(c.index) + " " + dtype_name(c.dtype) + " [";
    for (size_t d = 0; d < c.shape.size(); ++d) copies += (d ? "," : "") + std::to_string(c.shape[d]);
    copies += "]";
  }
  return {n_captures.load(), n_replays.load(), n_misses.load(), n_failures.load(), n_copies.load(), last_failure, last_miss, copies};
}

}  // namespace tessera
