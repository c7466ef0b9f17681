/**
 * Each wrong use of a transform throws at the call, with the error class and a message that
 * names the transform, the offending value and what was expected.
 */
import { describe, expect, it } from "vitest";
import * as mx from "@tessera/core";
import { checkpoint, customFunction, grad, jvp, valueAndGrad, vjp, vmap } from "@tessera/transforms";

type A = mx.Array;
const x3 = () => mx.array([1, 2, 3], "float64");
const x34 = () => mx.ones([3, 4], "float64");
const sumSq = (v: A) => mx.sum(mx.square(v));
const add = (a: A, b: A) => mx.add(a, b);
const { TransformError } = mx;

/** [what is wrong, the call, the error class, the message]. */
type Case = [string, () => unknown, new (...args: any[]) => Error, RegExp];

const GRAD: Case[] = [
  ["non-scalar output", () => grad((v: A) => mx.sin(v))(x3()), TransformError,
    /^grad: fn must return a scalar float array; got shape \[3\] float64$/],
  ["non-scalar output (2-D)", () => grad((v: A) => mx.mul(v, 2))(x34()), TransformError, /got shape \[3,4\] float64/],
  ["non-scalar output, through valueAndGrad", () => valueAndGrad((v: A) => mx.sin(v))(x3()), TransformError,
    /^valueAndGrad: fn must return a scalar float array; got shape \[3\] float64$/],
  ["integer output", () => grad((v: A) => mx.sum(mx.astype(v, "int32")))(x3()), TransformError,
    /^grad: fn must return a scalar float array; got shape \[\] int32$/],
  ["bool output", () => grad((v: A) => mx.all(mx.greater(v, 0)))(x3()), TransformError, /got shape \[\] bool/],
  // @ts-expect-error the types reject this too: fn must return an Array, and takes no arguments
  ["output that is not an Array", () => grad(() => 3)(x3()), TransformError, /^grad: fn must return an Array .*; got number$/],
  // @ts-expect-error the types reject this too: fn takes no arguments
  ["aux form whose first element is not an Array", () => valueAndGrad(() => [null, x3()])(x3()), TransformError,
    /^valueAndGrad: fn must return an Array .*; got null$/],
  // @ts-expect-error the types reject this too: argnums out of range
  ["argnums out of range", () => grad(add, { argnums: 2 })(x3(), x3()), TransformError,
    /^grad: argnums 2 is out of range for a call with 2 arguments$/],
  // @ts-expect-error the types reject this too: argnums out of range
  ["negative argnums out of range", () => grad(add, { argnums: [0, -3] })(x3(), x3()), TransformError,
    /argnums -3 is out of range for a call with 2 arguments/],
  // @ts-expect-error the types reject this too: argnums must be an integer index
  ["argnums not an integer", () => grad(add, { argnums: 0.5 })(x3(), x3()), TransformError, /argnums entries must be integers; got 0.5/],
  ["empty argnums", () => grad(add, { argnums: [] })(x3(), x3()), TransformError, /argnums must be a number or a non-empty list/],
  ["a string leaf", () => grad((p: any) => sumSq(p.w))({ w: x3(), name: "layer" }), TransformError,
    /^grad: argument 0 must be an Array or a tree of Arrays; found string at "name"$/],
  // @ts-expect-error the types reject this too: argnums out of range; fn takes one argument
  ["a null leaf in a list", () => grad((p: any) => sumSq(p[0]), { argnums: [1] })(x3(), [x3(), null]), TransformError,
    /argument 1 must be an Array or a tree of Arrays; found null at "1"/],
  // @ts-expect-error the types reject this too: a string is not an Array
  ["a string argument", () => grad(sumSq)("x"), TransformError, /argument 0 must be an Array or a tree of Arrays; found string/],
  ["fn not a function", () => grad(3 as any), TransformError, /^grad: fn must be a function; got number$/],
];

