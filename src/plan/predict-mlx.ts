/**
 * The mlx-lm folder a checkpoint would convert to, described before it exists: the converter's
 * plan (every unit's bits and group), its shards' exact headers and its config.json, read by the
 * same function `fit` reads a real folder with.
 */
import { join } from "node:path";
import { resolveArchitectureFor } from "../arch/index.js";
import { configJson } from "../convert/mlx.js";
import type { Artifact, ArtifactTensor } from "../fit/artifact.js";
import { mlxArtifact } from "../fit/mlx-artifact.js";
import type { Checkpoint } from "../readers/checkpoint.js";
import { assignShards, MLX_MAX_SHARD_BYTES, shardLayout } from "../writers/mlx/shards.js";
import { planMlx, type MlxPlanOptions } from "./mlx.js";

export function predictMlx(checkpoint: Checkpoint, options: MlxPlanOptions, folder: string): Artifact {
  const architecture = resolveArchitectureFor("mlx", checkpoint.config, checkpoint.configFile);
  const plan = planMlx(checkpoint, architecture, options);
  const tensors: ArtifactTensor[] = [];
  const files: { path: string; bytes: number }[] = [];
  for (const shard of assignShards(plan.units, MLX_MAX_SHARD_BYTES)) {
    const path = join(folder, shard.file);
    const outputs = shard.units.flatMap((unit) => unit.outputs).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const output of outputs) tensors.push({ name: output.name, type: output.dtype, ne: [...output.shape].reverse(), bytes: output.byteLength, file: path });
    files.push({ path, bytes: shardLayout(shard.units).fileBytes });
  }
  const config = JSON.parse(configJson(checkpoint.config, plan)) as Record<string, unknown>;
  return mlxArtifact({ folder, config, tensors, files });
}
