import { UserError } from "../errors.js";
import { didYouMean } from "../suggest.js";
import { FileType, fileTypeName, GgmlType } from "./ggml-types.js";

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

/** A scheme is named after its file type, in lower case: "q4_k_m" for Q4_K_M. */
const scheme = (fileType: FileType, weightType: GgmlType): Scheme => ({ name: fileTypeName(fileType).toLowerCase(), fileType, weightType });

export const SCHEMES: readonly Scheme[] = [
  scheme(FileType.F32, GgmlType.F32),
  scheme(FileType.F16, GgmlType.F16),
  scheme(FileType.BF16, GgmlType.BF16),
  scheme(FileType.Q8_0, GgmlType.Q8_0),
  scheme(FileType.Q4_0, GgmlType.Q4_0),
  scheme(FileType.Q4_1, GgmlType.Q4_1),
  scheme(FileType.Q5_0, GgmlType.Q5_0),
  scheme(FileType.Q5_1, GgmlType.Q5_1),
  scheme(FileType.Q2_K, GgmlType.Q2_K),
  scheme(FileType.Q3_K_S, GgmlType.Q3_K),
  scheme(FileType.Q3_K_M, GgmlType.Q3_K),
  scheme(FileType.Q3_K_L, GgmlType.Q3_K),
  scheme(FileType.Q4_K_S, GgmlType.Q4_K),
  scheme(FileType.Q4_K_M, GgmlType.Q4_K),
  scheme(FileType.Q5_K_S, GgmlType.Q5_K),
  scheme(FileType.Q5_K_M, GgmlType.Q5_K),
  scheme(FileType.Q6_K, GgmlType.Q6_K),
  scheme(FileType.TQ1_0, GgmlType.TQ1_0),
  scheme(FileType.TQ2_0, GgmlType.TQ2_0),
];

/** `--bits` is shorthand for the scheme most users want at that size. */
export const BITS_SHORTHANDS: ReadonlyMap<string, string> = new Map([["32", "f32"], ["16", "f16"], ["8", "q8_0"], ["4", "q4_k_m"], ["1.58", "tq1_0"]]);

/** A scheme by name ("q4_k_m"), or from the CLI's `--scheme` / `--bits` (default 16 bits). */
export function resolveScheme(choice: string | { scheme?: string; bits?: string }): Scheme {
  const options = typeof choice === "string" ? { scheme: choice } : choice;
  if (typeof options !== "object" || options === null) throw new UserError(`a scheme is a name such as 'q4_k_m'; got ${JSON.stringify(choice)}`);
  if (options.scheme !== undefined && options.bits !== undefined) throw new UserError("give --scheme or --bits, not both");
  const name = options.scheme?.toLowerCase() ?? BITS_SHORTHANDS.get(options.bits ?? "16");
  if (name === undefined) throw new UserError(`--bits must be one of ${[...BITS_SHORTHANDS.keys()].join(", ")}; got '${options.bits}'`);
  const found = SCHEMES.find((s) => s.name === name);
  if (!found) throw new UserError(`unknown scheme '${name}'${didYouMean(name, SCHEMES.map((s) => s.name))}; schemes: ${SCHEMES.map((s) => s.name).join(", ")}`);
  return found;
}
