import { architectureByGgufName } from "../arch/index.js";
import type { Architecture } from "../arch/types.js";
import { ConfigReader, type DecoderHparams } from "../arch/config.js";
import { architectureHparams, decoderMetadata, kvHeadsPerLayer } from "../arch/decoder-metadata.js";
import { ggufConvShape, isBlockLinear, roleKind } from "../arch/tensor-names.js";
import { checkHparamsAgainstTensors, checkRequiredTensors, mapCheckpointTensors } from "./checkpoint-tensors.js";
import { ternaryLayout } from "../arch/ternary-layout.js";
import { UserError } from "../errors.js";
import type { Checkpoint, CheckpointTensor } from "../readers/checkpoint.js";
import { absmeanTernarySource, packedBitnetSource } from "../readers/ternary-sources.js";
import type { GgufInput } from "../readers/gguf-input.js";
import type { SourceTensor } from "../readers/source-tensor.js";
import { GgmlType } from "../quant/ggml-types.js";
import { llamaLoaderOrder, mixtureTypes, type MixtureModel } from "../quant/mixtures.js";
import type { Scheme } from "../quant/schemes.js";
import { str, u32, type GgufMetadata } from "../writers/gguf/metadata.js";

/** Where an output tensor's values come from. */
export type TensorOrigin =
  | { kind: "source"; tensor: SourceTensor; ropeHeads?: number; add?: number }
  | { kind: "generated"; values: Float32Array };

export interface PlannedTensor {
  readonly name: string;
  readonly type: GgmlType;
  readonly shape: readonly number[];
  readonly origin: TensorOrigin;
}

export interface GgufPlan {
  readonly architecture: Architecture;
  readonly metadata: GgufMetadata;
  readonly tensors: readonly PlannedTensor[];
}

/** GGUF's quantization format version, which llama.cpp checks on quantized files. */
const GGML_QUANT_VERSION = 2;

/**
 * The keys that say how a file is quantized, written last as llama-quantize writes them
 * (it copies its input's keys, then sets these two), so our files equal its files byte for byte.
 */
export function quantizationKeys(scheme: Scheme): GgufMetadata {
  return new Map([
    ["general.quantization_version", u32(GGML_QUANT_VERSION)],
    ["general.file_type", u32(scheme.fileType)],
  ]);
}

type Candidate = Omit<PlannedTensor, "type">;

/**
 * Decides every output tensor (name, type, shape, where its values come from)
 * and the model metadata for a safetensors checkpoint, before any data is read.
 */
export function planFromCheckpoint(checkpoint: Checkpoint, architecture: Architecture, scheme: Scheme, modelName: string): GgufPlan & { hparams: DecoderHparams } {
  const config = new ConfigReader(checkpoint.config, checkpoint.configFile, architecture.configDefaults);
  const hparams = architectureHparams(architecture, config);
  checkHparamsAgainstTensors(checkpoint, architecture, hparams);
  architecture.checkConfig?.(config);
  const features = architecture.features(config, hparams);
  const ternary = ternaryLayout(checkpoint, architecture);
  // A packed weight's scale is read with its weight.
  const skip = (name: string) => ternary === "packed" && name.endsWith(".weight_scale");
  const candidates: Candidate[] = mapCheckpointTensors(checkpoint, architecture, skip).map(({ tensor, name: mapped }) => {
    const linear = isBlockLinear(mapped.role) && mapped.suffix === "weight";
    const source =
      linear && ternary === "packed"
        ? packedBitnetSource(tensor, scaleOf(checkpoint, tensor))
        : linear && ternary === "absmean"
          ? absmeanTernarySource(tensor.file.sourceTensor(tensor))
          : tensor.file.sourceTensor(tensor);
    const ropeHeads = !architecture.interleaveRopeRows ? undefined : mapped.role === "attn_q" ? hparams.heads : mapped.role === "attn_k" ? hparams.kvHeads : undefined;
    const add = mapped.suffix === "weight" ? architecture.ggufValueTransforms?.find((t) => t.roles.includes(mapped.role))?.add : undefined;
    const origin: TensorOrigin = { kind: "source", tensor: source, ...(ropeHeads === undefined ? {} : { ropeHeads }), ...(add === undefined ? {} : { add }) };
    const shape = roleKind(mapped.role) === "conv" ? ggufConvShape(source.shape) : source.shape;
    return { name: mapped.gguf, shape, origin };
  });
  checkRequiredTensors(checkpoint, architecture, hparams.layers);
  for (const generated of architecture.generatedTensors?.(hparams) ?? []) {
    candidates.push({ name: generated.gguf, shape: [generated.values.length], origin: { kind: "generated", values: generated.values } });
  }

  const metadata: GgufMetadata = new Map([
    ["general.architecture", str(architecture.gguf)],
    ["general.type", str("model")],
    ["general.name", str(modelName)],
    ...decoderMetadata(architecture, hparams, features, config),
  ]);
  // llama_model_quantize's n_gqa() reads layer 0's KV heads.
  const model = { layers: hparams.layers, heads: hparams.heads, kvHeads: kvHeadsPerLayer(architecture, hparams, config)[0]! };
  // Norms and other 1-D tensors stay F32, as llama.cpp's converter keeps them.
  const tensors = assignTypes(candidates, scheme, { ...model, is70B: architecture.is70B?.(model) ?? false }, () => GgmlType.F32);
  return { architecture, hparams, metadata, tensors };
}