const VJP_JVP: Case[] = [
  // @ts-expect-error the types reject this too: one cotangent per output
  ["vjp: too many cotangents", () => vjp((v) => mx.sin(v), [x3()], [x3(), x3()]), TransformError,
    /^vjp: fn returned 1 outputs but 2 cotangents were given$/],
  // @ts-expect-error the types reject this too: one cotangent per output
  ["vjp: too few cotangents", () => vjp((v) => [mx.sin(v), mx.cos(v)], [x3()], [x3()]), TransformError,
    /fn returned 2 outputs but 1 cotangents were given/],
  ["vjp: cotangent of the wrong shape", () => vjp((v) => mx.sin(v), [x3()], [mx.ones([2], "float64")]), TransformError,
    /^vjp: cotangent 0 has shape \[2\] but output 0 has shape \[3\]$/],
  ["vjp: primals not a list", () => vjp((v) => v, x3() as any, [x3()]), TransformError, /^vjp: primals must be a JS array of Arrays; got object$/],
  ["vjp: a primal that is not an Array", () => vjp((v) => v, [1 as any], [x3()]), TransformError, /^vjp: primals\[0\] must be an Array; got number$/],
  ["vjp: fn returns a non-Array", () => vjp(() => 1 as any, [x3()], [x3()]), TransformError, /^vjp: fn must return an Array or a JS array of Arrays; output 0 is number$/],
  // @ts-expect-error the types reject this too: one tangent per primal
  ["jvp: more tangents than primals", () => jvp((v) => mx.sin(v), [x3()], [x3(), x3()]), TransformError,
    /^jvp: 1 primals but 2 tangents were given$/],
  ["jvp: tangent of the wrong shape", () => jvp((v) => mx.sin(v), [x3()], [mx.ones([3, 1], "float64")]), TransformError,
    /^jvp: tangent 0 has shape \[3,1\] but primal 0 has shape \[3\]$/],
  ["jvp: tangents not a list", () => jvp((v) => v, [x3()], x3() as any), TransformError, /^jvp: tangents must be a JS array of Arrays/],
];

