import { isIgnoredTensor, missingHfTensors, tensorNameMapper, type MappedName } from "../arch/tensor-names.js";
import { ConfigReader } from "../arch/config.js";
import type { DecoderHparams } from "../arch/config.js";
import type { Architecture } from "../arch/types.js";
import { UserError } from "../errors.js";
import type { Checkpoint, CheckpointTensor } from "../readers/checkpoint.js";
import { checkRowLength } from "../readers/source-tensor.js";

export interface MappedTensor {
  readonly tensor: CheckpointTensor;
  readonly name: MappedName;
}

function listed(names: readonly string[]): string {
  return names.slice(0, 5).join(", ") + (names.length > 5 ? `, ... (${names.length} in all)` : "");
}

/**
 * Every checkpoint tensor with its role, as every format's planner starts: a tensor the
 * architecture does not define is refused with the names. `skip` leaves out tensors a
 * planner reads with another one (a packed weight's scale).
 */
export function mapCheckpointTensors(checkpoint: Checkpoint, architecture: Architecture, skip?: (name: string) => boolean): MappedTensor[] {
  const mapName = tensorNameMapper(architecture);
  // Hybrids: a block holds only its kind's roles (an attention tensor in a convolution block would not load).
  const blockRoles = architecture.blockRoles?.(new ConfigReader(checkpoint.config, checkpoint.configFile, architecture.configDefaults));
  const mapped: MappedTensor[] = [];
  const unmapped: string[] = [];
  for (const tensor of checkpoint.tensors.values()) {
    if (isIgnoredTensor(tensor.name) || skip?.(tensor.name) || architecture.ignoredHfTensors?.some((pattern) => pattern.test(tensor.name))) continue;
    const name = mapName(tensor.name);
    if (name && (name.block === undefined || !blockRoles || blockRoles(name.block).includes(name.role))) mapped.push({ tensor, name });
    else unmapped.push(tensor.name);
  }
  if (unmapped.length > 0) throw new UserError(`tensors the ${architecture.gguf} architecture does not define${blockRoles ? " (in their block)" : ""}: ${listed(unmapped)}`, { file: checkpoint.directory });
  return mapped;
}

/**
 * Refuses a checkpoint without a tensor the architecture requires in every block. Planners
 * call it after reading the tensors' headers, so a tensor of the wrong dtype is named first.
 * The output projection may be absent: the runtimes then reuse the token embedding (tied).
 */
export function checkRequiredTensors(checkpoint: Checkpoint, architecture: Architecture, layers: number, neededBy?: string): void {
  const blockRoles = architecture.blockRoles?.(new ConfigReader(checkpoint.config, checkpoint.configFile, architecture.configDefaults));
  const missing = missingHfTensors(architecture, layers, (name) => checkpoint.tensors.has(name), blockRoles);
  if (missing.length > 0) throw new UserError(`checkpoint is missing tensors${neededBy ? ` ${neededBy} needs` : ""}: ${listed(missing)}`, { file: checkpoint.directory });
}

/**
 * config.json's sizes against the tensors, before anything is sized by them: a config that says
 * 2^31 layers or a vocabulary of 2e7 would otherwise cost minutes and gigabytes before failing,
 * and heads that do not divide the projections would fail deep inside the encoders.
 */
export function checkHparamsAgainstTensors(checkpoint: Checkpoint, architecture: Architecture, hparams: DecoderHparams): void {
  const fail = (message: string) => {
    throw new UserError(message, { file: checkpoint.configFile });
  };
  const mapName = tensorNameMapper(architecture);
  let blocks = 0;
  const shapes = new Map<string, readonly number[]>();
  for (const tensor of checkpoint.tensors.values()) {
    const mapped = mapName(tensor.name);
    if (!mapped) continue;
    checkRowLength(tensor.shape, { file: tensor.file.path, tensor: tensor.name });
    if (mapped.block !== undefined) blocks = Math.max(blocks, mapped.block + 1);
    // Packed ternary weights (U8) hold four values per byte along a dimension: their shape is not the layer's.
    if (mapped.suffix === "weight" && tensor.dtype !== "U8" && !shapes.has(`${mapped.role}.${mapped.block ?? ""}`)) shapes.set(`${mapped.role}.${mapped.block ?? ""}`, tensor.shape);
  }
  // Fewer blocks than layers: checkRequiredTensors names the missing tensors (after their dtypes are read).
  if (blocks > hparams.layers) fail(`num_hidden_layers is ${hparams.layers}, but the checkpoint has ${blocks} blocks of tensors`);
  const { heads, kvHeads, headDim, hiddenSize, vocabSize } = hparams;
  if (!Number.isSafeInteger(kvHeads) || kvHeads <= 0 || heads % kvHeads !== 0) fail(`num_key_value_heads ${kvHeads} must be a positive divisor of num_attention_heads ${heads}`);
  const embedding = shapes.get("token_embd.");
  if (embedding && (embedding[0] !== vocabSize || embedding[1] !== hiddenSize)) {
    fail(`vocab_size ${vocabSize} and hidden_size ${hiddenSize} do not match the token embedding's shape [${embedding.join(", ")}]`);
  }
  for (const [role, rows, what] of [["attn_q", heads * headDim, `num_attention_heads ${heads}`], ["attn_k", kvHeads * headDim, `num_key_value_heads ${kvHeads}`]] as const) {
    for (let block = 0; block < blocks; block++) {
      const shape = shapes.get(`${role}.${block}`);
      if (shape && shape[0] !== rows) fail(`${what} x head_dim ${headDim} = ${rows} rows, but block ${block}'s ${role} has ${shape[0]}`);
    }
  }
  // After the config's own sizes, so a config that is wrong is named as such first.
  for (const tensor of checkpoint.tensors.values()) {
    const mapped = mapName(tensor.name);
    if (mapped) checkRoleShape(tensor, mapped, hparams);
  }
}

/** Roles every architecture shapes the same way (safetensors order: rows first). */
const SHAPE_BY_ROLE: Readonly<Record<string, (h: DecoderHparams) => readonly number[]>> = {
  output: (h) => [h.vocabSize, h.hiddenSize],
  output_norm: (h) => [h.hiddenSize],
  attn_norm: (h) => [h.hiddenSize],
  ffn_norm: (h) => [h.hiddenSize],
};

/** The roles with one shape in every architecture must have it (llama.cpp would refuse to load the model otherwise). */
function checkRoleShape(tensor: CheckpointTensor, mapped: MappedName, hparams: DecoderHparams): void {
  const expected = tensor.dtype === "U8" || mapped.suffix !== "weight" ? undefined : SHAPE_BY_ROLE[mapped.role]?.(hparams);
  if (expected && (expected.length !== tensor.shape.length || expected.some((d, i) => d !== tensor.shape[i]))) {
    throw new UserError(`expected shape [${expected.join(", ")}] (from config.json), found [${tensor.shape.join(", ")}]`, { file: tensor.file.path, tensor: tensor.name });
  }
}
