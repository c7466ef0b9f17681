// @file Program decoding and execution, and the backend registry. View ops (identity,
// broadcastTo, transpose, slice and contiguous reshape) only rewrite metadata here; transfers
// stage through host memory; everything else is the instruction's backend's.
#include "executor.h"
#include "replay.h"

#include "cpu/fused.h"

#include <chrono>

#include <algorithm>
#include <array>
#include <climits>
#include <cstdlib>
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

const std::vector<Backend*>& backends() {
  static const std::vector<Backend*> list = [] {
    std::vector<Backend*> v{&cpu_backend()};
    const char* test = std::getenv("TESSERA_TEST_DEVICE");
    if (test && *test && std::string(test) != "0") v.push_back(make_cpu_backend("cpu:1", {Op::Matmul}));
#ifdef TESSERA_HAVE_CUDA
    if (Backend* gpu = cuda_backend()) v.push_back(gpu);  // after cpu:1, whose index tests rely on
#endif
    return v;
  }();
  return list;
}

Backend& backend(int32_t device) {
  const auto& list = backends();
  if (device < 0 || static_cast<size_t>(device) >= list.size())
    throw std::runtime_error("[run] unknown device " + std::to_string(device));
  return *list[device];
}

int64_t checked_numel(const Shape& shape, DType dtype) {
  // Element counts and byte sizes must fit in int64 (and so in size_t): 2^62 bytes at most.
  const int64_t limit = int64_t(1) << 62;
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) throw std::runtime_error("[run] malformed program: negative dimension");
    if (d != 0 && n > limit / d) throw std::runtime_error("[run] malformed program: array size overflows");
    n *= d;
  }
  if (n > limit / static_cast<int64_t>(itemsize(dtype))) throw std::runtime_error("[run] malformed program: array size overflows");
  return n;
}

Program decode_program(const int32_t* d, size_t n, int32_t num_devices) {
  size_t pos = 0;
  auto fail = [](const std::string& what) -> std::runtime_error {
    return std::runtime_error("[run] malformed program: " + what);
  };
  auto next = [&]() -> int32_t {
    if (pos >= n) throw fail("truncated");
    return d[pos++];
  };
  auto count = [&](const char* what) {  // a non-negative count that the remaining words can hold
    int32_t c = next();
    if (c < 0 || static_cast<size_t>(c) > n - pos) throw fail(std::string("bad ") + what + " count");
    return c;
  };
  if (next() != kProgramVersion) throw std::runtime_error("[run] program format version mismatch (the addon and @tessera/core were built from different sources)");
  Program p;
  p.num_slots = next();
  p.num_inputs = next();
  p.num_scalars = next();
  if (p.num_slots < 0 || p.num_inputs < 0 || p.num_inputs > p.num_slots || p.num_scalars < 0) throw fail("bad header");
  // Every slot past the inputs is written by an instruction, which takes at least one word each:
  // a body cannot make the executor allocate more slots than it could ever fill.
  if (static_cast<size_t>(p.num_slots - p.num_inputs) > n - pos) throw fail("more slots than the body can write");
  if (p.num_inputs > (1 << 24)) throw fail("more than 2^24 inputs");
  std::vector<char> defined(p.num_slots, 0);
  std::fill(defined.begin(), defined.begin() + p.num_inputs, 1);
  auto slot = [&](int32_t s) {
    if (s < 0 || s >= p.num_slots) throw fail("slot out of range");
    return s;
  };
  int32_t num_instrs = count("instruction");
  p.instrs.reserve(num_instrs);
  for (int32_t i = 0; i < num_instrs; ++i) {
    Instr in;
    in.index = i;
    int32_t op = next();
    if (op < 0 || op >= static_cast<int32_t>(Op::Count)) throw fail("unknown opcode " + std::to_string(op));
    in.op = static_cast<Op>(op);
    in.device = next();
    if (in.device < 0 || in.device >= num_devices) throw fail("unknown device " + std::to_string(in.device));
    int32_t nin = count("input");
    for (int32_t k = 0; k < nin; ++k) {
      int32_t s = slot(next());
      if (!defined[s]) throw fail("instruction " + std::to_string(i) + " reads slot " + std::to_string(s) + " before it is written");
      in.in.push_back(s);
    }
    int32_t nout = count("output");
    if (nout < 1) throw fail("an instruction needs an output");
    for (int32_t k = 0; k < nout; ++k) {
      OutSpec o;
      o.slot = slot(next());
      if (defined[o.slot]) throw fail("slot " + std::to_string(o.slot) + " is written twice");
      defined[o.slot] = 1;
      int32_t dt = next();
      if (dt < 0 || dt >= kNumDTypes) throw fail("unknown dtype code " + std::to_string(dt));
      o.dtype = static_cast<DType>(dt);
      int32_t ndim = count("dimension");
      for (int32_t j = 0; j < ndim; ++j) o.shape.push_back(next());
      checked_numel(o.shape, o.dtype);
      in.outs.push_back(std::move(o));
    }
    in.dtype = in.outs[0].dtype;
    in.shape = in.outs[0].shape;
    int32_t nint = count("parameter");
    for (int32_t k = 0; k < nint; ++k) in.ints.push_back(next());
    in.num_scalars = next();
    in.scalar_index = next();
    if (in.num_scalars < 0 || in.scalar_index < 0 || int64_t(in.scalar_index) + in.num_scalars > p.num_scalars)
      throw fail("scalar params out of range");
    p.instrs.push_back(std::move(in));
  }
  int32_t num_outputs = count("output");
  for (int32_t i = 0; i < num_outputs; ++i) {
    int32_t s = slot(next());
    if (!defined[s]) throw fail("output slot " + std::to_string(s) + " is never written");
    p.outputs.push_back(s);
  }
  if (pos != n) throw fail("trailing data");
  p.last_use.assign(p.num_slots, -1);
  p.is_output.assign(p.num_slots, false);
  for (const Instr& in : p.instrs)
    for (int32_t s : in.in) p.last_use[s] = in.index;
  for (int32_t s : p.outputs) p.is_output[s] = true;
  p.replaces.assign(p.num_slots, -1);
  for (const Instr& in : p.instrs)
    if (!backend(in.device).supports(in.op))
      throw std::runtime_error(std::string("[run] ") + op_name(static_cast<int32_t>(in.op)) + " is not supported on device " +
                               backend(in.device).name());
  return p;
}

int32_t Executor::add(ArrayDesc desc) {
  std::lock_guard<std::mutex> lock(mutex_);
  int32_t h;
  do {  // ids wrap around after 2^31 - 1 arrays, skipping live ones
    h = next_handle_;
    next_handle_ = next_handle_ == INT32_MAX ? 1 : next_handle_ + 1;
  } while (handles_.count(h));
  handle_nodes_.insert(handles_, h, std::move(desc));
  return h;
}

void Executor::free(int32_t handle) {
  ArrayDesc doomed;  // destroyed outside the lock: releasing storage takes the allocator's lock
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = handles_.find(handle);
  if (it == handles_.end()) return;  // double free from a finalizer after dispose(): harmless
  doomed = handle_nodes_.erase(handles_, it);
}

ArrayDesc Executor::get(int32_t handle) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = handles_.find(handle);
  if (it == handles_.end()) throw std::runtime_error("[run] handle " + std::to_string(handle) + " is not live");
  return it->second;
}

