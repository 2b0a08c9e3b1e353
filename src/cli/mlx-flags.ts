/**
 * What `edgequant convert --to mlx` needs beyond convertToMlx: flag parsing, the default
 * output folder name and the human summary, so the command stays a thin layer.
 */

import { basename, resolve } from "node:path";
import { UserError } from "../errors.js";
import { MLX_BITS, MLX_GROUP_SIZES, type MlxGroupSize } from "../writers/mlx/affine.js";
import type { MlxBitsOption } from "../plan/mlx.js";
import { isMixedRecipe, MIXED_RECIPES, type MixedRecipe } from "../writers/mlx/recipes.js";

interface MlxFlags {
  readonly bits?: string;
  readonly groupSize?: string;
  readonly mixed?: string;
}

export interface ParsedMlxFlags {
  readonly bits: MlxBitsOption;
  readonly groupSize: MlxGroupSize;
  readonly mixed?: MixedRecipe;
}

/**
 * --bits (default 4, mlx-lm's default; with --mixed, the recipe's low bits), --group-size
 * (default 64) and --mixed, checked with messages that name the flags.
 */
export function parseMlxFlags(flags: MlxFlags): ParsedMlxFlags {
  let mixed: MixedRecipe | undefined;
  if (flags.mixed !== undefined) {
    const name = flags.mixed.replace(/^mixed_/, "");
    if (!isMixedRecipe(name)) throw new UserError(`--mixed must be one of ${Object.keys(MIXED_RECIPES).join(", ")}; got '${flags.mixed}'`);
    mixed = name;
  }
  const allowed = [...MLX_BITS.map(String), "1.58"];
  if (flags.bits !== undefined && !allowed.includes(flags.bits)) {
    throw new UserError(`--bits for --to mlx must be one of ${allowed.join(", ")}; got '${flags.bits}'`);
  }
  const bits: MlxBitsOption = flags.bits !== undefined ? (Number(flags.bits) as MlxBitsOption) : mixed ? MIXED_RECIPES[mixed].low : 4;
  if (mixed && bits !== MIXED_RECIPES[mixed].low) {
    const { low, high } = MIXED_RECIPES[mixed];
    throw new UserError(`--mixed ${mixed} quantizes with ${low} and ${high} bits; leave out --bits or give --bits ${low}`);
  }
  const groupSize = flags.groupSize === undefined ? 64 : Number(flags.groupSize);
  if (!(MLX_GROUP_SIZES as readonly number[]).includes(groupSize)) {
    throw new UserError(`--group-size must be one of ${MLX_GROUP_SIZES.join(", ")}; got '${flags.groupSize}'`);
  }
  return { bits, groupSize: groupSize as MlxGroupSize, ...(mixed ? { mixed } : {}) };
}

/** `<model>-mlx-4bit`, `<model>-mlx-3bit-g32`, `<model>-mlx-mixed_3_6`, `<model>-mlx-1.58bit`, in the current folder. */
export function defaultMlxOutput(source: string, flags: ParsedMlxFlags): string {
  const model = basename(resolve(source)).replace(/\.safetensors$/, "");
  const precision = flags.mixed ? `mixed_${flags.mixed}` : `${flags.bits}bit`;
  const group = flags.groupSize === 64 ? "" : `-g${flags.groupSize}`;
  return resolve(`${model}-mlx-${precision}${group}`);
}

interface MlxSummaryInput {
  readonly output: string;
  readonly architecture: string;
  readonly bits: MlxBitsOption;
  readonly groupSize: number;
  readonly mixed?: MixedRecipe;
  readonly tensors: number;
  readonly shards: number;
  readonly bytes: number;
  readonly bitsPerWeight: number;
  readonly decisions: readonly { readonly tensor: string; readonly message: string }[];
  readonly bitLinear?: boolean;
}

/** The lines the CLI prints after a conversion (without --json). */
export function mlxSummary(report: MlxSummaryInput, formatBytes: (bytes: number) => string): string {
  const precision = report.mixed ? `mixed ${report.mixed}` : report.bits === 1.58 ? "1.58-bit ternary (2-bit groups)" : `${report.bits}-bit`;
  const lines = [
    `wrote ${report.output}`,
    `  ${report.architecture}, ${report.bitLinear ? "MLX BitLinear 1.58-bit ternary (4 codes per byte, one weight_scale per layer)" : `MLX affine ${precision}, group size ${report.groupSize}`}, ${report.tensors} tensors in ${report.shards} file${report.shards === 1 ? "" : "s"}, ` +
      `${formatBytes(report.bytes)}, ${report.bitsPerWeight.toFixed(2)} bits/weight`,
  ];
  if (report.decisions.length > 0) {
    lines.push(`  ${report.decisions.length} decision${report.decisions.length === 1 ? "" : "s"}:`);
    for (const decision of report.decisions) lines.push(`    ${decision.tensor}: ${decision.message}`);
  }
  return `${lines.join("\n")}\n`;
}
