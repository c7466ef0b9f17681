// Data for the language-model example: the bundled public-domain text (data/coriolanus.txt), its
// character vocabulary, and random training windows drawn with a small seeded generator.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import * as mx from "@tessera/core";

/** The bundled text: the opening of Shakespeare's Coriolanus (see data/SOURCE.md). */
export const TEXT_PATH = fileURLToPath(new URL("./data/coriolanus.txt", import.meta.url));

export function loadText(path = TEXT_PATH) {
  return readFileSync(path, "utf8");
}

/** The sorted distinct characters of `text`, with `encode` (string to Int32Array) and `decode`. */
export function makeVocab(text) {
  const chars = [...new Set(text)].sort();
  const index = new Map(chars.map((c, i) => [c, i]));
  return {
    chars,
    size: chars.length,
    encode(s) {
      const ids = new Int32Array(s.length);
      for (let i = 0; i < s.length; i++) {
        const id = index.get(s[i]);
        if (id === undefined) throw new RangeError(`encode: character ${JSON.stringify(s[i])} is not in the vocabulary`);
        ids[i] = id;
      }
      return ids;
    },
    decode: (ids) => Array.from(ids, (i) => chars[i]).join(""),
  };
}

/** A small seeded generator (mulberry32): the same seed gives the same windows. */
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/**
 * `batch` windows of `seqLen + 1` characters at random offsets of `ids`: the inputs `x [batch,
 * seqLen]` and the targets `y`, the same windows shifted by one (int32).
 */
export function sampleBatch(ids, batch, seqLen, rand) {
  if (ids.length < seqLen + 1) throw new RangeError(`sampleBatch: the text has ${ids.length} characters; need at least seqLen + 1 = ${seqLen + 1}`);
  const x = new Int32Array(batch * seqLen), y = new Int32Array(batch * seqLen);
  for (let b = 0; b < batch; b++) {
    const s = Math.floor(rand() * (ids.length - seqLen));
    x.set(ids.subarray(s, s + seqLen), b * seqLen);
    y.set(ids.subarray(s + 1, s + 1 + seqLen), b * seqLen);
  }
  return [mx.reshape(mx.array(x), [batch, seqLen]), mx.reshape(mx.array(y), [batch, seqLen])];
}
