/**
 * @file Recurrent layers as MLX's: RNN (Elman), GRU and LSTM over a sequence `[N, L, D]` or an
 * unbatched `[L, D]`. Each layer projects the whole input once (`x W^T + b`), then runs its cell
 * along the L axis with {@link scan}; the cells are small functions of one step.
 */
import * as mx from "@tessera/core";
import { isArray, ShapeError, type Array } from "@tessera/core";
import { Module } from "../module.js";
import { tanh } from "../activations.js";

/** One step: the projected input at step t and the state (hidden, and cell for LSTM) to the next state. */
type Cell = (xt: Array, state: Array[]) => Array[];

const fmt = (shape: number[]) => `[${shape.join(",")}]`;

function checkSize(op: string, name: string, n: unknown): void {
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1) throw new RangeError(`${op}: ${name} must be a positive integer; got ${String(n)}`);
}

/** Checks that x is `[N, L, inputSize]` or `[L, inputSize]`; returns the shape of one state, `[N, H]` or `[H]`. */
function stateShape(op: string, x: unknown, inputSize: number, hiddenSize: number): number[] {
  if (!isArray(x) || (x.ndim !== 2 && x.ndim !== 3) || x.shape[x.ndim - 1] !== inputSize) {
    const got = isArray(x) ? `shape ${fmt(x.shape)}` : typeof x;
    throw new ShapeError(`${op}: input must have shape [N, L, ${inputSize}] or [L, ${inputSize}] (inputSize ${inputSize}); got ${got}`);
  }
  return [...x.shape.slice(0, -2), hiddenSize];
}

/** The given initial state, checked against `shape`, or zeros (MLX's default: no state is a zero state). */
function initialState(op: string, name: string, s: Array | undefined | null, shape: number[], dtype: mx.DType): Array {
  if (s === undefined || s === null) return mx.zeros(shape, dtype);
  if (!isArray(s) || s.ndim !== shape.length || s.shape.some((d, i) => d !== shape[i])) {
    const got = isArray(s) ? `shape ${fmt(s.shape)}` : typeof s;
    throw new ShapeError(`${op}: ${name} must have shape ${fmt(shape)} (the input's batch dims, then hiddenSize); got ${got}`);
  }
  return s;
}

/** `x W^T (+ b)`: the input projection of every step at once (one matmul instead of L). */
function project(x: Array, w: Array, b: Array | undefined): Array {
  const y = mx.matmul(x, mx.transpose(w));
  return b ? mx.add(y, b) : y;
}

/**
 * Runs `cell` along axis -2 of `xp` (`[..., L, G]`) from `state`, and stacks each state component
 * over the steps on axis -2 (`[..., L, H]`). Each step adds a fixed number of nodes, so the graph,
 * and its gradient's, grow linearly with L.
 */
function scan(xp: Array, state: Array[], cell: Cell): Array[] {
  const L = xp.shape[xp.ndim - 2];
  if (L === 0) return state.map((s) => mx.zeros([...s.shape.slice(0, -1), 0, s.shape[s.ndim - 1]], s.dtype));
  const steps: Array[][] = state.map(() => []);
  for (let t = 0; t < L; t++) {
    state = cell(mx.index(xp, "...", t, mx.slice()), state);
    state.forEach((s, i) => steps[i].push(s));
  }
  return steps.map((ss) => mx.stack(ss, -2));
}

/** Options of {@link RNN}. */
export interface RNNOptions {
  /** Whether to add a bias (default true). */
  bias?: boolean;
  /** The nonlinearity of each step (default `nn.tanh`). */
  nonlinearity?: (x: Array) => Array;
}

/** Options of {@link GRU} and {@link LSTM}. */
export interface RecurrentOptions {
  /** Whether to add the biases (default true). */
  bias?: boolean;
}

/** U(-s, s) with `s = 1 / sqrt(hiddenSize)`, MLX's initialisation of every recurrent parameter. */
const init = (hiddenSize: number, shape: number[]) => {
  const s = 1 / Math.sqrt(hiddenSize);
  return mx.random.uniform(-s, s, shape);
};

