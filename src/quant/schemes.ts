import { UserError } from "../errors.js";
import { GgmlType } from "./ggml-types.js";

/**
 * Output schemes for `--scheme`: a single ggml type or one of llama.cpp's
 * mixtures. `fileType` is llama.cpp's `general.file_type` (enum llama_ftype).
 */
export interface Scheme {
  readonly name: string;
  readonly fileType: number;
  /** The mixture's base type (llama_ftype_get_default_type); 1-D tensors (norms, biases) always stay F32. */
  readonly weightType: GgmlType;
}

const scheme = (name: string, fileType: number, weightType: GgmlType): Scheme => ({ name, fileType, weightType });

export const SCHEMES: readonly Scheme[] = [
  scheme("f32", 0, GgmlType.F32),
  scheme("f16", 1, GgmlType.F16),
  scheme("bf16", 32, GgmlType.BF16),
  scheme("q8_0", 7, GgmlType.Q8_0),
  scheme("q4_0", 2, GgmlType.Q4_0),
  scheme("q4_1", 3, GgmlType.Q4_1),
  scheme("q5_0", 8, GgmlType.Q5_0),
  scheme("q5_1", 9, GgmlType.Q5_1),
  scheme("q2_k", 10, GgmlType.Q2_K),
  scheme("q3_k_s", 11, GgmlType.Q3_K),
  scheme("q3_k_m", 12, GgmlType.Q3_K),
  scheme("q3_k_l", 13, GgmlType.Q3_K),
  scheme("q4_k_s", 14, GgmlType.Q4_K),
  scheme("q4_k_m", 15, GgmlType.Q4_K),
  scheme("q5_k_s", 16, GgmlType.Q5_K),
  scheme("q5_k_m", 17, GgmlType.Q5_K),
  scheme("q6_k", 18, GgmlType.Q6_K),
  scheme("tq1_0", 36, GgmlType.TQ1_0),
  scheme("tq2_0", 37, GgmlType.TQ2_0),
];

/** `--bits` is shorthand for the scheme most users want at that size. */
export const BITS_SHORTHANDS: ReadonlyMap<string, string> = new Map([["32", "f32"], ["16", "f16"], ["8", "q8_0"], ["4", "q4_k_m"], ["1.58", "tq1_0"]]);

export function resolveScheme(options: { scheme?: string; bits?: string }): Scheme {
  if (options.scheme !== undefined && options.bits !== undefined) throw new UserError("give --scheme or --bits, not both");
  const name = options.scheme?.toLowerCase() ?? BITS_SHORTHANDS.get(options.bits ?? "16");
  if (name === undefined) throw new UserError(`--bits must be one of ${[...BITS_SHORTHANDS.keys()].join(", ")}; got '${options.bits}'`);
  const found = SCHEMES.find((s) => s.name === name);
  if (!found) throw new UserError(`unknown scheme '${name}'; schemes: ${SCHEMES.map((s) => s.name).join(", ")}`);
  return found;
}