const VMAP: Case[] = [
  ["inconsistent mapped sizes", () => vmap(add)(x3(), mx.ones([4], "float64")), TransformError,
    /^vmap: inconsistent sizes for mapped axes: argument 0 has size 3 along axis 0, but argument 1 has size 4 along axis 0$/],
  ["inconsistent sizes inside a tree", () => vmap((p: any) => p.a, { inAxes: [{ a: 0, b: 1 }] })({ a: x3(), b: x34() }), TransformError,
    /argument 0 at "a" has size 3 along axis 0, but argument 0 at "b" has size 4 along axis 1/],
  ["inAxes out of range", () => vmap(sumSq, { inAxes: 2 })(x34()), TransformError,
    /^vmap: inAxes 2 is out of range for argument 0 of shape \[3,4\]$/],
  ["negative inAxes out of range", () => vmap(sumSq, { inAxes: [-3] })(x34()), TransformError, /inAxes -3 is out of range for argument 0 of shape \[3,4\]/],
  ["inAxes longer than the arguments", () => vmap(sumSq, { inAxes: [0, 0] })(x3()), TransformError,
    /^vmap: inAxes has 2 entries but fn was called with 1 arguments$/],
  ["inAxes shorter than the arguments", () => vmap(add, { inAxes: [0] })(x3(), x3()), TransformError, /inAxes has 1 entries but fn was called with 2 arguments/],
  ["every inAxes null", () => vmap(add, { inAxes: [null, null] })(x3(), x3()), TransformError,
    /^vmap: at least one argument must be mapped \(inAxes are all null\)$/],
  ["inAxes null", () => vmap(sumSq, { inAxes: null })(x3()), TransformError, /at least one argument must be mapped/],
  ["a mapped argument that is not an Array", () => vmap((v: any) => v)(3), TransformError, /^vmap: argument 0 is mapped \(inAxes 0\) but is not an Array$/],
  ["inAxes tree not matching the argument", () => vmap((p: any) => p.a, { inAxes: [{ b: 0 }] })({ a: x3() }), TransformError,
    /inAxes entry for argument 0 does not match the structure of its value/],
  ["item() of a mapped value", () => vmap((v: A) => mx.array(Number(mx.sum(v).item())))(x34()), TransformError,
    /^item: cannot read the value of an array mapped by vmap \(shape \[4\]\)/], // the mapped argument's shape
  ["tolist() of a mapped value", () => vmap((v: A) => mx.array(v.tolist() as number[]))(x34()), TransformError,
    /^tolist: cannot read the value of an array mapped by vmap \(shape \[4\]\)/],
  ["toTypedArray() of a mapped value", () => vmap((v: A) => (v.toTypedArray(), v))(x34()), TransformError, /^toTypedArray: cannot read the value/],
  ["mx.eval of a mapped value", () => vmap((v: A) => { const y = mx.sin(v); mx.eval(y); return y; })(x34()), TransformError,
    /^eval: cannot read the value of an array mapped by vmap/],
  ["outAxes null for a mapped output", () => vmap((v: A) => mx.sin(v), { outAxes: null })(x3()), TransformError,
    /^vmap: outAxes for output 0 is null but the output depends on a mapped input$/],
  ["outAxes null for the mapped one of two outputs", () => vmap((v: A) => [mx.ones([2]), mx.sin(v)], { outAxes: [null, null] })(x3()), TransformError,
    /outAxes for output 1 is null/],
  ["outAxes out of range", () => vmap((v: A) => mx.sin(v), { outAxes: 2 })(x34()), TransformError,
    /^vmap: outAxes 2 is out of range for output 0 with 2 dimensions$/],
  // @ts-expect-error the types reject this too: fn takes no arguments
  ["fn returning a non-Array", () => vmap(() => 3)(x3()), TransformError, /^vmap: fn must return Arrays; found number$/],
];

const CUSTOM: Case[] = [
  ["a vjp rule returning too few cotangents",
    () => grad((a: A, b: A) => mx.sum(customFunction((p: A, q: A) => mx.mul(p, q)).vjp((_, [ct]) => [ct])(a, b)))(x3(), x3()),
    TransformError, /^customFunction: the vjp rule must return one cotangent per primal \(2\)$/],
  ["customFunction of a non-function", () => customFunction(null as any), TransformError, /customFunction: fn must be a function/],
  ["checkpoint of a non-function", () => checkpoint("f" as any), TransformError, /checkpoint: fn must be a function/],
  ["a checkpointed fn returning a non-Array", () => checkpoint((_v: A) => 1 as any)(x3()), TransformError, /checkpoint: fn must return an Array/],
];

describe.each([
  ["grad and valueAndGrad", GRAD],
  ["vjp and jvp", VJP_JVP],
  ["vmap", VMAP],
  ["customFunction and checkpoint", CUSTOM],
] as const)("%s", (_group, cases) => {
  it.each(cases)("%s", (_what, call, cls, message) => {
    let error: unknown;
    try {
      call();
    } catch (e) {
      error = e;
    }
    expect(error, "it throws").toBeInstanceOf(cls);
    expect((error as Error).message).toMatch(message);
  });
});

describe("after an error", () => {
  it("the arrays involved stay usable and transforms work again", () => {
    const x = x34();
    expect(() => vmap((v: A) => mx.array(Number(mx.sum(v).item())))(x)).toThrow(TransformError);
    expect(() => grad((v: A) => mx.sin(v))(x)).toThrow(TransformError);
    expect(mx.internal.traceState.depth).toBe(0);
    expect(vmap((v: A) => mx.sum(v))(x).tolist()).toEqual([4, 4, 4]);
    expect(grad(sumSq)(x3()).tolist()).toEqual([2, 4, 6]);
  });
});
