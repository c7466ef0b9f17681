import { it } from "vitest";
import * as mx from "@tessera/core";
import { RECIPES } from "./binding-model.js";
import { rng } from "../helpers/reference.js";
it("recipes", () => {
  RECIPES.forEach((f, k) => { try { const xs = f(rng(k + 1)); mx.eval(xs); console.log(k, "ok", xs.map((x) => `${x.dtype}[${x.shape}]`).join(" ")); } catch (e) { console.log(k, "FAIL", String(e).slice(0, 200)); } });
});
