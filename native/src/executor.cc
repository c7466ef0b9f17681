// @file Program decoding and execution. View ops (identity, broadcastTo, transpose, slice and
// contiguous reshape) only rewrite metadata here; everything else is the backend's.
#include "executor.h"

#include <climits>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace tessera {

static const char* kOpNames[] = {
#define OP(name, str, kind) str,
#include "ops.def"
#undef OP
};
static const OpKind kOpKinds[] = {
#define OP(name, str, kind) OpKind::kind,
#include "ops.def"
#undef OP
};
const char* op_name(int32_t op) {
  return op >= 0 && op < static_cast<int32_t>(Op::Count) ? kOpNames[op] : "?";
}
OpKind op_kind(Op op) { return kOpKinds[static_cast<int32_t>(op)]; }

Program decode_program(const int32_t* d, size_t n, const double* scalars, size_t num_scalars) {
  size_t pos = 0;
  auto next = [&]() -> int32_t {
    if (pos >= n) throw std::runtime_error("[run] malformed program: truncated");
    return d[pos++];
  };
  Program p;
  p.num_slots = next();
  auto slot = [&](int32_t s) {
    if (s < 0 || s >= p.num_slots) throw std::runtime_error("[run] malformed program: slot out of range");
    return s;
  };
  int32_t num_inputs = next();
  for (int32_t i = 0; i < num_inputs; ++i) {
    int32_t h = next();
    p.inputs.emplace_back(h, slot(next()));
  }
  int32_t num_instrs = next();
  p.instrs.reserve(num_instrs);
  for (int32_t i = 0; i < num_instrs; ++i) {
    Instr in;
    in.index = i;
    int32_t op = next();
    if (op < 0 || op >= static_cast<int32_t>(Op::Count)) throw std::runtime_error("[run] unknown opcode " + std::to_string(op));
    in.op = static_cast<Op>(op);
    int32_t dt = next();
    if (dt < 0 || dt >= kNumDTypes) throw std::runtime_error("[run] unknown dtype code " + std::to_string(dt));
    in.dtype = static_cast<DType>(dt);
    int32_t ndim = next();
    for (int32_t k = 0; k < ndim; ++k) in.shape.push_back(next());
    int32_t nin = next();
    for (int32_t k = 0; k < nin; ++k) in.in.push_back(slot(next()));
    in.out = slot(next());
    int32_t nint = next();
    for (int32_t k = 0; k < nint; ++k) in.ints.push_back(next());
    in.num_scalars = next();
    int32_t off = next();
    if (in.num_scalars < 0 || off < 0 || static_cast<size_t>(off) + in.num_scalars > num_scalars)
      throw std::runtime_error("[run] malformed program: scalar params out of range");
    in.scalars = scalars + off;
    p.instrs.push_back(std::move(in));
  }
  int32_t num_outputs = next();
  for (int32_t i = 0; i < num_outputs; ++i) p.outputs.push_back(slot(next()));
  if (pos != n) throw std::runtime_error("[run] malformed program: trailing data");
  return p;
}

int32_t Executor::add(ArrayDesc desc) {
  std::lock_guard<std::mutex> lock(mutex_);
  int32_t h;
  do {  // ids wrap around after 2^31 - 1 arrays, skipping live ones
    h = next_handle_;
    next_handle_ = next_handle_ == INT32_MAX ? 1 : next_handle_ + 1;
  } while (handles_.count(h));
  handles_.emplace(h, std::move(desc));
  return h;
}

void Executor::free(int32_t handle) {
  ArrayDesc doomed;  // destroyed outside the lock: releasing storage takes the allocator's lock
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = handles_.find(handle);
    if (it == handles_.end()) return;  // double free from a finalizer after dispose(): harmless
    doomed = std::move(it->second);
    handles_.erase(it);
  }
}