size_t Executor::num_handles() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return handles_.size();
}

void set_replaced(Program& p, int32_t input, int32_t output) {
  if (input < 0 || input >= p.num_inputs || output < 0 || static_cast<size_t>(output) >= p.outputs.size())
    throw std::runtime_error("[keepBody] a replaced input pair is out of range");
  const int32_t slot = p.outputs[output];
  // An input passed through (nothing is computed), or a result that updates two inputs (the
  // first pair stands: one buffer can take it).
  if (slot < p.num_inputs || p.replaces[slot] >= 0) return;
  for (const Instr& in : p.instrs)
    for (const OutSpec& o : in.outs)
      if (o.slot == slot) {
        p.replaces[slot] = input;
        p.last_use[input] = std::max(p.last_use[input], in.index);
        return;
      }
}

std::shared_ptr<const Program> Executor::decode(const int32_t* code, size_t n) {
  return std::make_shared<const Program>(decode_program(code, n, static_cast<int32_t>(backends().size())));
}

int32_t Executor::keep_body(std::shared_ptr<const Program> body) {
  std::shared_ptr<Replay> replay = make_replay(*body);
  std::lock_guard<std::mutex> lock(mutex_);
  int32_t id;
  do {
    id = next_body_;
    next_body_ = next_body_ == INT32_MAX ? 1 : next_body_ + 1;
  } while (bodies_.count(id));
  bodies_.emplace(id, std::move(body));
  if (replay) replays_.emplace(id, std::move(replay));
  return id;
}

std::shared_ptr<Replay> Executor::replay(int32_t id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = replays_.find(id);
  return it == replays_.end() ? nullptr : it->second;
}

std::shared_ptr<const Program> Executor::body(int32_t id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = bodies_.find(id);
  if (it == bodies_.end()) throw std::runtime_error("[run] body " + std::to_string(id) + " is not live");
  return it->second;
}

void Executor::release_body(int32_t id) {
  std::shared_ptr<Replay> replay;  // destroyed outside the lock (it frees device memory)
  std::lock_guard<std::mutex> lock(mutex_);
  bodies_.erase(id);
  auto it = replays_.find(id);
  if (it != replays_.end()) {
    replay = std::move(it->second);
    replays_.erase(it);
  }
}

size_t Executor::num_bodies() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return bodies_.size();
}

