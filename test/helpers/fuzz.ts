/**
 * @file The knobs of the fuzz tests (test/fuzz/), from the environment:
 *
 * - TESSERA_FUZZ_RUNS: how many random cases (default 2000 graphs, the CI setting; the binding
 *   test scales its case counts by RUNS / 2000);
 * - TESSERA_FUZZ_SEED: the seed of the first chunk (default fixed, so CI runs are reproducible);
 *   chunk k of a long run uses seed + k, so a failing chunk's printed seed, given here with
 *   TESSERA_FUZZ_RUNS at most the chunk size, replays it as the first chunk;
 * - TESSERA_FUZZ_PATH: fast-check's path of a failing case (printed with the seed): with the seed,
 *   replays exactly that case and its shrinking.
 */
export const DEFAULT_RUNS = 2000;
export const DEFAULT_SEED = 20240607;

function intFromEnv(name: string, dflt: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return dflt;
  const v = Number(raw);
  if (!Number.isInteger(v)) throw new Error(`${name} must be an integer; got ${JSON.stringify(raw)}`);
  return v;
}

export const FUZZ = {
  runs: Math.max(1, intFromEnv("TESSERA_FUZZ_RUNS", DEFAULT_RUNS)),
  seed: intFromEnv("TESSERA_FUZZ_SEED", DEFAULT_SEED),
  path: process.env.TESSERA_FUZZ_PATH || undefined,
};

/** Splits `total` runs into chunks of at most `size`: [first run index, count, seed] each. */
export function chunks(total: number, size: number): { start: number; count: number; seed: number }[] {
  const out = [];
  for (let start = 0, k = 0; start < total; start += size, k++) out.push({ start, count: Math.min(size, total - start), seed: FUZZ.seed + k });
  return out;
}
