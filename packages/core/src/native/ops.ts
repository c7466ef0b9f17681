/**
 * @file Opcodes, read from the addon when it loads (native/src/ops.def is the only list): a
 * primitive names its native op and gets the number the addon gave it.
 */
import { native } from "./binding.js";

const CODES = new Map<string, number>(native.opTable().map((name, i) => [name, i]));

/** The opcode of a native op by its name in native/src/ops.def; throws for a name the addon lacks. */
export function opcode(name: string): number {
  const code = CODES.get(name);
  if (code === undefined) throw new Error(`tessera: the native addon has no op "${name}" (rebuild it: pnpm run build:native)`);
  return code;
}
