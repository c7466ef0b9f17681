/**
 * Typed usage of the transforms, compiled (never run) by types.test.ts with `tsc --noEmit`: each
 * `expectType<T>()(x)` fails to compile unless x has exactly type T, and each `@ts-expect-error`
 * line fails to compile unless the line after it is an error.
 */
import * as mx from "@tessera/core";
import { compile, grad, jvp, valueAndGrad, vjp, vmap, type GradOf, type GradsOf } from "@tessera/transforms";

type A = mx.Array;

/** Whether X and Y are the same type (not merely assignable to each other). */
type Equals<X, Y> = (<T>() => T extends X ? 1 : 2) extends <T>() => T extends Y ? 1 : 2 ? true : false;
/** `expectType<T>()(x)` compiles only when x's type is exactly T. */
function expectType<T>() {
  return <U>(_value: U & (Equals<T, U> extends true ? unknown : never)): void => {};
}

const w = mx.ones([3]);
const b = mx.zeros([]);
const x = mx.ones([4, 3]);
const y = mx.ones([4]);

// ---- valueAndGrad over (w, b) ----
const loss = (w: A, b: A) => mx.mean(mx.square(mx.sub(mx.add(mx.matmul(x, w), b), y)));

const [l0, g0] = valueAndGrad(loss)(w, b);
expectType<A>()(l0);
expectType<A>()(g0);

const [l1, g1] = valueAndGrad(loss, { argnums: 1 })(w, b);
expectType<A>()(l1);
expectType<A>()(g1);

const [, g01] = valueAndGrad(loss, { argnums: [0, 1] })(w, b);
expectType<[A, A]>()(g01);
const [gw, gb] = g01;
expectType<A>()(gw);
expectType<A>()(gb);

// A list of one entry still gives a list; negative indices count from the end.
expectType<[A]>()(valueAndGrad(loss, { argnums: [1] })(w, b)[1]);
expectType<A>()(valueAndGrad(loss, { argnums: -1 })(w, b)[1]);
expectType<[A, A]>()(valueAndGrad(loss, { argnums: [-1, 0] })(w, b)[1]);

// The returned function takes fn's parameters.
expectType<(w: A, b: A) => [A, [A, A]]>()(valueAndGrad(loss, { argnums: [0, 1] }));

// ---- grad ----
expectType<A>()(grad(loss)(w, b));
expectType<A>()(grad(loss, { argnums: 1 })(w, b));
expectType<[A, A]>()(grad(loss, { argnums: [0, 1] })(w, b));
expectType<[A, A]>()(grad(loss, { argnums: [1, 0] })(w, b));

// Higher derivatives: grad(f) is again a function of an Array returning an Array.
const cube = (t: A) => mx.mul(t, mx.mul(t, t));
expectType<(t: A) => A>()(grad(grad(cube)));
expectType<A>()(grad(grad(grad(cube)))(b));

// Unannotated parameters are Arrays.
expectType<A>()(grad((v) => mx.sum(mx.square(v)))(w));
expectType<[A, A]>()(grad((p, q) => mx.sum(mx.mul(p, q)), { argnums: [0, 1] })(w, w));

// A JS number argument is differentiated as a float32 scalar: its gradient is an Array.
const scaled = (s: number, v: A) => mx.sum(mx.mul(v, s));
expectType<A>()(grad(scaled)(2, w));
expectType<[A, A]>()(grad(scaled, { argnums: [0, 1] })(2, w));
expectType<A>()(null! as GradOf<number>);

// ---- tree arguments: the gradient has the argument's tree type ----
interface Params {
  w: A;
  b: A;
}
const treeLoss = (p: { w: A; b: A }, inputs: A) => mx.sum(mx.add(mx.matmul(inputs, p.w), p.b));
const gTree = grad(treeLoss)({ w, b }, x);
expectType<{ w: A; b: A }>()(gTree);
expectType<A>()(gTree.w);
const interfaceLoss = (p: Params) => mx.sum(mx.mul(p.w, p.b));
expectType<Params>()(grad(interfaceLoss)({ w, b }));
const nested = (p: { layers: { w: A }[]; scale: A }) => mx.sum(mx.mul(p.layers[0].w, p.scale));
expectType<{ layers: { w: A }[]; scale: A }>()(grad(nested)({ layers: [{ w }], scale: b }));
const [, [gParams, gInputs]] = valueAndGrad(treeLoss, { argnums: [0, 1] })({ w, b }, x);
expectType<{ w: A; b: A }>()(gParams);
expectType<A>()(gInputs);
expectType<[Params, A]>()(null! as GradsOf<[p: Params, x: A, n: number], [0, -1]>);

// ---- auxiliary outputs: fn returns [loss, aux]; value is the whole JS array ----
const withAux = (w: A, b: A): [A, { pred: A; step: number }] => {
  const pred = mx.add(mx.matmul(x, w), b);
  return [mx.mean(mx.square(mx.sub(pred, y))), { pred, step: 1 }];
};
const [[auxLoss, aux], auxGrads] = valueAndGrad(withAux, { argnums: [0, 1] })(w, b);
expectType<A>()(auxLoss);
expectType<{ pred: A; step: number }>()(aux);
expectType<[A, A]>()(auxGrads);
expectType<A>()(grad(withAux)(w, b));
// Written inline, [loss, aux] is typed as a tuple too.
const [[, inlineAux]] = valueAndGrad((v: A) => [mx.sum(v), { norm: mx.sqrt(mx.sum(mx.square(v))) }])(w);
expectType<{ norm: A }>()(inlineAux);
// A function declared apart returning an array literal has an array type: accepted, value typed so.
const looseAux = (v: A) => [mx.sum(v), 3];
expectType<(A | number)[]>()(valueAndGrad(looseAux)(w)[0]);