BoundProgram Executor::bind(std::shared_ptr<const Program> body, const int32_t* handles, size_t num_handles,
                            const double* scalars, size_t num_scalars) const {
  if (num_handles != static_cast<size_t>(body->num_inputs))
    throw std::runtime_error("[run] the body takes " + std::to_string(body->num_inputs) + " inputs; got " +
                             std::to_string(num_handles));
  if (num_scalars != static_cast<size_t>(body->num_scalars))
    throw std::runtime_error("[run] the body takes " + std::to_string(body->num_scalars) + " scalars; got " +
                             std::to_string(num_scalars));
  BoundProgram b;
  b.scalars.assign(scalars, scalars + num_scalars);
  b.inputs = spare_list();
  b.inputs.reserve(num_handles);
  {
    std::lock_guard<std::mutex> lock(mutex_);  // once for all the inputs
    for (size_t i = 0; i < num_handles; ++i) {
      auto it = handles_.find(handles[i]);
      if (it == handles_.end()) throw std::runtime_error("[run] handle " + std::to_string(handles[i]) + " is not live");
      b.inputs.push_back(it->second);
    }
  }
  b.program = std::move(body);
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

// The fused ops (cpu/fast.cc) on float32/float64, the last axis their rows:
// layerNorm(x, [w], [b]) ints hasW hasB, rmsNorm(x, [w]) ints hasW, scalar eps: w and b are
//   [...P, n], P a prefix of x's leading axes; out like x.
// layerNormBwd(x, [w], g) -> dx, dw, db and rmsNormBwd(x, [w], g) -> dx, dw: ints hasW, scalar
//   eps; g and dx like x, dw and db [...P, n] (w's shape when given).
// rope(x [..., L, D], [offset float64 [...P]]) ints dims (even, <= D), traditional, hasOffset;
//   scalars base, scale, offset; out like x.
// softmax(x) like x; softmaxBwd(y, g) like y (g too); logsumexp(x) -> x's shape without its last axis.
// attention(q [..., H, Lq, D], k [..., Hkv, Lk, D], v [..., Hkv, Lk, Dv], [mask [..., H, Lq, Lk]])
//   -> out [..., H, Lq, Dv], lse [..., H, Lq]; ints mask kind (0 none, 1 additive, 2 causal), scalar scale.
// attentionBwd(q, k, v, [mask], out, lse, g) -> dq, dk, dv like q, k, v.
static void check_fast(const Instr& instr, const Inputs& ins) {
  auto bad = [](const std::string& what) { return std::runtime_error("malformed instruction: " + what); };
  auto flag = [&](size_t i) {
    if (i >= instr.ints.size() || (instr.ints[i] != 0 && instr.ints[i] != 1)) throw bad("fused op flags");
    return instr.ints[i] == 1;
  };
  auto need = [&](bool ok, const char* what) {
    if (!ok) throw bad(what);
  };
  const ArrayDesc& x = *(ins.empty() ? throw bad("fused op without inputs") : ins[0]);
  const DType t = x.dtype;
  need(t == DType::F32 || t == DType::F64, "fused ops take float32 or float64");
  for (const ArrayDesc* a : ins)
    if (a != ins[0] && !(instr.op == Op::Rope && a == ins.back() && ins.size() == 2)) need(a->dtype == t, "fused op operand dtypes differ");
  for (const OutSpec& o : instr.outs) need(o.dtype == t, "fused op output dtype");
  need(x.ndim() >= 1, "fused op operand must have at least 1 dimension");
  const int nd = x.ndim();
  const int64_t n = x.shape[nd - 1];
  auto prefix_of_x = [&](const Shape& p, int lead) {  // p's axes before `lead` are x's first ones
    need(static_cast<int>(p.size()) >= lead && static_cast<int>(p.size()) - lead <= nd - 1, "fused op parameter rank");
    for (size_t d = 0; d + lead < p.size(); ++d) need(p[d] == x.shape[d], "fused op parameter shape is not a prefix of x's");
  };
  auto param = [&](const Shape& p) {  // [...P, n]
    prefix_of_x(p, 1);
    need(!p.empty() && p.back() == n, "fused op parameter must end with x's last axis");
  };
  switch (instr.op) {
    case Op::LayerNorm: case Op::RmsNorm: {
      const bool layer = instr.op == Op::LayerNorm;
      need(instr.ints.size() == (layer ? 2u : 1u) && instr.num_scalars == 1, "norm params");
      const bool hw = flag(0), hb = layer && flag(1);
      need(ins.size() == 1u + hw + hb && instr.outs.size() == 1, "norm operand count");
      for (size_t i = 1; i < ins.size(); ++i) param(ins[i]->shape), need(ins[i]->shape == ins[1]->shape, "weight and bias shapes differ");
      need(instr.shape == x.shape, "norm output shape");
      return;
    }
    case Op::LayerNormBwd: case Op::RmsNormBwd: {
      const bool layer = instr.op == Op::LayerNormBwd;
      // ints [has weight, (an addend follows g: the fusion pass's on the gpu, epilogue.ts)]
      need((instr.ints.size() == 1 || instr.ints.size() == 2) && instr.num_scalars == 1, "norm backward params");
      const bool hw = flag(0), plus = instr.ints.size() == 2 && flag(1);
      need(ins.size() == 2u + hw + plus && instr.outs.size() == (layer ? 3u : 2u), "norm backward operand count");
      need(ins[1 + hw]->shape == x.shape && instr.shape == x.shape, "norm backward cotangent shape");
      if (plus) need(ins.back()->shape == x.shape, "norm backward addend shape");
      const Shape& p = instr.outs[1].shape;
      param(p);
      if (hw) need(ins[1]->shape == p, "norm backward weight shape");
      if (layer) need(instr.outs[2].shape == p, "norm backward bias shape");
      return;
    }
    case Op::Rope: {
      need(instr.ints.size() == 3 && instr.num_scalars == 3 && instr.outs.size() == 1, "rope params");
      const bool ho = (flag(1), flag(2));
      need(ins.size() == 1u + ho, "rope operand count");
      need(nd >= 2 && instr.shape == x.shape, "rope shapes");
      const int64_t dims = instr.ints[0];
      need(dims >= 2 && dims % 2 == 0 && dims <= n, "rope dims");
      if (ho) {
        need(ins[1]->dtype == DType::F64, "rope offset must be float64");
        need(ins[1]->ndim() <= nd - 2, "rope offset rank");
        prefix_of_x(ins[1]->shape, 0);
      }
      return;
    }
    case Op::Softmax: case Op::LogSumExp: {
      need(ins.size() == 1 && instr.outs.size() == 1 && instr.ints.empty(), "softmax operands");
      const Shape want = instr.op == Op::Softmax ? x.shape : Shape(x.shape.begin(), x.shape.end() - 1);
      need(instr.shape == want, "softmax output shape");
      return;
    }
    case Op::SoftmaxBwd:
      need(ins.size() == 2 && instr.outs.size() == 1 && instr.ints.empty(), "softmaxBwd operands");
      need(ins[1]->shape == x.shape && instr.shape == x.shape, "softmaxBwd shapes");
      return;
    case Op::Attention: case Op::AttentionBwd: {
      const bool fwd = instr.op == Op::Attention;
      need(instr.ints.size() == 1 && instr.ints[0] >= 0 && instr.ints[0] <= 2 && instr.num_scalars == 1, "attention params");
      const bool hm = instr.ints[0] == 1;
      need(ins.size() == (fwd ? 3u : 6u) + hm && instr.outs.size() == (fwd ? 2u : 3u), "attention operand count");
      const ArrayDesc &k = *ins[1], &v = *ins[2];
      need(nd >= 3 && k.ndim() == nd && v.ndim() == nd, "attention operand ranks");
      const Shape batch(x.shape.begin(), x.shape.end() - 3);
      auto with = [&](std::initializer_list<int64_t> core) {
        Shape s = batch;
        s.insert(s.end(), core);
        return s;
      };
      const int64_t H = x.shape[nd - 3], Lq = x.shape[nd - 2], D = n, Hkv = k.shape[nd - 3], Lk = k.shape[nd - 2], Dv = v.shape[nd - 1];
      need(Hkv >= 1 && H % Hkv == 0, "attention heads");
      need(k.shape == with({Hkv, Lk, D}) && v.shape == with({Hkv, Lk, Dv}), "attention key/value shapes");
      if (hm) need(ins[3]->shape == with({H, Lq, Lk}), "attention mask shape");
      const Shape os = with({H, Lq, Dv}), ls = with({H, Lq});
      if (fwd) {
        need(instr.outs[0].shape == os && instr.outs[1].shape == ls, "attention output shapes");
      } else {
        need(ins[3 + hm]->shape == os && ins[4 + hm]->shape == ls && ins[5 + hm]->shape == os, "attention backward operand shapes");
        need(instr.outs[0].shape == x.shape && instr.outs[1].shape == k.shape && instr.outs[2].shape == v.shape,
             "attention backward output shapes");
      }
      return;
    }
    default: throw bad("not a fused op");
  }
}

// Checks an instruction's operands against its outputs before any kernel touches a byte, so a
// program built by hand (the internal binding takes any Int32Array) can fail but never read or
// write outside a buffer. The kernels rely on exactly these facts.
// A fused chain (layout in cpu/fused.h): every register index refers to an earlier register, every
// step's operand kinds fit its op, inputs broadcast to the output shape, outputs match their registers.
// One chain: its ints `v`, its inputs ins[in0, in0 + n_in), its outputs instr.outs[out0, out0 + outs).
static void check_chain(const std::vector<int64_t>& v, const Instr& instr, const Inputs& all_ins, int64_t in0, int64_t n_in,
                        int64_t out0, int64_t outs) {
  auto bad = [](const std::string& what) { return std::runtime_error("malformed fused instruction: " + what); };
  const ArrayDesc* const* ins = all_ins.data() + in0;
  if (v.size() < 3) throw bad("too short");
  const DType t = static_cast<DType>(v[0]);
  if (t != DType::F32 && t != DType::F64) throw bad("chains compute in float32 or float64");
  const int64_t n_steps = v[1];
  if (n_steps < 1 || n_steps > 4096 || static_cast<int64_t>(v.size()) < 3 + 5 * n_steps) throw bad("step count");
  const int64_t n_out = v[2 + 5 * n_steps];
  if (n_out < 1 || n_out != outs || out0 + n_out > static_cast<int64_t>(instr.outs.size()) ||
      static_cast<int64_t>(v.size()) != 3 + 5 * n_steps + n_out)
    throw bad("output count");
  const Shape& shape = instr.outs[out0].shape;
  std::vector<int64_t> kind(n_in + n_steps);
  for (int64_t i = 0; i < n_in; ++i) {
    const ArrayDesc& x = *ins[i];
    if (x.dtype != t && x.dtype != DType::Bool) throw bad("input dtype");
    if (x.ndim() > static_cast<int>(shape.size())) throw bad("input rank");
    const int lead = static_cast<int>(shape.size()) - x.ndim();
    for (int d = 0; d < x.ndim(); ++d)
      if (x.shape[d] != 1 && x.shape[d] != shape[lead + d]) throw bad("input does not broadcast to the output");
    kind[i] = x.dtype == DType::Bool ? cpu::kRegBool : cpu::kRegNumber;
  }
  for (int64_t k = 0; k < n_steps; ++k) {
    const int64_t* s = &v[2 + 5 * k];
    const int64_t type = s[1], reg = n_in + k;
    if (type != cpu::kRegNumber && type != cpu::kRegBool) throw bad("register kind");
    kind[reg] = type;
    int operands = 0;
    if (s[0] == cpu::kFusedConst) {
      if (s[2] < 0 || s[2] >= instr.num_scalars) throw bad("constant's scalar index");
      if (s[3] != -1 || s[4] != -1) throw bad("constant operands");
      continue;
    }
    if (s[0] < 0 || s[0] >= static_cast<int64_t>(Op::Count)) throw bad("opcode");
    const Op op = static_cast<Op>(s[0]);
    const OpKind k_op = op_kind(op);
    if (op == Op::Cast || k_op == OpKind::unary || k_op == OpKind::predicate) operands = 1;
    else if (k_op == OpKind::binary || k_op == OpKind::compare) operands = 2;
    else if (op == Op::Where) operands = 3;
    else throw bad(std::string(op_name(int32_t(op))) + " is not elementwise");
    for (int j = 0; j < 3; ++j) {
      if (j < operands ? (s[2 + j] < 0 || s[2 + j] >= reg) : s[2 + j] != -1) throw bad("operand register");
    }
    const int64_t a = kind[s[2]];
    bool ok;
    if (op == Op::Where) ok = a == cpu::kRegBool && kind[s[3]] == type && kind[s[4]] == type;
    else if (op == Op::Cast) ok = a != type;
    else if (k_op == OpKind::predicate) ok = a == cpu::kRegNumber && type == cpu::kRegBool;
    else if (k_op == OpKind::compare) ok = kind[s[3]] == a && type == cpu::kRegBool;
    else ok = a == type && (operands == 1 || kind[s[3]] == a);
    if (!ok) throw bad(std::string("operand kinds of ") + op_name(int32_t(op)));
  }
  for (int64_t j = 0; j < n_out; ++j) {
    const int64_t r = v[3 + 5 * n_steps + j];
    if (r < n_in || r >= n_in + n_steps) throw bad("output register");
    const OutSpec& o = instr.outs[out0 + j];
    if (o.shape != shape || o.dtype != (kind[r] == cpu::kRegBool ? DType::Bool : t)) throw bad("output shape or dtype");
  }
}

// A batch of chains (cpu/fused.h): each member is checked as a chain of its own.
static void check_fused(const Instr& instr, const Inputs& ins) {
  const int64_t members = cpu::fused_members(instr.ints);
  if (members == 1) return check_chain(instr.ints, instr, ins, 0, static_cast<int64_t>(ins.size()), 0, static_cast<int64_t>(instr.outs.size()));
  const std::vector<int64_t>& v = instr.ints;
  const int64_t n_in = static_cast<int64_t>(ins.size()), n_out = static_cast<int64_t>(instr.outs.size());
  if (members < 2 || members > cpu::kMaxFusedMembers || n_in % members != 0 || n_out % members != 0)
    throw std::runtime_error("malformed fused instruction: member count");
  const std::vector<int64_t> chain(v.begin(), v.end() - 1);
  for (int64_t k = 0; k < members; ++k) {
    // The gpu's batch kernel reads every member as member 0's operand types.
    for (int64_t i = 0; i < n_in / members; ++i) {
      const ArrayDesc& x = *ins[k * (n_in / members) + i];
      if (x.shape != instr.outs[k * (n_out / members)].shape)
        throw std::runtime_error("malformed fused instruction: a batched chain's operand differs from its output's shape");
      if (x.dtype != ins[i]->dtype) throw std::runtime_error("malformed fused instruction: batched chains' operand dtypes differ");
    }
    check_chain(chain, instr, ins, k * (n_in / members), n_in / members, k * (n_out / members), n_out / members);
  }
}

static void check_operands(const Instr& instr, const Inputs& ins) {
  auto bad = [](const std::string& what) { return std::runtime_error("malformed instruction: " + what); };
  auto expect_counts = [&](size_t nin, size_t nout) {
    if (ins.size() != nin || instr.outs.size() != nout)
      throw bad("expected " + std::to_string(nin) + " inputs and " + std::to_string(nout) + " outputs");
  };
  auto same_shape_as_out = [&](const ArrayDesc& x) {
    if (x.shape != instr.shape) throw bad("operand shape differs from the output's");
  };
  auto dtype_is = [&](const ArrayDesc& x, DType t) {
    if (x.dtype != t) throw bad(std::string("operand dtype ") + dtype_name(x.dtype) + ", expected " + dtype_name(t));
  };
  const int out_ndim = static_cast<int>(instr.shape.size());
  if (instr.op == Op::Fused) return check_fused(instr, ins);
  switch (op_kind(instr.op)) {
    case OpKind::source:
      expect_counts(0, 1);
      if (instr.num_scalars != (instr.op == Op::Arange ? 2 : 1)) throw bad("wrong number of scalars");
      if (instr.op == Op::Arange && out_ndim != 1) throw bad("arange is 1-D");
      return;
    case OpKind::unary: case OpKind::binary:
      expect_counts(op_kind(instr.op) == OpKind::unary ? 1 : 2, 1);
      for (const ArrayDesc* x : ins) same_shape_as_out(*x), dtype_is(*x, instr.dtype);
      return;
    case OpKind::predicate: case OpKind::compare:
      expect_counts(op_kind(instr.op) == OpKind::predicate ? 1 : 2, 1);
      if (instr.dtype != DType::Bool) throw bad("a predicate's output is bool");
      for (const ArrayDesc* x : ins) same_shape_as_out(*x), dtype_is(*x, ins[0]->dtype);
      return;
    case OpKind::ternary:
      expect_counts(3, 1);
      dtype_is(*ins[0], DType::Bool);
      for (const ArrayDesc* x : ins) same_shape_as_out(*x);
      dtype_is(*ins[1], instr.dtype), dtype_is(*ins[2], instr.dtype);
      return;
    case OpKind::reduce: {
      expect_counts(1, 1);
      const ArrayDesc& x = *ins[0];
      dtype_is(x, instr.dtype);
      Shape kept;
      int64_t prev = -1;
      for (int64_t a : instr.ints) {
        if (a <= prev || a >= x.ndim()) throw bad("reduction axes must be sorted, unique and in range");
        prev = a;
      }
      for (int d = 0; d < x.ndim(); ++d)
        if (std::find(instr.ints.begin(), instr.ints.end(), d) == instr.ints.end()) kept.push_back(x.shape[d]);
      if (kept != instr.shape) throw bad("reduction output shape");
      return;
    }
    default: break;
  }
  switch (instr.op) {
    case Op::Copy: case Op::Transfer:
      expect_counts(1, 1);
      same_shape_as_out(*ins[0]), dtype_is(*ins[0], instr.dtype);
      return;
    case Op::Cast:
      expect_counts(1, 1);
      same_shape_as_out(*ins[0]);
      return;
    case Op::Divmod:
      expect_counts(2, 2);
      for (const ArrayDesc* x : ins) same_shape_as_out(*x), dtype_is(*x, instr.dtype);
      if (instr.outs[1].shape != instr.shape || instr.outs[1].dtype != instr.dtype) throw bad("divmod outputs differ");
      return;
    case Op::Scan: {  // ints: kind (0 sum, 1 prod, 2 max, 3 min, 4 logaddexp), axis, reverse, inclusive
      expect_counts(1, 1);
      const ArrayDesc& x = *ins[0];
      same_shape_as_out(x), dtype_is(x, instr.dtype);
      if (instr.ints.size() != 4 || instr.ints[0] < 0 || instr.ints[0] > 4) throw bad("scan kind");
      if (instr.ints[1] < 0 || instr.ints[1] >= x.ndim()) throw bad("axis out of range");
      if ((instr.ints[2] != 0 && instr.ints[2] != 1) || (instr.ints[3] != 0 && instr.ints[3] != 1)) throw bad("scan flags");
      bool is_float = x.dtype == DType::F16 || x.dtype == DType::BF16 || x.dtype == DType::F32 || x.dtype == DType::F64;
      if (instr.ints[0] <= 1 && x.dtype == DType::Bool) throw bad("scan sum or product of bool");
      if (instr.ints[0] == 4 && !is_float) throw bad("logaddexp scan of a non-floating dtype");
      return;
    }
    case Op::Sort: {  // x -> [values, uint32 indices] along ints[0] (ints[1..2]: a selection)
      expect_counts(1, 2);
      const ArrayDesc& x = *ins[0];
      same_shape_as_out(x), dtype_is(x, instr.dtype);
      if ((instr.ints.size() != 1 && instr.ints.size() != 3) || instr.ints[0] < 0 || instr.ints[0] >= x.ndim()) throw bad("axis out of range");
      if (instr.ints.size() == 3 && (instr.ints[1] < 0 || instr.ints[1] >= x.shape[instr.ints[0]] || (instr.ints[2] != 0 && instr.ints[2] != 1)))
        throw bad("selection kth out of range");  // ints [axis, kth, sort_tail]: a partition
      if (instr.outs[1].shape != instr.shape || instr.outs[1].dtype != DType::U32) throw bad("sort indices output");
      return;
    }
    case Op::Cholesky: case Op::Inv: case Op::Solve: case Op::Qr: case Op::Eigh: case Op::Svd: {
      // linalg: a [..., m, n] float32/float64 (square but for qr and svd); outputs share its batch
      // axes: cholesky, inv -> [.., n, n]; solve(a, b [.., n, k]) -> [.., n, k]; qr -> Q [.., m, kk],
      // R [.., kk, n]; eigh -> w [.., n], V [.., n, n]; svd -> U [.., m, kk], S [.., kk], Vt [.., kk, n].
      const bool solve = instr.op == Op::Solve;
      const size_t nout = instr.op == Op::Svd ? 3 : instr.op == Op::Qr || instr.op == Op::Eigh ? 2 : 1;
      expect_counts(solve ? 2 : 1, nout);
      const ArrayDesc& a = *ins[0];
      if (a.dtype != DType::F32 && a.dtype != DType::F64) throw bad("linalg operands are float32 or float64");
      if (a.ndim() < 2) throw bad("linalg operands have at least 2 dimensions");
      const int lead = a.ndim() - 2;
      const int64_t m = a.shape[lead], n = a.shape[lead + 1], kk = std::min(m, n);
      if (instr.op != Op::Qr && instr.op != Op::Svd && m != n) throw bad("linalg operand must be square");
      const Shape batch(a.shape.begin(), a.shape.begin() + lead);
      auto expect_out = [&](size_t i, Shape core) {
        Shape want = batch;
        want.insert(want.end(), core.begin(), core.end());
        if (instr.outs[i].shape != want || instr.outs[i].dtype != a.dtype) throw bad("linalg output shape or dtype");
      };
      switch (instr.op) {
        case Op::Cholesky: case Op::Inv: expect_out(0, {n, n}); break;
        case Op::Solve: {
          const ArrayDesc& b = *ins[1];
          dtype_is(b, a.dtype);
          if (b.ndim() != a.ndim() || !std::equal(batch.begin(), batch.end(), b.shape.begin()) || b.shape[lead] != n)
            throw bad("solve operands do not match");
          expect_out(0, {n, b.shape[lead + 1]});
          break;
        }
        case Op::Qr: expect_out(0, {m, kk}), expect_out(1, {kk, n}); break;
        case Op::Eigh: expect_out(0, {n}), expect_out(1, {n, n}); break;
        default: expect_out(0, {m, kk}), expect_out(1, {kk}), expect_out(2, {kk, n}); break;
      }
      return;
    }
    case Op::RandomBits: {  // key [K..., 2] uint32 -> [K..., S...] uint32
      expect_counts(1, 1);
      const ArrayDesc& key = *ins[0];
      dtype_is(key, DType::U32);
      if (instr.dtype != DType::U32) throw bad("randomBits output must be uint32");
      if (key.ndim() < 1 || key.shape.back() != 2) throw bad("randomBits key must have a last axis of 2");
      if (out_ndim < key.ndim() - 1 || !std::equal(key.shape.begin(), key.shape.end() - 1, instr.shape.begin()))
        throw bad("randomBits output must start with the key's batch shape");
      return;
    }
    case Op::Argmax: case Op::Argmin: {
      expect_counts(1, 1);
      const ArrayDesc& x = *ins[0];
      if (instr.ints.size() != 1 || instr.ints[0] < 0 || instr.ints[0] >= x.ndim()) throw bad("axis out of range");
      Shape kept = x.shape;
      kept.erase(kept.begin() + instr.ints[0]);
      if (kept != instr.shape || instr.dtype != DType::U32) throw bad("arg-reduction output");
      return;
    }
    case Op::Matmul: {
      const int64_t epilogue = matmul_epilogue(instr);
      if (instr.ints.size() > 1 || epilogue < 0 || epilogue > (kMatmulAddend | kMatmulBias)) throw bad("matmul epilogue");
      if (epilogue && instr.dtype != DType::F32 && instr.dtype != DType::F64) throw bad("matmul epilogues take float32 or float64");
      expect_counts(2 + (epilogue & kMatmulAddend ? 1 : 0) + (epilogue & kMatmulBias ? 1 : 0), 1);
      if (const ArrayDesc* c = matmul_addend(instr, ins)) same_shape_as_out(*c), dtype_is(*c, instr.dtype);
      if (const ArrayDesc* bias = matmul_bias(instr, ins)) {
        if (bias->ndim() != 1 || instr.shape.empty() || bias->shape[0] != instr.shape.back()) throw bad("matmul bias must have the output's last axis");
        dtype_is(*bias, instr.dtype);
      }
      const ArrayDesc &a = *ins[0], &b = *ins[1];
      int n = a.ndim();
      if (n < 2 || b.ndim() != n) throw bad("matmul operands must have equal ranks of at least 2");
      for (int d = 0; d < n - 2; ++d)
        if (a.shape[d] != b.shape[d]) throw bad("matmul batch shapes differ");
      if (a.shape[n - 1] != b.shape[n - 2]) throw bad("matmul shapes do not match");
      dtype_is(a, instr.dtype), dtype_is(b, instr.dtype);
      Shape product;
      for (int d = 0; d < n - 1; ++d) product.push_back(a.shape[d]);
      product.push_back(b.shape[n - 1]);
      if (instr.shape == product) return;
      // With an epilogue the result may be the product's rows reshaped (their length kept).
      if (!epilogue || out_ndim < 1 || instr.shape.back() != product.back() ||
          checked_numel(instr.shape, instr.dtype) != checked_numel(product, instr.dtype))
        throw bad("matmul output shape does not match its operands");
      return;
    }
    case Op::Concatenate: {
      if (ins.empty() || instr.outs.size() != 1) throw bad("concatenate needs inputs and one output");
      if (instr.ints.size() != 1 || instr.ints[0] < 0 || instr.ints[0] >= out_ndim) throw bad("axis out of range");
      int64_t axis = instr.ints[0], total = 0;
      for (const ArrayDesc* x : ins) {
        dtype_is(*x, instr.dtype);
        if (x->ndim() != out_ndim) throw bad("concatenate ranks differ");
        for (int d = 0; d < out_ndim; ++d)
          if (d != axis && x->shape[d] != instr.shape[d]) throw bad("concatenate shapes differ");
        total += x->shape[axis];
      }
      if (total != instr.shape[axis]) throw bad("concatenate output size");
      return;
    }
    case Op::SliceUpdate: {
      expect_counts(2, 1);
      const ArrayDesc &base = *ins[0], &update = *ins[1];
      same_shape_as_out(base), dtype_is(base, instr.dtype), dtype_is(update, instr.dtype);
      if (update.ndim() != out_ndim || static_cast<int>(instr.ints.size()) != 2 * out_ndim) throw bad("bad slice params");
      for (int d = 0; d < out_ndim; ++d) {
        int64_t start = instr.ints[2 * d], step = instr.ints[2 * d + 1], len = update.shape[d];
        if (len > 0 && (start < 0 || start >= base.shape[d] || step == 0 || start + (len - 1) * step < 0 ||
                        start + (len - 1) * step >= base.shape[d]))
          throw bad("slice out of bounds");
      }
      return;
    }
    case Op::Gather: case Op::Scatter: {
      // gather(x, idx): idx has the output's shape, x it too except along the axis.
      // scatter(base, idx, updates): base has the output's shape, idx the updates', and the
      // updates the output's except along the axis. Indices are checked by the kernel as read.
      const bool gather = instr.op == Op::Gather;
      expect_counts(gather ? 2 : 3, 1);
      const ArrayDesc &data = *ins[gather ? 0 : 2], &idx = *ins[1];
      const Shape& full = gather ? instr.shape : data.shape;
      if (instr.ints.size() != (gather ? 1u : 2u) || instr.ints[0] < 0 || instr.ints[0] >= out_ndim) throw bad("axis out of range");
      if (!gather && (instr.ints[1] < 0 || instr.ints[1] > 4)) throw bad("unknown scatter mode");
      if (idx.dtype == DType::Bool || idx.dtype >= DType::F16) throw bad("indices must have an integer dtype");
      if (data.ndim() != out_ndim || idx.shape != full) throw bad("index shape differs");
      for (int d = 0; d < out_ndim; ++d)
        if (d != instr.ints[0] && data.shape[d] != instr.shape[d]) throw bad("operand shapes differ off the axis");
      dtype_is(data, instr.dtype);
      if (!gather) same_shape_as_out(*ins[0]), dtype_is(*ins[0], instr.dtype);
      return;
    }
    case Op::Conv: case Op::ConvWeightGrad: {
      // conv(x [N, S..., Cin], w [Cout, K..., Cin/groups]) -> [N, O..., Cout]; ints: D, groups,
      // flip, then per dim stride, padLo, padHi, kernelDilation, inputDilation, where O is
      // floor((dilated S + padLo + padHi - dilated K) / stride) + 1 (padding may be negative).
      // convWeightGrad(x, ct [N, O..., Cout]) -> w's shape, with the same ints.
      expect_counts(2, 1);
      const bool fwd = instr.op == Op::Conv;
      const ArrayDesc &x = *ins[0];
      const Shape& w = fwd ? ins[1]->shape : instr.shape;
      const Shape& y = fwd ? instr.shape : ins[1]->shape;
      if (instr.ints.size() < 3) throw bad("conv params");
      const int64_t D = instr.ints[0], groups = instr.ints[1];
      if (D < 1 || D > 8 || static_cast<int64_t>(instr.ints.size()) != 3 + 5 * D) throw bad("conv params");
      if (x.ndim() != D + 2 || ins[1]->ndim() != D + 2 || out_ndim != D + 2) throw bad("conv ranks");
      if (x.dtype != DType::F16 && x.dtype != DType::BF16 && x.dtype != DType::F32 && x.dtype != DType::F64)
        throw bad("conv of a non-floating dtype");
      dtype_is(x, instr.dtype), dtype_is(*ins[1], instr.dtype);
      if (instr.ints[2] != 0 && instr.ints[2] != 1) throw bad("conv flip flag");
      const int64_t cin = x.shape[D + 1], cout = w[0];
      if (groups < 1 || cin % groups != 0 || cout % groups != 0 || w[D + 1] * groups != cin)
        throw bad("conv channels and groups");
      if (y[0] != x.shape[0] || y[D + 1] != cout) throw bad("conv output batch or channels");
      // Bounds that keep every index computation well inside int64.
      constexpr int64_t kMaxStep = int64_t(1) << 24, kMaxPad = int64_t(1) << 40;
      for (int64_t d = 0; d < D; ++d) {
        auto p = [&](int k) { return instr.ints[3 + k * D + d]; };
        const int64_t stride = p(0), lo = p(1), hi = p(2), kdil = p(3), idil = p(4), k = w[1 + d], n = x.shape[1 + d];
        if (stride < 1 || kdil < 1 || idil < 1 || stride > kMaxStep || kdil > kMaxStep || idil > kMaxStep ||
            lo < -kMaxPad || lo > kMaxPad || hi < -kMaxPad || hi > kMaxPad || k < 1)
          throw bad("conv stride, dilation, padding or kernel size");
        const int64_t padded = (n == 0 ? 0 : (n - 1) * idil + 1) + lo + hi, keff = (k - 1) * kdil + 1;
        const int64_t o = padded < keff ? 0 : (padded - keff) / stride + 1;
        if (y[1 + d] != o) throw bad("conv output shape");
      }
      return;
    }
    case Op::Window: case Op::WindowAdd: {
      // window(x [N, S..., C]) -> [N, O..., K..., C] with O = floor((S - dilated K) / stride) + 1,
      // and windowAdd the other way round; ints: D, then per dim kernel, stride, dilation.
      expect_counts(1, 1);
      const ArrayDesc& src = *ins[0];
      dtype_is(src, instr.dtype);
      const bool fwd = instr.op == Op::Window;
      const Shape& xs = fwd ? src.shape : instr.shape;
      const Shape& ws = fwd ? instr.shape : src.shape;
      if (instr.ints.empty()) throw bad("window params");
      const int64_t D = instr.ints[0];
      if (D < 1 || D > 8 || static_cast<int64_t>(instr.ints.size()) != 1 + 3 * D) throw bad("window params");
      if (static_cast<int64_t>(xs.size()) != D + 2 || static_cast<int64_t>(ws.size()) != 2 * D + 2) throw bad("window ranks");
      if (!fwd && src.dtype != DType::F16 && src.dtype != DType::BF16 && src.dtype != DType::F32 && src.dtype != DType::F64)
        throw bad("windowAdd of a non-floating dtype");
      if (xs[0] != ws[0] || xs[D + 1] != ws[2 * D + 1]) throw bad("window batch or channels");
      for (int64_t d = 0; d < D; ++d) {
        const int64_t k = instr.ints[1 + d], stride = instr.ints[1 + D + d], dil = instr.ints[1 + 2 * D + d];
        if (k < 1 || stride < 1 || dil < 1 || k > (int64_t(1) << 31) || stride > (int64_t(1) << 24) || dil > (int64_t(1) << 24))
          throw bad("window kernel, stride or dilation");
        const int64_t keff = (k - 1) * dil + 1, o = xs[1 + d] < keff ? 0 : (xs[1 + d] - keff) / stride + 1;
        if (ws[1 + d] != o || ws[1 + D + d] != k) throw bad("window output shape");
      }
      return;
    }
    case Op::LayerNorm: case Op::RmsNorm: case Op::LayerNormBwd: case Op::RmsNormBwd: case Op::Rope:
    case Op::Softmax: case Op::SoftmaxBwd: case Op::LogSumExp: case Op::Attention: case Op::AttentionBwd:
      return check_fast(instr, ins);
    case Op::Identity:
      return;  // checked where its outputs are bound
    default:  // views: their geometry is checked where they are built
      expect_counts(1, 1);
      dtype_is(*ins[0], instr.dtype);
      return;
  }
}

// n consecutive values that something else owns (a local, a vector, a std::array).
namespace {
template <class T>
struct Span {
  T* first;
  size_t n;
  T* begin() const { return first; }
  T* end() const { return first + n; }
  size_t size() const { return n; }
  T& operator[](size_t k) const { return first[k]; }
};
}  // namespace

namespace {
// What a thread reuses from run to run, so a small evaluation allocates none of it: descriptor
// vectors (a run's `slots` keep their length with every descriptor released, since growing a
// vector value-initializes, that is zeroes, each new descriptor, which showed in the cost of a
// tiny evaluation; `lists` are empty) and an instruction's operand pointers (which only point
// into the slots, so keeping them holds nothing alive). One thread_local, looked up once per run:
// each lookup is a call in a shared library.
struct ThreadScratch {
  std::vector<std::vector<ArrayDesc>> slots, lists;
  Inputs ins;
  Outputs outp;
};
ThreadScratch& thread_scratch() {
  thread_local ThreadScratch s;
  return s;
}
// Keeps an emptied list for a later spare_list() (a few, of bounded capacity).
void give_back(ThreadScratch& ts, std::vector<ArrayDesc>&& v) {
  v.clear();
  if (ts.lists.size() < 8 && v.capacity() > 0 && v.capacity() <= 4096) ts.lists.push_back(std::move(v));
}
}  // namespace

void Executor::run_instr(const Program& p, const Instr& instr, std::vector<ArrayDesc>& slots, const double* scalars,
                         const std::vector<const Storage*>* pinned, Inputs& ins, Outputs& outp) {
  Backend& be = backend(instr.device);
  ins.clear();
  for (int32_t s : instr.in) ins.push_back(&slots[s]);
  for (const ArrayDesc* x : ins)
    if (!x->storage) throw std::runtime_error("an input slot is empty (this is a bug)");
  check_operands(instr, ins);
  for (const ArrayDesc* x : ins)
    if (x->device != instr.device && instr.op != Op::Transfer)
      throw std::runtime_error(std::string("an input is on device ") + backend(x->device).name() + " (this is a bug)");
  auto need_inputs = [&](size_t k) {
    if (ins.size() != k || instr.outs.size() != 1)
      throw std::runtime_error("expected " + std::to_string(k) + " inputs and one output");
  };
  // The output of the view and transfer cases (the others make their own).
  ArrayDesc out;
  if (instr.op == Op::Transfer || instr.op == Op::BroadcastTo || instr.op == Op::Transpose || instr.op == Op::Slice ||
      instr.op == Op::Reshape) {
    out.dtype = instr.dtype;
    out.shape = instr.shape;
    out.device = instr.device;
  }
  const ArrayDesc* x = ins.empty() ? nullptr : ins[0];
  switch (instr.op) {
    case Op::Identity: {
      // Output k is input nIn - nOut + k; the inputs before those are dependencies only (custom
      // functions order their rules with them).
      size_t nout = instr.outs.size();
      if (ins.size() < nout) throw std::runtime_error("identity needs an input per output");
      for (size_t k = 0; k < nout; ++k) {
        const ArrayDesc& src = *ins[ins.size() - nout + k];
        if (src.shape != instr.outs[k].shape || src.dtype != instr.outs[k].dtype)
          throw std::runtime_error("identity output does not match its input");
        slots[instr.outs[k].slot] = src;
      }
      return;
    }
    case Op::Transfer: {
      need_inputs(1);
      Backend& from = backend(x->device);
      out.strides = row_major_strides(out.shape);
      out.storage = be.allocator().allocate(out.nbytes());
      from.synchronize();
      if (&be == &cpu_backend()) {  // read straight into the host output
        from.read(*x, out.storage->data);
      } else if (&from == &cpu_backend() && x->is_row_contiguous() && out.nbytes() > 0) {  // write straight from the host input
        be.write(out, x->bytes());
      } else {
        std::vector<uint8_t> staging(out.nbytes());
        from.read(*x, staging.data());
        be.write(out, staging.data());
      }
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
      if (static_cast<int>(instr.ints.size()) != x->ndim() || out.ndim() != x->ndim()) throw std::runtime_error("bad permutation");
      std::vector<char> seen(x->ndim(), 0);
      out.storage = x->storage;
      out.offset = x->offset;
      out.strides.resize(x->ndim());
      for (int i = 0; i < x->ndim(); ++i) {
        int64_t a = instr.ints[i];
        if (a < 0 || a >= x->ndim() || seen[a]++ || out.shape[i] != x->shape[a]) throw std::runtime_error("bad permutation");
        out.strides[i] = x->strides[a];
      }
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
        int64_t start = instr.ints[2 * i], step = instr.ints[2 * i + 1], len = out.shape[i];
        // Every index start + k * step (k < len) must lie in [0, x.shape[i]).
        if (len > 0 && (start < 0 || start >= x->shape[i] || step == 0 || start + (len - 1) * step < 0 ||
                        start + (len - 1) * step >= x->shape[i]))
          throw std::runtime_error("slice out of bounds");
        if (len > 0) out.offset += start * x->strides[i];
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
        tmp.device = src.device;
        Instr copy = instr;
        copy.op = Op::Copy;
        copy.shape = src.shape;
        copy.outs[0].shape = src.shape;
        be.run(copy, {&src}, {&tmp}, Scalars{scalars});
        src = tmp;
      }
      out.storage = src.storage;
      out.offset = src.offset;
      out.strides = row_major_strides(out.shape);
      break;
    }
    default: {
      // One output (nearly every instruction) needs no vector of descriptors.
      const size_t nout = instr.outs.size();
      ArrayDesc single;
      std::vector<ArrayDesc> several(nout > 1 ? nout : 0);
      const Span<ArrayDesc> outs{nout > 1 ? several.data() : &single, nout};
      outp.clear();
      for (size_t k = 0; k < nout; ++k) {
        outs[k].dtype = instr.outs[k].dtype;
        outs[k].shape = instr.outs[k].shape;
        outs[k].device = instr.device;
        outp.push_back(&outs[k]);
      }
      // Donation: an elementwise op may write into a dying, unshared, contiguous input of the
      // same byte size instead of allocating.
      // A fused chain donates to each of its outputs (it stores a tile only after reading it).
      // A fill reads nothing: it can take only the buffer of the input it replaces.
      if ((is_elementwise(instr.op) && outs.size() == 1) || instr.op == Op::Fused || instr.op == Op::Full) {
        SmallVector<int32_t, 8> taken;  // (inline: a vector here allocated for every donation)
        // A storage a recording pins has one more owner than the slot.
        auto unshared = [&](const ArrayDesc& x) -> long {
          return pinned && std::find(pinned->begin(), pinned->end(), x.storage.get()) != pinned->end() ? 2 : 1;
        };
        auto fits = [&](const ArrayDesc& o, int32_t s) {
          const ArrayDesc& cand = slots[s];
          // (An input an output replaces may live on another device: only the instruction's own
          // device's buffers are candidates.)
          return p.last_use[s] == instr.index && !p.is_output[s] && cand.storage.use_count() == unshared(cand) &&
                 cand.device == o.device && cand.offset == 0 && itemsize(cand.dtype) == itemsize(o.dtype) && cand.size() == o.size() &&
                 cand.is_row_contiguous() && cand.storage->nbytes == o.nbytes() &&
                 std::find(taken.begin(), taken.end(), s) == taken.end();
        };
        auto take = [&](ArrayDesc& o, int32_t s) {
          o.storage = slots[s].storage;
          o.strides = row_major_strides(o.shape);
          taken.push_back(s);
        };
        // First each output that replaces an input takes that input's buffer; then any output
        // left takes a dying input not taken yet (one an output replaces and could not take
        // would not fit another output either: same shape, dtype and conditions).
        // A batch of chains (cpu/fused.h) runs its members at once: an output may take only an
        // input of its own member (read there before it is written) that no other member reads.
        const size_t members = instr.op == Op::Fused ? static_cast<size_t>(cpu::fused_members(instr.ints)) : 1;
        const size_t in_per = instr.in.size() / members, out_per = outs.size() / members;
        auto own = [&](size_t k, int32_t s) {
          if (members == 1) return true;
          const auto first = instr.in.begin() + k / out_per * in_per, last = first + in_per;
          const auto mine = std::count(first, last, s);
          return mine > 0 && mine == std::count(instr.in.begin(), instr.in.end(), s);
        };
        for (size_t k = 0; k < outs.size(); ++k) {
          const int32_t want = p.replaces[instr.outs[k].slot];
          if (want >= 0 && own(k, want) && fits(outs[k], want)) take(outs[k], want);  // (dies here: see set_replaced)
        }
        for (size_t k = 0; k < outs.size(); ++k) {
          ArrayDesc& o = outs[k];
          if (o.storage) continue;
          const size_t first = k / out_per * in_per;
          for (size_t i = first; i < first + in_per; ++i)
            if (own(k, instr.in[i]) && fits(o, instr.in[i])) {
              take(o, instr.in[i]);
              break;
            }
        }
      }
      be.run(instr, ins, outp, Scalars{scalars + instr.scalar_index});
      for (size_t k = 0; k < outs.size(); ++k) slots[instr.outs[k].slot] = std::move(outs[k]);
      return;
    }
  }
  slots[instr.outs[0].slot] = std::move(out);
}