/**
 * An Elman recurrent layer (MLX's `nn.RNN`): for each step, `h_t = f(x_t Wxh^T + h_{t-1} Whh^T + b)`
 * with `f` = tanh by default. Input `[N, L, inputSize]` or `[L, inputSize]`; optional initial
 * hidden state `[N, hiddenSize]` or `[hiddenSize]` (zeros when omitted). Returns the hidden state
 * of every step, `[N, L, hiddenSize]` or `[L, hiddenSize]`. Parameters `Wxh` `[hiddenSize,
 * inputSize]`, `Whh` `[hiddenSize, hiddenSize]` and `bias` `[hiddenSize]`, from U(-s, s),
 * `s = 1 / sqrt(hiddenSize)`.
 * @example
 * const rnn = new nn.RNN(8, 16);
 * rnn.forward(mx.zeros([2, 10, 8])).shape; // [2, 10, 16]
 */
export class RNN extends Module {
  /** `[hiddenSize, inputSize]`. */
  Wxh: Array;
  /** `[hiddenSize, hiddenSize]`. */
  Whh: Array;
  /** `[hiddenSize]`, absent when built with `{ bias: false }`. */
  bias?: Array;
  /** The size of the hidden state. */
  readonly hiddenSize: number;
  /** The nonlinearity of each step. */
  readonly nonlinearity: (x: Array) => Array;

  constructor(inputSize: number, hiddenSize: number, options: RNNOptions = {}) {
    super();
    checkSize("RNN", "inputSize", inputSize);
    checkSize("RNN", "hiddenSize", hiddenSize);
    const { bias = true, nonlinearity = tanh } = options ?? {};
    if (typeof nonlinearity !== "function") throw new TypeError(`RNN: nonlinearity must be a function; got ${typeof nonlinearity}`);
    this.hiddenSize = hiddenSize;
    this.nonlinearity = nonlinearity;
    this.Wxh = init(hiddenSize, [hiddenSize, inputSize]);
    this.Whh = init(hiddenSize, [hiddenSize, hiddenSize]);
    if (bias) this.bias = init(hiddenSize, [hiddenSize]);
  }

  /** `x` `[N, L, inputSize]` or `[L, inputSize]`, optional `hidden` `[N, H]` or `[H]`, to the hidden states `[N, L, H]` or `[L, H]`. */
  override forward(x: Array, hidden?: Array): Array {
    const shape = stateShape("RNN", x, this.Wxh.shape[1], this.hiddenSize);
    const xp = project(x, this.Wxh, this.bias);
    const whhT = mx.transpose(this.Whh);
    const cell: Cell = (xt, [h]) => [this.nonlinearity(mx.add(xt, mx.matmul(h, whhT)))];
    return scan(xp, [initialState("RNN", "hidden", hidden, shape, xp.dtype)], cell)[0];
  }
}

/**
 * A gated recurrent unit layer (MLX's `nn.GRU`). With the rows of `Wx` `[3H, inputSize]`, `Wh`
 * `[3H, H]` and `b` `[3H]` in the order r, z, n, each step computes
 * `r = σ(Wxr x + Whr h + br)`, `z = σ(Wxz x + Whz h + bz)`,
 * `n = tanh(Wxn x + bn + r ⊙ (Whn h + bhn))`, `h' = (1 - z) ⊙ n + z ⊙ h`.
 * Input `[N, L, inputSize]` or `[L, inputSize]`; optional initial hidden `[N, H]` or `[H]` (zeros
 * when omitted, so `bhn` counts from the first step). Returns every step's hidden state,
 * `[N, L, H]` or `[L, H]`. All parameters from U(-s, s), `s = 1 / sqrt(H)`.
 * @example
 * const gru = new nn.GRU(8, 16);
 * gru.forward(mx.zeros([10, 8])).shape; // [10, 16]
 */
export class GRU extends Module {
  /** `[3 * hiddenSize, inputSize]` (r, z, n rows). */
  Wx: Array;
  /** `[3 * hiddenSize, hiddenSize]` (r, z, n rows). */
  Wh: Array;
  /** `[3 * hiddenSize]`, the input-side biases; absent when built with `{ bias: false }`. */
  b?: Array;
  /** `[hiddenSize]`, the hidden-side bias of n (inside the reset gate); absent with `{ bias: false }`. */
  bhn?: Array;
  /** The size of the hidden state. */
  readonly hiddenSize: number;

  constructor(inputSize: number, hiddenSize: number, options: RecurrentOptions = {}) {
    super();
    checkSize("GRU", "inputSize", inputSize);
    checkSize("GRU", "hiddenSize", hiddenSize);
    this.hiddenSize = hiddenSize;
    this.Wx = init(hiddenSize, [3 * hiddenSize, inputSize]);
    this.Wh = init(hiddenSize, [3 * hiddenSize, hiddenSize]);
    if (options?.bias ?? true) {
      this.b = init(hiddenSize, [3 * hiddenSize]);
      this.bhn = init(hiddenSize, [hiddenSize]);
    }
  }

