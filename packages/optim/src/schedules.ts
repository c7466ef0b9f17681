/**
 * @file Learning-rate schedules, as MLX's and optax's: functions from the step count (the update
 * number, from 0) to the learning rate.
 */
import * as mx from "@tessera/core";
import type { Schedule } from "./optimizer.js";
import { checkNumber } from "./optimizer.js";

const checkStep = (op: string, step: unknown): number => {
  if (typeof step !== "number" || !Number.isInteger(step) || step < 0) {
    throw new RangeError(`${op}: the step must be a non-negative integer; got ${String(step)}`);
  }
  return step;
};

/**
 * `init * rate ** step`.
 * @example
 * const opt = new optim.SGD({ learningRate: optim.exponentialDecay(0.1, 0.9) });
 */
export function exponentialDecay(init: number, rate: number): Schedule {
  checkNumber("exponentialDecay", "init", init, -Infinity);
  checkNumber("exponentialDecay", "rate", rate, 0);
  return (step) => init * rate ** checkStep("exponentialDecay", step);
}

/**
 * `init * rate ** floor(step / stepSize)`.
 * @example
 * const lr = optim.stepDecay(0.1, 0.5, 100); // 0.1 for steps 0..99, 0.05 for 100..199, ...
 */
export function stepDecay(init: number, rate: number, stepSize: number): Schedule {
  checkNumber("stepDecay", "init", init, -Infinity);
  checkNumber("stepDecay", "rate", rate, 0);
  if (!Number.isInteger(stepSize) || stepSize < 1) throw new RangeError(`stepDecay: stepSize must be a positive integer; got ${stepSize}`);
  return (step) => init * rate ** Math.floor(checkStep("stepDecay", step) / stepSize);
}

/**
 * Cosine decay from `init` to `end` over `decaySteps` steps, then `end`:
 * `end + (init - end) * 0.5 * (1 + cos(pi * min(step, decaySteps) / decaySteps))`.
 * @example
 * const lr = optim.cosineDecay(1e-3, 1000, 1e-5);
 */
export function cosineDecay(init: number, decaySteps: number, end = 0): Schedule {
  checkNumber("cosineDecay", "init", init, -Infinity);
  checkNumber("cosineDecay", "end", end, -Infinity);
  if (!Number.isInteger(decaySteps) || decaySteps < 1) throw new RangeError(`cosineDecay: decaySteps must be a positive integer; got ${decaySteps}`);
  return (step) => {
    const s = Math.min(checkStep("cosineDecay", step), decaySteps);
    return end + (init - end) * 0.5 * (1 + Math.cos((Math.PI * s) / decaySteps));
  };
}

/**
 * Linear from `init` (step 0) to `end` (step `steps`), then `end`.
 * @example
 * const warmup = optim.linearSchedule(0, 1e-3, 100);
 */
export function linearSchedule(init: number, end: number, steps: number): Schedule {
  checkNumber("linearSchedule", "init", init, -Infinity);
  checkNumber("linearSchedule", "end", end, -Infinity);
  if (!Number.isInteger(steps) || steps < 1) throw new RangeError(`linearSchedule: steps must be a positive integer; got ${steps}`);
  return (step) => {
    const s = Math.min(checkStep("linearSchedule", step), steps);
    return init + (s * (end - init)) / steps;
  };
}

/**
 * Joins schedules: `schedules[0]` before `boundaries[0]`, then `schedules[i]` from `boundaries[i-1]`,
 * each started from step 0 at its boundary (as MLX and optax). Needs one more schedule than
 * boundaries; boundaries must be non-decreasing non-negative integers.
 * @example
 * const lr = optim.joinSchedules([optim.linearSchedule(0, 1e-3, 100), optim.cosineDecay(1e-3, 900)], [100]);
 */
export function joinSchedules(schedules: Schedule[], boundaries: number[]): Schedule {
  if (!Array.isArray(schedules) || schedules.length === 0 || schedules.some((s) => typeof s !== "function")) {
    throw new TypeError("joinSchedules: schedules must be a non-empty JS array of functions");
  }
  if (!Array.isArray(boundaries) || boundaries.length !== schedules.length - 1) {
    throw new RangeError(`joinSchedules: expected ${schedules.length - 1} boundaries for ${schedules.length} schedules; got ${Array.isArray(boundaries) ? boundaries.length : typeof boundaries}`);
  }
  boundaries.forEach((b, i) => {
    if (!Number.isInteger(b) || b < 0 || (i > 0 && b < boundaries[i - 1])) {
      throw new RangeError(`joinSchedules: boundaries must be non-decreasing non-negative integers; got [${boundaries}]`);
    }
  });
  return (step): number | mx.Array => {
    checkStep("joinSchedules", step);
    let i = 0;
    while (i < boundaries.length && step >= boundaries[i]) i++;
    return schedules[i](i === 0 ? step : step - boundaries[i - 1]);
  };
}
