import { resolve } from "node:path";
import { resolveArchitectureFor } from "../arch/index.js";
import type { ConversionProgress } from "./gguf.js";
import { UserError } from "../errors.js";
import { openCheckpoint } from "../readers/checkpoint.js";
import type { FloatDtype } from "../readers/dtypes.js";
import { MLX_BITS, MLX_GROUP_SIZES, type MlxGroupSize } from "../writers/mlx/affine.js";
import { encodeUnit } from "../writers/mlx/encode.js";
import { checkDestination, StagingFolder } from "../writers/staging-folder.js";
import { planMlx, type MlxBitsOption, type MlxDecision, type MlxPlan } from "../plan/mlx.js";
import { isMixedRecipe, MIXED_RECIPES, type MixedRecipe } from "../writers/mlx/recipes.js";
import { assignShards, indexJson, MLX_MAX_SHARD_BYTES, shardLayout } from "../writers/mlx/shards.js";

export type { MlxBitsOption, MlxDecision } from "../plan/mlx.js";
export type { MixedRecipe } from "../writers/mlx/recipes.js";

export interface MlxConversionOptions {
  /** A model folder or a .safetensors file beside its config.json. */
  readonly source: string;
  /** The model folder to create (mlx-lm's --mlx-path). */
  readonly output: string;
  /** 2, 3, 4, 5, 6 or 8 for MLX affine quantization; 1.58 for ternary checkpoints, stored losslessly as 2-bit groups. */
  readonly bits: MlxBitsOption;
  /** Values per scale and bias: 32, 64 (default) or 128. */
  readonly groupSize?: MlxGroupSize;
  /** mlx-lm's mixed_L_H recipes; `bits` must then be the recipe's low bits. */
  readonly mixed?: MixedRecipe;
  /** With bits 1.58, ternarize a checkpoint that is not ternary (lossy) instead of refusing it. */
  readonly allowLossyTernary?: boolean;
  /** Replace an earlier model folder at `output` (one holding config.json). Default: refuse a non-empty folder. */
  readonly overwrite?: boolean;
  /** Largest shard in bytes; default mlx-lm's 5 GiB. */
  readonly maxShardBytes?: number;
  readonly onProgress?: (progress: ConversionProgress) => void;
}

export interface MlxReport {
  readonly output: string;
  readonly format: "mlx";
  /** The architecture's name (its GGUF `general.architecture`). */
  readonly architecture: string;
  readonly bits: MlxBitsOption;
  readonly groupSize: MlxGroupSize;
  readonly mixed?: MixedRecipe;
  /** The dtype of scales, biases and unquantized tensors (config torch_dtype), or "source" when each tensor keeps its own. */
  readonly floatDtype: FloatDtype | "source";
  /** Output tensors, counting weight, scales and biases separately. */
  readonly tensors: number;
  /** Quantized layers by bit width, and layers kept in float. */
  readonly layers: { readonly quantized: Readonly<Record<string, number>>; readonly float: number };
  /** Sum of tensor bytes (the index's total_size). */
  readonly bytes: number;
  readonly parameters: number;
  /** bytes * 8 / parameters, as mlx-lm prints after quantizing. */
  readonly bitsPerWeight: number;
  /** Every file written, relative to `output`. */
  readonly files: readonly string[];
  readonly shards: number;
  /** Every choice that departs from the requested settings, tensor by tensor. */
  readonly decisions: readonly MlxDecision[];
  /** The linear layers are mlx-lm BitLinear layers (BitNet), not affine groups. */
  readonly bitLinear?: boolean;
  readonly warnings: readonly string[];
}

/** Checkpoint -> mlx-lm model folder, one tensor (in chunks of rows) in memory at a time: open -> plan -> encode -> write. */
export async function convertToMlx(options: MlxConversionOptions): Promise<MlxReport> {
  const settings = validateOptions(options);
  const output = resolve(options.output);
  const overwrite = options.overwrite ?? false;
  checkDestination(output, overwrite);

  const checkpoint = await openCheckpoint(options.source);
  try {
    const architecture = resolveArchitectureFor("mlx", checkpoint.config, checkpoint.configFile);
    const plan = planMlx(checkpoint, architecture, settings);
    const shards = assignShards(plan.units, options.maxShardBytes ?? MLX_MAX_SHARD_BYTES);
    const staging = await StagingFolder.create(output);
    try {
      const encoded = await writeShards(shards, staging, options);
      const parameters = plan.units.reduce((sum, unit) => sum + unit.parameters, 0);
      await staging.writeText("model.safetensors.index.json", indexJson(shards, parameters));
      await staging.writeText("config.json", configJson(checkpoint.config, plan));
      const copied = await staging.copyModelFiles(checkpoint.directory);
      await staging.commit((destination) => checkDestination(destination, overwrite));
      const bytes = shards.reduce((sum, shard) => sum + shard.bytes, 0);
      return {
        output,
        format: "mlx",
        architecture: architecture.gguf,
        bits: options.bits,
        groupSize: settings.groupSize,
        ...(options.mixed ? { mixed: options.mixed } : {}),
        floatDtype: plan.castDtype ?? "source",
        tensors: plan.units.reduce((sum, unit) => sum + unit.outputs.length, 0),
        layers: layerCounts(plan.units),
        bytes,
        parameters,
        bitsPerWeight: (bytes * 8) / parameters,
        files: [...shards.map((shard) => shard.file), "model.safetensors.index.json", "config.json", ...copied].sort(),
        shards: shards.length,
        decisions: [...plan.decisions, ...encoded.decisions],
        ...(plan.quantizationConfig ? { bitLinear: true } : {}),
        warnings: encoded.warnings,
      };
    } catch (error) {
      await staging.discard();
      throw error;
    }
  } finally {
    await checkpoint.close();
  }
}

