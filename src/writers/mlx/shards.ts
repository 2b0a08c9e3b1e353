/**
 * Safetensors shards and the index, as mlx-lm's save_model writes them
 * (mlx_lm/utils.py make_shards / save_model):
 *  - a new shard starts when the next tensor would take the current one past
 *    the limit (5 GB, `MAX_FILE_SIZE_GB << 30` bytes);
 *  - one shard is `model.safetensors`, several are
 *    `model-00001-of-00003.safetensors`...;
 *  - every shard carries the metadata {"format": "mlx"};
 *  - `model.safetensors.index.json` is written in both cases, with
 *    metadata.total_size (sum of tensor bytes), metadata.total_parameters and
 *    the weight_map sorted by name, indented by 4 as Python's json.dump(indent=4).
 *
 * We cut shards between source tensors rather than between output tensors, so
 * a quantized layer's weight, scales and biases always share a file (mlx-lm
 * loads every model*.safetensors in the folder, so where the cut falls does
 * not matter to it), and never write an empty shard.
 */

import type { MlxUnit, OutputTensor } from "../../plan/mlx.js";

/** mlx-lm's MAX_FILE_SIZE_GB = 5, shifted by 30: 5 GiB. */
export const MLX_MAX_SHARD_BYTES = 5 * 2 ** 30;

interface PlannedShard {
  readonly file: string;
  readonly units: readonly MlxUnit[];
  readonly bytes: number;
}

function unitBytes(unit: MlxUnit): number {
  return unit.outputs.reduce((sum, output) => sum + output.byteLength, 0);
}

export function assignShards(units: readonly MlxUnit[], maxBytes: number): PlannedShard[] {
  const groups: { units: MlxUnit[]; bytes: number }[] = [];
  let current: { units: MlxUnit[]; bytes: number } = { units: [], bytes: 0 };
  for (const unit of units) {
    const bytes = unitBytes(unit);
    if (current.units.length > 0 && current.bytes + bytes > maxBytes) {
      groups.push(current);
      current = { units: [], bytes: 0 };
    }
    current.units.push(unit);
    current.bytes += bytes;
  }
  if (current.units.length > 0 || groups.length === 0) groups.push(current);
  const count = groups.length;
  const pad = (n: number) => String(n).padStart(5, "0");
  return groups.map((group, i) => ({
    file: count === 1 ? "model.safetensors" : `model-${pad(i + 1)}-of-${pad(count)}.safetensors`,
    units: group.units,
    bytes: group.bytes,
  }));
}

interface ShardLayout {
  /** 8-byte length, JSON header padded with spaces to a multiple of 8. */
  readonly prefix: Uint8Array;
  /** Absolute file offset of each output tensor's data. */
  readonly offsets: ReadonlyMap<string, number>;
  readonly fileBytes: number;
}

/**
 * The header of one shard. Keys are sorted, as MLX's save_safetensors (nlohmann
 * JSON) emits them; data follows in write order: unit by unit, weight, scales,
 * biases.
 */
export function shardLayout(units: readonly MlxUnit[]): ShardLayout {
  const entries: { output: OutputTensor; begin: number }[] = [];
  let offset = 0;
  for (const unit of units) {
    for (const output of unit.outputs) {
      entries.push({ output, begin: offset });
      offset += output.byteLength;
    }
  }
  const header: Record<string, unknown> = { __metadata__: { format: "mlx" } };
  for (const { output, begin } of [...entries].sort((a, b) => (a.output.name < b.output.name ? -1 : 1))) {
    header[output.name] = { dtype: output.dtype, shape: output.shape, data_offsets: [begin, begin + output.byteLength] };
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const headerBytes = Buffer.from(json, "utf8");
  const prefix = Buffer.alloc(8 + headerBytes.length);
  prefix.writeBigUInt64LE(BigInt(headerBytes.length), 0);
  headerBytes.copy(prefix, 8);
  const dataStart = prefix.length;
  return {
    prefix,
    offsets: new Map(entries.map(({ output, begin }) => [output.name, dataStart + begin])),
    fileBytes: dataStart + offset,
  };
}

export function indexJson(shards: readonly PlannedShard[], totalParameters: number): string {
  const weightMap: [string, string][] = [];
  for (const shard of shards) for (const unit of shard.units) for (const output of unit.outputs) weightMap.push([output.name, shard.file]);
  weightMap.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const totalSize = shards.reduce((sum, shard) => sum + shard.bytes, 0);
  const index = { metadata: { total_size: totalSize, total_parameters: totalParameters }, weight_map: Object.fromEntries(weightMap) };
  return `${JSON.stringify(index, null, 4)}`;
}