  /** `x` `[N, L, inputSize]` or `[L, inputSize]`, optional `hidden` `[N, H]` or `[H]`, to the hidden states `[N, L, H]` or `[L, H]`. */
  override forward(x: Array, hidden?: Array): Array {
    const shape = stateShape("GRU", x, this.Wx.shape[1], this.hiddenSize);
    const xp = project(x, this.Wx, this.b);
    const whT = mx.transpose(this.Wh);
    const bhn = this.bhn;
    const cell: Cell = (xt, [h]) => {
      const [xr, xz, xn] = mx.split(xt, 3, -1);
      const [hr, hz, hn] = mx.split(mx.matmul(h, whT), 3, -1);
      const r = mx.sigmoid(mx.add(xr, hr));
      const z = mx.sigmoid(mx.add(xz, hz));
      const n = mx.tanh(mx.add(xn, mx.mul(r, bhn ? mx.add(hn, bhn) : hn)));
      return [mx.add(n, mx.mul(z, mx.sub(h, n)))]; // (1 - z) n + z h, one multiply fewer
    };
    return scan(xp, [initialState("GRU", "hidden", hidden, shape, xp.dtype)], cell)[0];
  }
}

/**
 * A long short-term memory layer (MLX's `nn.LSTM`). With the rows of `Wx` `[4H, inputSize]`,
 * `Wh` `[4H, H]` and `bias` `[4H]` in the order i, f, g, o, each step computes
 * `i, f, o = σ(Wx x + Wh h + bias)` (their rows), `g = tanh(...)`, `c' = f ⊙ c + i ⊙ g`,
 * `h' = o ⊙ tanh(c')`. Input `[N, L, inputSize]` or `[L, inputSize]`; optional initial `hidden`
 * and `cell`, `[N, H]` or `[H]` (zeros when omitted). Returns `[hiddens, cells]`, each step's
 * hidden and cell states, `[N, L, H]` or `[L, H]`. All parameters from U(-s, s), `s = 1 / sqrt(H)`.
 * @example
 * const lstm = new nn.LSTM(8, 16);
 * const [h, c] = lstm.forward(mx.zeros([2, 10, 8]));
 * h.shape; // [2, 10, 16]
 */
export class LSTM extends Module {
  /** `[4 * hiddenSize, inputSize]` (i, f, g, o rows). */
  Wx: Array;
  /** `[4 * hiddenSize, hiddenSize]` (i, f, g, o rows). */
  Wh: Array;
  /** `[4 * hiddenSize]`, absent when built with `{ bias: false }`. */
  bias?: Array;
  /** The size of the hidden and cell states. */
  readonly hiddenSize: number;

  constructor(inputSize: number, hiddenSize: number, options: RecurrentOptions = {}) {
    super();
    checkSize("LSTM", "inputSize", inputSize);
    checkSize("LSTM", "hiddenSize", hiddenSize);
    this.hiddenSize = hiddenSize;
    this.Wx = init(hiddenSize, [4 * hiddenSize, inputSize]);
    this.Wh = init(hiddenSize, [4 * hiddenSize, hiddenSize]);
    if (options?.bias ?? true) this.bias = init(hiddenSize, [4 * hiddenSize]);
  }

  /**
   * `x` `[N, L, inputSize]` or `[L, inputSize]`, optional `hidden` and `cell` `[N, H]` or `[H]`,
   * to `[hiddens, cells]`, each `[N, L, H]` or `[L, H]`.
   */
  override forward(x: Array, hidden?: Array, cell?: Array): [Array, Array] {
    const shape = stateShape("LSTM", x, this.Wx.shape[1], this.hiddenSize);
    const xp = project(x, this.Wx, this.bias);
    const whT = mx.transpose(this.Wh);
    const step: Cell = (xt, [h, c]) => {
      const [i, f, g, o] = mx.split(mx.add(xt, mx.matmul(h, whT)), 4, -1);
      const c2 = mx.add(mx.mul(mx.sigmoid(f), c), mx.mul(mx.sigmoid(i), mx.tanh(g)));
      return [mx.mul(mx.sigmoid(o), mx.tanh(c2)), c2];
    };
    const state0 = [initialState("LSTM", "hidden", hidden, shape, xp.dtype), initialState("LSTM", "cell", cell, shape, xp.dtype)];
    const [hs, cs] = scan(xp, state0, step);
    return [hs, cs];
  }
}