std::vector<ArrayDesc> Executor::spare_list() {
  std::vector<std::vector<ArrayDesc>>& lists = thread_scratch().lists;
  if (lists.empty()) return {};
  std::vector<ArrayDesc> v = std::move(lists.back());
  lists.pop_back();
  return v;
}

void Executor::recycle(std::vector<ArrayDesc>&& v) { give_back(thread_scratch(), std::move(v)); }

std::vector<ArrayDesc> Executor::run(BoundProgram& bound) {
  ThreadScratch& ts = thread_scratch();
  std::vector<ArrayDesc> outs;
  if (!ts.lists.empty()) outs = std::move(ts.lists.back()), ts.lists.pop_back();
  if (bound.replay && !bound.profile && run_replay(*this, bound, outs)) return outs;
  const Program& p = *bound.program;
  // A run inside a run (replay.cc records one) takes another spare.
  std::vector<std::vector<ArrayDesc>>& spares = ts.slots;
  std::vector<ArrayDesc> slots;
  if (!spares.empty()) slots = std::move(spares.back()), spares.pop_back();
  if (slots.size() < static_cast<size_t>(p.num_slots)) slots.resize(p.num_slots);
  for (int32_t i = 0; i < p.num_inputs; ++i) slots[i] = std::move(bound.inputs[i]);
  give_back(ts, std::move(bound.inputs));  // the slots hold the references now, so inputs can die early
  execute(p, slots, bound.scalars.data(), bound.profile.get());
  outs.reserve(p.outputs.size());
  // A single output moves out of its slot; several are copied (a slot may be listed twice).
  if (p.outputs.size() == 1) outs.push_back(std::move(slots[p.outputs[0]]));
  else
    for (int32_t s : p.outputs) outs.push_back(slots[s]);
  // Back to the spares with nothing held (slots past this program's were released before).
  for (int32_t s = 0; s < p.num_slots; ++s) slots[s].storage.reset();
  if (spares.size() < 4 && slots.size() <= 4096) spares.push_back(std::move(slots));
  return outs;
}

