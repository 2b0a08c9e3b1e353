/**
 * The output formats, one entry each, read by the CLI, recipes and the Action alike: what
 * the format writes (a file or a folder), which options belong to it, and what may already
 * sit at its destination. The architectures declare which formats they convert to
 * (src/arch/), the converters beside this file do the work.
 */
import { existsSync, statSync } from "node:fs";
import { OUTPUT_FORMATS, type OutputFormat } from "../arch/types.js";
import { UserError } from "../errors.js";
import { checkOnnxDestination } from "../writers/onnx/layout.js";
import { checkDestination as checkModelFolderDestination, EXISTING_OUTPUT } from "../writers/staging-folder.js";

export { OUTPUT_FORMATS, type OutputFormat };

/** Conversion options that only some formats read (the CLI's flags, camel-cased). */
export type FormatOption = "scheme" | "splitMaxSize" | "part" | "threads" | "groupSize" | "layout" | "accuracyLevel" | "mixed";

export interface OutputFormatInfo {
  readonly format: OutputFormat;
  /** The runtimes that load it, for help texts. */
  readonly runtimes: string;
  readonly layout: "file" | "folder";
  readonly options: readonly FormatOption[];
  /**
   * Refuses, before any work, a destination this format must not write: one in the way, or an
   * earlier output of the format unless `overwrite` (mlx_lm.convert refuses; so do we, by default).
   */
  readonly checkDestination: (destination: string, overwrite: boolean) => void;
}

function checkGgufDestination(destination: string, overwrite: boolean): void {
  // fit, llama.cpp's tools, LM Studio and Ollama know a model file by its extension.
  if (!destination.toLowerCase().endsWith(".gguf")) throw new UserError("a GGUF output's name must end in .gguf", { file: destination });
  if (!existsSync(destination)) return;
  if (statSync(destination).isDirectory()) throw new UserError("a folder is in the way of the GGUF file; remove it or choose another path", { file: destination });
  if (!overwrite) throw new UserError(EXISTING_OUTPUT, { file: destination });
}

export const OUTPUT_FORMAT_INFO: Readonly<Record<OutputFormat, OutputFormatInfo>> = {
  gguf: { format: "gguf", runtimes: "llama.cpp", layout: "file", options: ["scheme", "splitMaxSize", "part", "threads"], checkDestination: checkGgufDestination },
  onnx: { format: "onnx", runtimes: "onnxruntime, transformers.js", layout: "folder", options: ["groupSize", "layout", "accuracyLevel"], checkDestination: checkOnnxDestination },
  mlx: { format: "mlx", runtimes: "mlx-lm, MLX Swift", layout: "folder", options: ["groupSize", "mixed"], checkDestination: checkModelFolderDestination },
};

/** Options given for `format` that belong to other formats: one message naming them and where they belong. */
export function checkFormatOptions(format: OutputFormat, given: readonly FormatOption[], flagName: (option: FormatOption) => string): void {
  const foreign = given.filter((option) => !OUTPUT_FORMAT_INFO[format].options.includes(option));
  if (foreign.length === 0) return;
  const owners = (option: FormatOption) => OUTPUT_FORMATS.filter((f) => OUTPUT_FORMAT_INFO[f].options.includes(option));
  const where = [...new Set(foreign.map((option) => owners(option).join(" or ")))];
  throw new UserError(`${foreign.map(flagName).join(", ")} can only be used with --to ${where.join(", --to ")}`);
}
