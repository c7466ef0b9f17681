// @file The executor: the handle table that JavaScript's arrays point into, and the loop that
// runs one decoded program (views in place, compute through the backend, early frees, donation).
#pragma once
#include <mutex>
#include <unordered_map>
#include <vector>

#include "backend.h"
#include "program.h"

namespace tessera {

// A program with its inputs resolved to descriptors, ready to run on any thread.
struct BoundProgram {
  Program program;
  std::vector<int32_t> code;    // owned copies: the JS typed arrays may be collected meanwhile
  std::vector<double> scalars;
  std::vector<ArrayDesc> slots;  // inputs filled in; the rest computed by run()
};

class Executor {
 public:
  explicit Executor(Backend& backend) : backend_(backend) {}

  int32_t add(ArrayDesc desc);
  void free(int32_t handle);
  ArrayDesc get(int32_t handle) const;  // throws on an unknown handle
  size_t num_handles() const;

  // Decodes a program and binds its input handles (call on the JS thread).
  BoundProgram bind(const int32_t* code, size_t n, const double* scalars, size_t num_scalars) const;
  // Runs a bound program and returns its outputs (safe off the JS thread; touches no handles).
  std::vector<ArrayDesc> run(BoundProgram& bound);

  Backend& backend() { return backend_; }

 private:
  void run_instr(const Instr& instr, std::vector<ArrayDesc>& slots, const std::vector<int32_t>& last_use,
                 const std::vector<bool>& is_output);
  Backend& backend_;
  mutable std::mutex mutex_;
  std::unordered_map<int32_t, ArrayDesc> handles_;
  int32_t next_handle_ = 1;
};

}  // namespace tessera