type Shard = ReturnType<typeof assignShards>[number];

/** Encodes every unit into its shard file; returns what the encoders found (lossy ternary units, NaN/Inf, overflow). */
async function writeShards(shards: readonly Shard[], staging: StagingFolder, options: MlxConversionOptions): Promise<{ decisions: MlxDecision[]; warnings: string[] }> {
  const decisions: MlxDecision[] = [];
  const warnings: string[] = [];
  const totalBytes = shards.reduce((sum, shard) => sum + shard.units.reduce((s, unit) => s + unit.source.byteLength, 0), 0);
  let doneBytes = 0;
  let reportedBytes = 0;
  for (const shard of shards) {
    const layout = shardLayout(shard.units);
    await staging.writeFile(shard.file, async (handle) => {
      await handle.write(layout.prefix, 0, layout.prefix.length, 0);
      for (const unit of shard.units) {
        // A unit found not to be ternary is encoded twice; progress never goes back or past the unit.
        let unitDone = 0;
        const result = await encodeUnit(unit, {
          handle,
          offsets: layout.offsets,
          allowLossyTernary: options.allowLossyTernary ?? false,
          onChunk: (bytes) => {
            unitDone = Math.min(unitDone + bytes, unit.source.byteLength);
            if (doneBytes + unitDone > reportedBytes) {
              reportedBytes = doneBytes + unitDone;
              options.onProgress?.({ tensor: unit.source.name, doneBytes: reportedBytes, totalBytes });
            }
          },
        });
        doneBytes += unit.source.byteLength;
        const name = unit.source.name;
        if (result.lossyTernary) {
          decisions.push({
            tensor: name,
            action: "lossy-ternary",
            bits: 2,
            message: `not ternary (it holds ${result.lossyTernary.firstOffender}): rounded to {-s, 0, +s} per group with s = mean |w|, which loses information`,
          });
        }
        if (result.nonFiniteInSource > 0) warnings.push(`tensor '${name}': ${result.nonFiniteInSource} NaN/Inf values in the source; the model may produce NaN`);
        if (result.overflowed > 0) warnings.push(`tensor '${name}': ${result.overflowed} values exceed the ${unit.dtype} range (config torch_dtype) and became ±Inf`);
      }
      // A sparse tail is impossible (the last tensor ends the file), but be explicit about the size.
      await handle.truncate(layout.fileBytes);
    });
  }
  return { decisions, warnings };
}

/** Quantized layers by bit width, and 2-D layers kept in float. */
function layerCounts(units: MlxPlan["units"]): MlxReport["layers"] {
  const quantized: Record<string, number> = {};
  let float = 0;
  for (const unit of units) {
    if (unit.encoding.kind === "float") {
      if (unit.source.shape.length >= 2) float++;
      continue;
    }
    const key = unit.encoding.kind === "affine" ? String(unit.encoding.bits) : "1.58";
    quantized[key] = (quantized[key] ?? 0) + 1;
  }
  return { quantized, float };
}

function validateOptions(options: MlxConversionOptions): { bits: MlxBitsOption; groupSize: MlxGroupSize; mixed?: MixedRecipe } {
  const { bits, mixed } = options;
  const groupSize = options.groupSize ?? 64;
  if (!(MLX_BITS as readonly number[]).includes(bits) && bits !== 1.58) {
    throw new UserError(`MLX bits must be one of ${[...MLX_BITS, 1.58].join(", ")}; got ${bits}`);
  }
  if (!(MLX_GROUP_SIZES as readonly number[]).includes(groupSize)) {
    throw new UserError(`MLX group size must be one of ${MLX_GROUP_SIZES.join(", ")}; got ${groupSize}`);
  }
  if (mixed !== undefined) {
    if (!isMixedRecipe(mixed)) throw new UserError(`unknown mixed recipe '${mixed}'; recipes: ${Object.keys(MIXED_RECIPES).join(", ")}`);
    if (bits === 1.58) throw new UserError("a mixed recipe cannot be combined with 1.58-bit ternary weights");
    const { low, high } = MIXED_RECIPES[mixed];
    if (bits !== low) throw new UserError(`the mixed recipe ${mixed} quantizes with ${low} and ${high} bits; its bits setting is ${low} (got ${bits})`);
  }
  if (options.maxShardBytes !== undefined && !(Number.isSafeInteger(options.maxShardBytes) && options.maxShardBytes > 0)) {
    throw new UserError(`the largest shard size must be a positive number of bytes; got ${options.maxShardBytes}`);
  }
  return mixed === undefined ? { bits, groupSize } : { bits, groupSize, mixed };
}

/**
 * config.json as mlx_lm/utils.py save_config writes it: the source config
 * without _name_or_path and vision_config, plus `quantization` and its copy
 * `quantization_config` (or BitNet's own `quantization_config`), keys sorted, indented by 4.
 */
export function configJson(source: Readonly<Record<string, unknown>>, plan: MlxPlan): string {
  const config: Record<string, unknown> = { ...source, ...plan.configUpdates };
  delete config["_name_or_path"];
  delete config["vision_config"];
  if (plan.quantization) {
    config["quantization"] = plan.quantization;
    config["quantization_config"] = plan.quantization;
  } else {
    // A BitLinear model: mlx-lm takes its affine path whenever `quantization` is present.
    delete config["quantization"];
    config["quantization_config"] = plan.quantizationConfig;
  }
  const sorted = Object.fromEntries(Object.entries(config).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return JSON.stringify(sorted, null, 4);
}