function scaleOf(checkpoint: Checkpoint, weight: CheckpointTensor): CheckpointTensor {
  const scale = checkpoint.tensors.get(`${weight.name}_scale`);
  if (!scale) throw new UserError(`packed BitNet weight without its '${weight.name}_scale'`, { file: weight.file.path, tensor: weight.name });
  return scale;
}

/** Plans re-quantizing an F32/F16/BF16 GGUF: same tensors and metadata, new types. */
export function planFromGguf(input: GgufInput, scheme: Scheme): GgufPlan {
  const archName = input.metadata.get("general.architecture")?.value;
  if (typeof archName !== "string") throw new UserError("no general.architecture", { file: input.path });
  const architecture = architectureByGgufName(archName, input.path);
  const count = (key: string) => {
    const stored = input.metadata.get(`${archName}.${key}`)?.value;
    // Per-layer lists (hybrid models' head_count_kv): llama_model_quantize reads layer 0's.
    const value = typeof stored === "object" && stored !== null && "length" in stored ? (stored as ArrayLike<unknown>)[0] : stored;
    if (typeof value !== "number") throw new UserError(`missing ${archName}.${key}`, { file: input.path });
    return value;
  };
  const model = { layers: count("block_count"), heads: count("attention.head_count"), kvHeads: count("attention.head_count_kv") };
  const metadata: GgufMetadata = new Map(input.metadata);
  metadata.delete("general.file_type");
  metadata.delete("general.quantization_version");
  const candidates = input.tensors.map((tensor): Candidate => ({ name: tensor.name, shape: tensor.shape, origin: { kind: "source", tensor } }));
  const keptType = new Map(input.tensors.map((tensor) => [tensor.name, FLOAT_TYPE[tensor.dtype]]));
  const tensors = assignTypes(candidates, scheme, { ...model, is70B: architecture.is70B?.(model) ?? false }, (t) => keptType.get(t.name)!);
  return { architecture, metadata, tensors };
}

const FLOAT_TYPE = { F32: GgmlType.F32, F16: GgmlType.F16, BF16: GgmlType.BF16 } as const;

/**
 * Types every tensor as llama.cpp would for `scheme`, in llama.cpp's loader
 * order, which is also the order we write: files compare tensor for tensor.
 */
function assignTypes(candidates: Candidate[], scheme: Scheme, model: MixtureModel, keptType: (tensor: Candidate) => GgmlType): PlannedTensor[] {
  const ordered = [...candidates].sort((a, b) => llamaLoaderOrder(a.name, b.name));
  const types = mixtureTypes(ordered, scheme, model, keptType);
  return ordered.map((tensor, i) => ({ ...tensor, type: types[i]! }));
}