void Executor::execute(const Program& p, std::vector<ArrayDesc>& slots, const double* scalars, ProfileLog* profile,
                       const std::vector<const Storage*>* pinned) {
  // The backends the program uses, in order of first use: a few at most (one per device).
  std::array<Backend*, 16> used_list;
  size_t num_used = 0;
  for (const Instr& in : p.instrs) {
    Backend* b = &backend(in.device);
    if (std::find(used_list.begin(), used_list.begin() + num_used, b) != used_list.begin() + num_used) continue;
    if (num_used == used_list.size()) throw std::runtime_error("[run] a program uses more than 16 devices");
    used_list[num_used++] = b;
  }
  const Span<Backend*> used{used_list.data(), num_used};
  ThreadScratch& ts = thread_scratch();
  for (Backend* b : used) b->begin_program();
  // Profiling times each instruction to its completion on its device (so it synchronizes).
  std::vector<std::pair<int32_t, int64_t>> timings;
  for (const Instr& in : p.instrs) {
    try {
      if (profile) {
        const auto t0 = std::chrono::steady_clock::now();
        run_instr(p, in, slots, scalars, pinned, ts.ins, ts.outp);
        backend(in.device).synchronize();
        const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0);
        timings.emplace_back(static_cast<int32_t>(in.op), static_cast<int64_t>(ns.count()));
      } else {
        run_instr(p, in, slots, scalars, pinned, ts.ins, ts.outp);
      }
    } catch (const std::exception& e) {
      slots.clear();  // drop every intermediate now; inputs stay alive in the handle table
      for (Backend* b : used) b->end_program();
      throw std::runtime_error("[eval] instruction " + std::to_string(in.index) + " (" +
                               op_name(static_cast<int32_t>(in.op)) + "): " + e.what());
    }
    // A slot is empty once its storage is released (a fresh ArrayDesc() would zero all of it).
    for (int32_t s : in.in)
      if (p.last_use[s] == in.index && !p.is_output[s]) slots[s].storage.reset();
    for (const OutSpec& o : in.outs) {
      if (p.last_use[o.slot] < 0 && !p.is_output[o.slot]) slots[o.slot].storage.reset();  // a sibling nobody wanted
      const int32_t old = p.replaces[o.slot];  // the input this output updates, kept alive until now
      if (old >= 0 && p.last_use[old] == in.index && !p.is_output[old]) slots[old].storage.reset();
    }
  }
  for (Backend* b : used) b->end_program();
  if (profile) {
    std::lock_guard<std::mutex> lock(profile->mutex);
    profile->entries.emplace_back(-1, static_cast<int64_t>(timings.size()));  // one block per run
    profile->entries.insert(profile->entries.end(), timings.begin(), timings.end());
  }
}

}  // namespace tessera