// ---- vmap keeps fn's signature ----
const perExample = vmap((row: A, target: A) => mx.square(mx.sub(mx.sum(mx.mul(row, w)), target)));
expectType<(row: A, target: A) => A>()(perExample);
expectType<A>()(perExample(x, y));
expectType<A>()(vmap((v) => mx.sum(v))(x));
const perExampleGrads = vmap(grad(treeLoss), { inAxes: [null, 0] })({ w, b }, x);
expectType<{ w: A; b: A }>()(perExampleGrads);
const [sums, doubled] = vmap((v: A) => [mx.sum(v), mx.mul(v, 2)], { outAxes: [0, 1] })(x);
expectType<A>()(sums);
expectType<A>()(doubled);

// ---- vjp and jvp: JS arrays in, JS arrays out ----
const [vOuts, vjps] = vjp((v) => mx.sin(v), [w], [mx.onesLike(w)]);
expectType<[A]>()(vOuts);
expectType<[A]>()(vjps);
const [[o1, o2], [c1, c2]] = vjp((p: A, q: A) => [mx.mul(p, q), mx.add(p, q)], [w, w], [w, w]);
expectType<A>()(o1);
expectType<A>()(o2);
expectType<A>()(c1);
expectType<A>()(c2);
const [jOuts, jvps] = jvp((v, u) => mx.mul(v, u), [w, w], [mx.onesLike(w), mx.zerosLike(w)]);
expectType<[A]>()(jOuts);
expectType<[A]>()(jvps);
const [, [hvp]] = jvp(grad((v: A) => mx.sum(mx.mul(v, mx.mul(v, v)))), [w], [mx.onesLike(w)]);
expectType<A>()(hvp);
// Lists not known statically give JS arrays.
const primals: A[] = [w, w];
expectType<[A[], A[]]>()(vjp((...vs: A[]) => vs, primals, primals));

// ---- what must not compile ----
// @ts-expect-error a list of argnums gives a tuple, not a single Array
const notOne: A = grad(loss, { argnums: [0, 1] })(w, b);
// @ts-expect-error the returned function takes fn's parameters: a number is not an Array
grad(loss)(w, 3);
// @ts-expect-error too few arguments
valueAndGrad(loss)(w);
// @ts-expect-error argnums out of range for a function of two arguments
grad(loss, { argnums: 2 });
// @ts-expect-error an argnums entry out of range
grad(loss, { argnums: [0, -3] });
// @ts-expect-error the gradient of a tree argument is the tree, not an Array
const notArray: A = grad(treeLoss)({ w, b }, x);
// @ts-expect-error a tree argument missing a field
grad(treeLoss)({ w }, x);
// @ts-expect-error fn must return an Array (or [loss, ...aux])
grad((v: A) => v.shape);
// @ts-expect-error a JS array returned by fn must be able to hold the loss
valueAndGrad((v: A) => [1, 2]);
// @ts-expect-error the aux value is not an Array
const auxNotArray: A = valueAndGrad(withAux)(w, b)[0][1];
// @ts-expect-error vmap's result takes fn's parameters
perExample(x, "y");
// @ts-expect-error one cotangent per output: fn has two outputs
vjp((p: A) => [p, p], [w], [w]);
// @ts-expect-error one tangent per primal
jvp((p: A, q: A) => mx.mul(p, q), [w, w], [w]);
// @ts-expect-error fn takes one Array per primal
vjp((p: A, q: A) => mx.mul(p, q), [w], [w]);
// @ts-expect-error primals are Arrays
jvp((p: A) => p, [1], [w]);
// @ts-expect-error vjp gives one vjp per primal
const [, [, tooMany]] = vjp((v: A) => v, [w], [w]);

void [notOne, notArray, auxNotArray, tooMany];

// ---- Array methods are typed from the ops' own signatures ----
{
  const v = mx.array([1, 2]);
  const m: mx.Array = v.add(1).sin().sum(0, { keepdims: true }).var().reshape([1]).T;
  const [dq, dr]: [mx.Array, mx.Array] = v.divmod(2);
  const parts: mx.Array[] = v.split(2);
  // @ts-expect-error not a method of Array
  v.notAMethod();
  // @ts-expect-error a string is not an operand
  v.add("a");
  void m, void dq, void dr, void parts;
}

// ---- compile keeps the function's type ----
{
  const scaled = compile((v: A, k: number) => mx.multiply(v, k));
  expectType<(v: A, k: number) => A>()(scaled);
  expectType<A>()(scaled(w, 2));
  const pair = compile((p: { a: A; b: A }) => [p.a, p.b] as const);
  expectType<readonly [A, A]>()(pair({ a: w, b }));
  // @ts-expect-error the argument types of fn are kept
  scaled(w, "2");
}
