import type { Architecture } from "../arch/types.js";
import { ConfigReader, type DecoderHparams } from "../arch/config.js";
import { decoderMetadata } from "../arch/decoder-metadata.js";
import { IGNORED_HF_TENSORS, tensorNameMapper } from "../arch/tensor-names.js";
import { UserError } from "../errors.js";
import type { Checkpoint, CheckpointTensor } from "../readers/checkpoint.js";
import { isFloatDtype } from "../readers/dtypes.js";
import { GgmlType } from "../quant/ggml-types.js";
import type { Scheme } from "../quant/schemes.js";
import { str, u32, type GgufMetadata, type GgufValue } from "../writers/gguf/metadata.js";

/** Where an output tensor's values come from. */
export type TensorOrigin =
  | { kind: "checkpoint"; tensor: CheckpointTensor; ropeHeads?: number }
  | { kind: "generated"; values: Float32Array };

export interface PlannedTensor {
  readonly name: string;
  readonly type: GgmlType;
  readonly shape: readonly number[];
  readonly origin: TensorOrigin;
}

export interface GgufPlan {
  readonly architecture: Architecture;
  readonly hparams: DecoderHparams;
  readonly metadata: GgufMetadata;
  readonly tensors: readonly PlannedTensor[];
}

/** GGUF's quantization format version, which llama.cpp checks on quantized files. */
const GGML_QUANT_VERSION = 2;

/**
 * Decides every output tensor (name, type, shape, where its values come from)
 * and the model metadata, before any tensor data is read.
 */
export function planGguf(checkpoint: Checkpoint, architecture: Architecture, scheme: Scheme, modelName: string): GgufPlan {
  const config = new ConfigReader(checkpoint.config, checkpoint.configFile);
  const hparams = config.decoderHparams();
  const mapName = tensorNameMapper(architecture.tensors);

  const tensors: PlannedTensor[] = [];
  const unmapped: string[] = [];
  for (const tensor of checkpoint.tensors.values()) {
    if (IGNORED_HF_TENSORS.some((pattern) => pattern.test(tensor.name))) continue;
    const mapped = mapName(tensor.name);
    if (!mapped) {
      unmapped.push(tensor.name);
      continue;
    }
    if (!isFloatDtype(tensor.dtype)) {
      throw new UserError(`dtype ${tensor.dtype} is not supported for conversion (supported: F32, F16, BF16)`, { file: tensor.file.path, tensor: tensor.name });
    }
    const ropeHeads = !architecture.interleaveRopeRows ? undefined : mapped.role === "attn_q" ? hparams.heads : mapped.role === "attn_k" ? hparams.kvHeads : undefined;
    tensors.push({
      name: mapped.gguf,
      type: tensorType(tensor.shape, scheme),
      shape: tensor.shape,
      origin: ropeHeads === undefined ? { kind: "checkpoint", tensor } : { kind: "checkpoint", tensor, ropeHeads },
    });
  }
  if (unmapped.length > 0) {
    const shown = unmapped.slice(0, 5).join(", ") + (unmapped.length > 5 ? `, ... (${unmapped.length} in all)` : "");
    throw new UserError(`tensors the ${architecture.gguf} architecture does not define: ${shown}`, { file: checkpoint.directory });
  }
  for (const generated of architecture.generatedTensors?.(hparams) ?? []) {
    tensors.push({ name: generated.gguf, type: GgmlType.F32, shape: [generated.values.length], origin: { kind: "generated", values: generated.values } });
  }
  tensors.sort(byGgufOrder);
  checkExpectedTensors(tensors, hparams, checkpoint);

  const metadata: GgufMetadata = new Map<string, GgufValue>([
    ["general.architecture", str(architecture.gguf)],
    ["general.type", str("model")],
    ["general.name", str(modelName)],
    ["general.file_type", u32(scheme.fileType)],
    ["general.quantization_version", u32(GGML_QUANT_VERSION)],
    ...decoderMetadata(architecture, hparams, config),
  ]);
  return { architecture, hparams, metadata, tensors };
}

/** 1-D tensors (norms, biases) stay F32 as llama.cpp's converter keeps them. */
function tensorType(shape: readonly number[], scheme: Scheme): GgmlType {
  return shape.length <= 1 ? GgmlType.F32 : scheme.weightType;
}

function checkExpectedTensors(tensors: readonly PlannedTensor[], hparams: DecoderHparams, checkpoint: Checkpoint) {
  const names = new Set(tensors.map((t) => t.name));
  // output.weight may be absent: llama.cpp then reuses token_embd (tied embeddings).
  const required = ["token_embd.weight", "output_norm.weight"];
  for (let block = 0; block < hparams.layers; block++) {
    for (const role of ["attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"]) {
      required.push(`blk.${block}.${role}.weight`);
    }
  }
  const missing = required.filter((name) => !names.has(name));
  if (missing.length > 0) {
    throw new UserError(`checkpoint is missing tensors: ${missing.slice(0, 5).join(", ")}${missing.length > 5 ? ", ..." : ""} (GGUF names)`, { file: checkpoint.directory });
  }
}

/** llama.cpp's own order: global tensors first, then blocks in numeric order. */
function byGgufOrder(a: PlannedTensor, b: PlannedTensor): number {
  const rank = (name: string) => {
    const block = /^blk\.(\d+)\./.exec(name);
    return block ? 1 + Number(block[1]) : name.startsWith("output") ? Number.MAX_SAFE_INTEGER : 0;
  };
  return rank(a.name) - rank(b.name) || a.name.localeCompare(b.name);
}
