/**
 * @file Opcodes, mirroring native/src/ops.def line for line (the addon's opTable() is checked
 * against this list by test/native/op-table.test.ts).
 */
export const OP_NAMES = [
  "full", "arange", "identity", "broadcastTo", "reshape", "transpose", "slice", "copy", "cast",
  "concatenate", "matmul", "neg", "abs", "sign", "sqrt", "rsqrt", "exp", "expm1", "log", "log1p",
  "log2", "log10", "sin", "cos", "tan", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh",
  "arcsinh", "arccosh", "arctanh", "sigmoid", "erf", "erfinv", "floor", "ceil", "round",
  "logicalNot", "isnan", "isinf", "add", "sub", "mul", "div", "pow", "maximum", "minimum",
  "arctan2", "remainder", "floorDivide", "logaddexp", "logicalAnd", "logicalOr", "bitwiseAnd",
  "bitwiseOr", "bitwiseXor", "leftShift", "rightShift", "equal", "notEqual", "less", "lessEqual",
  "greater", "greaterEqual", "where", "reduceSum", "reduceProd", "reduceMax", "reduceMin",
  "argmax", "argmin", "sliceUpdate",
] as const;

export type OpName = (typeof OP_NAMES)[number];

const CODES = new Map<string, number>(OP_NAMES.map((n, i) => [n, i]));

/** The opcode of a native op by its name in ops.def. */
export function opcode(name: OpName): number {
  return CODES.get(name)!;
}