ArrayDesc Executor::get(int32_t handle) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = handles_.find(handle);
  if (it == handles_.end()) throw std::runtime_error("[run] handle " + std::to_string(handle) + " is not live (this is a bug)");
  return it->second;
}

size_t Executor::num_handles() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return handles_.size();
}

BoundProgram Executor::bind(const int32_t* code, size_t n, const double* scalars, size_t num_scalars) const {
  BoundProgram b;
  b.code.assign(code, code + n);
  b.scalars.assign(scalars, scalars + num_scalars);
  b.program = decode_program(b.code.data(), n, b.scalars.data(), b.scalars.size());
  b.slots.resize(b.program.num_slots);
  for (auto [h, s] : b.program.inputs) b.slots[s] = get(h);
  return b;
}

// Strides that let `shape` view x's elements in row-major order without a copy, if any exist
// (NumPy's rule: each group of old axes merged or split by the reshape must be contiguous).
static bool view_strides(const ArrayDesc& x, const Shape& shape, Shape& out) {
  out.assign(shape.size(), 1);
  if (x.size() == 0) {
    out = row_major_strides(shape);
    return true;
  }
  Shape od, os;
  for (int i = 0; i < x.ndim(); ++i)
    if (x.shape[i] != 1) od.push_back(x.shape[i]), os.push_back(x.strides[i]);
  size_t ni = 0, oi = 0;
  while (ni < shape.size() && oi < od.size()) {
    int64_t np = shape[ni], op = od[oi];
    size_t nj = ni + 1, oj = oi + 1;
    while (np != op) {
      if (np < op) np *= shape[nj++];
      else op *= od[oj++];
    }
    for (size_t k = oi; k + 1 < oj; ++k)
      if (os[k] != od[k + 1] * os[k + 1]) return false;
    out[nj - 1] = os[oj - 1];
    for (size_t k = nj - 1; k > ni; --k) out[k - 1] = out[k] * shape[k];
    ni = nj, oi = oj;
  }
  return true;
}

static bool is_elementwise(Op op) {
  switch (op_kind(op)) {
    case OpKind::unary: case OpKind::predicate: case OpKind::binary: case OpKind::compare: case OpKind::ternary:
      return true;
    default:
      return op == Op::Cast;
  }
}

