/**
 * @file Float64 references for functions JavaScript's Math lacks (erf, erfinv), NumPy's floor
 * division rules, and rounding of doubles to narrower float formats. Plain JS only.
 */

const TWO_OVER_SQRT_PI = 2 / Math.sqrt(Math.PI);

/** exp(-x^2) with x^2 split into an exact head and tail (Dekker), so large x loses no accuracy. */
function expNegSquare(x: number): number {
  const split = 134217729 * x; // 2^27 + 1
  const hi = split - (split - x), lo = x - hi;
  const sq = x * x;
  const err = hi * hi - sq + 2 * hi * lo + lo * lo; // x*x = sq + err exactly
  return Math.exp(-sq) * (1 - err);
}

/**
 * erf(x) in float64: erf(x) = 2/sqrt(pi) e^{-x^2} sum_n (2x^2)^n x / (2n+1)!!, a series of positive
 * terms (no cancellation) that converges for every x; erf rounds to +-1 beyond |x| = 6.
 */
export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const a = Math.abs(x);
  if (a >= 6) return Math.sign(x);
  if (a === 0) return x;
  const t = 2 * a * a;
  let term = a, sum = a;
  for (let n = 1; n < 1000; n++) {
    term *= t / (2 * n + 1);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return Math.sign(x) * TWO_OVER_SQRT_PI * expNegSquare(a) * sum;
}

/**
 * erfc(x) for x >= 1.5 by Laplace's continued fraction, evaluated backwards:
 * erfc(x) = e^{-x^2} / sqrt(pi) / (x + (1/2) / (x + 1 / (x + (3/2) / (x + ...)))).
 */
function erfcTail(x: number): number {
  let t = x;
  for (let n = 400; n >= 1; n--) t = x + n / 2 / t;
  return expNegSquare(x) / Math.sqrt(Math.PI) / t;
}

/**
 * erfinv(y) in float64 by Newton's method on erf. erf is concave on x > 0, so Newton started at 0
 * approaches the root monotonically from below. Near |y| = 1 the residual is taken as
 * erfc(x) - (1 - |y|) (both exact-ish) instead of |y| - erf(x), which would cancel.
 */
export function erfinv(y: number): number {
  if (Number.isNaN(y) || Math.abs(y) > 1) return NaN;
  if (Math.abs(y) === 1) return y * Infinity;
  if (y === 0) return y;
  const a = Math.abs(y);
  let x = 0;
  for (let i = 0; i < 200; i++) {
    const residual = x >= 1.5 ? erfcTail(x) - (1 - a) : a - erf(x);
    const step = residual / (TWO_OVER_SQRT_PI * expNegSquare(x));
    x += step;
    if (Math.abs(step) <= 1e-17 * x) break;
  }
  return Math.sign(y) * x;
}

/** Rounds a non-negative number to an integer, ties to even. */
export function roundHalfEven(v: number): number {
  if (!Number.isFinite(v)) return v;
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** round() of NumPy: half to even, keeping the sign (and -0). */
export function roundRef(v: number): number {
  if (!Number.isFinite(v)) return v;
  const r = roundHalfEven(Math.abs(v));
  return v < 0 || Object.is(v, -0) ? -r : r;
}

/** Rounds a double to the nearest value of a binary format (ties to even), with subnormals and overflow. */
function roundToFormat(v: number, mantBits: number, minExp: number, maxExp: number): number {
  if (!Number.isFinite(v) || v === 0) return v;
  const a = Math.abs(v);
  let e = Math.floor(Math.log2(a));
  while (2 ** e > a) e--;
  while (2 ** (e + 1) <= a) e++;
  e = Math.max(e, minExp);
  const ulp = 2 ** (e - mantBits);
  const r = roundHalfEven(a / ulp) * ulp;
  const overflow = (2 - 2 ** -mantBits) * 2 ** maxExp;
  return Math.sign(v) * (r > overflow ? Infinity : r);
}

export const roundToFloat16 = (v: number) => roundToFormat(v, 10, -14, 15);
export const roundToBfloat16 = (v: number) => roundToFormat(v, 7, -126, 127);
export const roundToFloat32 = (v: number) => roundToFormat(v, 23, -126, 127);

/** The value a double becomes when stored as a float dtype. */
export function roundTo(dtype: string, v: number): number {
  switch (dtype) {
    case "float16": return roundToFloat16(v);
    case "bfloat16": return roundToBfloat16(v);
    case "float32": return roundToFloat32(v);
    default: return v;
  }
}

/** NumPy's float floor_divide (npy_divmod): fmod-based, then snapped to the nearest integer. */
export function floorDivideRef(a: number, b: number): number {
  if (b === 0) return a / b;
  const mod = a % b; // fmod, exact
  let div = (a - mod) / b;
  if (mod !== 0 && b < 0 !== mod < 0) div -= 1;
  if (div === 0) return 0;
  let fd = Math.floor(div);
  if (div - fd > 0.5) fd += 1;
  return fd;
}

/** NumPy's float remainder: fmod, moved into the divisor's sign. */
export function remainderRef(a: number, b: number): number {
  const mod = a % b;
  return mod !== 0 && b < 0 !== mod < 0 ? mod + b : mod;
}

/** C's pow (JavaScript's differs at pow(1, NaN), pow(+-1, +-inf)). */
export function powRef(a: number, b: number): number {
  if (a === 1 || b === 0) return 1;
  if (a === -1 && (b === Infinity || b === -Infinity)) return 1;
  return Math.pow(a, b);
}

/** NumPy's logaddexp. */
export function logaddexpRef(a: number, b: number): number {
  if (a === b) return a + Math.LN2;
  const d = a - b;
  if (d > 0) return a + Math.log1p(Math.exp(-d));
  if (d <= 0) return b + Math.log1p(Math.exp(d));
  return NaN;
}

/** Integer floor division (NumPy's rule; a zero divisor gives 0). */
export function floorDivInt(a: bigint, b: bigint): bigint {
  if (b === 0n) return 0n;
  const q = a / b; // truncates
  return (a % b !== 0n) && (a < 0n) !== (b < 0n) ? q - 1n : q;
}

/** Integer remainder with the divisor's sign (a zero divisor gives 0). */
export function remainderInt(a: bigint, b: bigint): bigint {
  if (b === 0n) return 0n;
  const r = a % b;
  return r !== 0n && (r < 0n) !== (b < 0n) ? r + b : r;
}