void Executor::run_instr(const Instr& instr, std::vector<ArrayDesc>& slots, const std::vector<int32_t>& last_use,
                         const std::vector<bool>& is_output) {
  ArrayDesc out;
  out.dtype = instr.dtype;
  out.shape = instr.shape;
  const ArrayDesc* x = instr.in.empty() ? nullptr : &slots[instr.in[0]];
  auto need_inputs = [&](size_t k) {
    if (instr.in.size() != k) throw std::runtime_error("expected " + std::to_string(k) + " inputs");
    for (int32_t s : instr.in)
      if (!slots[s].storage) throw std::runtime_error("input slot " + std::to_string(s) + " is empty (this is a bug)");
  };
  switch (instr.op) {
    case Op::Identity: {
      // The last input; any others are dependencies only (custom functions order their rules so).
      if (instr.in.empty() || !slots[instr.in.back()].storage) throw std::runtime_error("identity needs an input");
      out = slots[instr.in.back()];
      break;
    }
    case Op::BroadcastTo: {
      need_inputs(1);
      int lead = out.ndim() - x->ndim();
      if (lead < 0) throw std::runtime_error("broadcast to fewer dimensions");
      out.storage = x->storage;
      out.offset = x->offset;
      out.strides.assign(out.ndim(), 0);
      for (int i = 0; i < x->ndim(); ++i) {
        if (x->shape[i] == out.shape[lead + i]) out.strides[lead + i] = x->strides[i];
        else if (x->shape[i] != 1) throw std::runtime_error("shapes do not broadcast");
      }
      break;
    }
    case Op::Transpose: {
      need_inputs(1);
      if (static_cast<int>(instr.ints.size()) != x->ndim()) throw std::runtime_error("bad permutation");
      out.storage = x->storage;
      out.offset = x->offset;
      out.strides.resize(x->ndim());
      for (int i = 0; i < x->ndim(); ++i) out.strides[i] = x->strides[instr.ints[i]];
      break;
    }
    case Op::Slice: {
      need_inputs(1);
      if (static_cast<int>(instr.ints.size()) != 2 * x->ndim() || out.ndim() != x->ndim())
        throw std::runtime_error("bad slice params");
      out.storage = x->storage;
      out.offset = x->offset;
      out.strides.resize(x->ndim());
      for (int i = 0; i < x->ndim(); ++i) {
        int64_t start = instr.ints[2 * i], step = instr.ints[2 * i + 1];
        if (out.shape[i] > 0) out.offset += start * x->strides[i];
        out.strides[i] = x->strides[i] * step;
      }
      break;
    }
    case Op::Reshape: {
      need_inputs(1);
      if (out.size() != x->size()) throw std::runtime_error("reshape changes the size");
      ArrayDesc src = *x;
      Shape strides;
      if (view_strides(src, out.shape, strides)) {  // most reshapes, expandDims and squeeze: a view
        out.storage = src.storage;
        out.offset = src.offset;
        out.strides = strides;
        break;
      }
      {  // a copy first, then a view of it
        ArrayDesc tmp;
        tmp.dtype = src.dtype;
        tmp.shape = src.shape;
        Instr copy = instr;
        copy.op = Op::Copy;
        copy.shape = src.shape;
        backend_.run(copy, {&src}, tmp);
        src = tmp;
      }
      out.storage = src.storage;
      out.offset = src.offset;
      out.strides = row_major_strides(out.shape);
      break;
    }
    default: {
      std::vector<const ArrayDesc*> ins;
      for (int32_t s : instr.in) {
        if (!slots[s].storage) throw std::runtime_error("input slot " + std::to_string(s) + " is empty (this is a bug)");
        ins.push_back(&slots[s]);
      }
      // Donation: an elementwise op may write into a dying, unshared, contiguous input of the
      // same byte size instead of allocating.
      if (is_elementwise(instr.op)) {
        for (int32_t s : instr.in) {
          ArrayDesc& cand = slots[s];
          if (last_use[s] == instr.index && !is_output[s] && cand.storage.use_count() == 1 && cand.offset == 0 &&
              itemsize(cand.dtype) == itemsize(out.dtype) && cand.size() == out.size() && cand.is_row_contiguous() &&
              cand.storage->nbytes == out.nbytes()) {
            out.storage = cand.storage;
            out.strides = row_major_strides(out.shape);
            break;
          }
        }
      }
      backend_.run(instr, ins, out);
    }
  }
  slots[instr.out] = std::move(out);
}

std::vector<ArrayDesc> Executor::run(BoundProgram& bound) {
  Program& p = bound.program;
  std::vector<ArrayDesc>& slots = bound.slots;
  std::vector<int32_t> last_use(p.num_slots, -1);
  std::vector<bool> is_output(p.num_slots, false);
  for (const Instr& in : p.instrs)
    for (int32_t s : in.in) last_use[s] = in.index;
  for (int32_t s : p.outputs) is_output[s] = true;
  for (const Instr& in : p.instrs) {
    try {
      run_instr(in, slots, last_use, is_output);
    } catch (const std::exception& e) {
      slots.clear();  // drop every intermediate now; inputs stay alive in the handle table
      throw std::runtime_error("[eval] instruction " + std::to_string(in.index) + " (" +
                               op_name(static_cast<int32_t>(in.op)) + "): " + e.what());
    }
    for (int32_t s : in.in)
      if (last_use[s] == in.index && !is_output[s]) slots[s] = ArrayDesc();
  }
  std::vector<ArrayDesc> outs;
  for (int32_t s : p.outputs) outs.push_back(slots[s]);
  slots.clear();
  return outs;
}

}  // namespace tessera
