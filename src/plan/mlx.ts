/**
 * Decides every tensor of an MLX (mlx-lm) model folder before any weight is
 * read: names, dtypes, shapes, how each is encoded, and the `quantization`
 * block of config.json.
 *
 * The layout is the one mlx-lm's convert writes and its loader expects
 * (mlx_lm/utils.py quantize_model, save_model, load_model; mlx/nn/layers/quantized.py):
 *  - Hugging Face tensor names are kept (the mlx-lm model files of the architectures
 *    that declare MLX use them unchanged: no Q/K row permutation), except where the
 *    architecture names mlx-lm's own (its `mlx.names`).
 *  - Every nn.Linear and nn.Embedding weight (the token embedding, every Linear role,
 *    the output layer) becomes `X.weight` uint32
 *    [out, in * bits / 32], `X.scales` and `X.biases` [out, in / group_size] in
 *    the float dtype; `X.bias`, norms and anything 1-D stay float.
 *  - Floats are cast to config.json's `torch_dtype` when it is float16,
 *    bfloat16 or float32, before quantizing, as mlx_lm/convert.py does;
 *    otherwise each tensor keeps its own dtype.
 *  - Tied embeddings: no output-layer tensor; the (quantized) embedding doubles as
 *    the output layer, as the models' sanitize() drops it (unless `mlx.untieOutput`).
 *  - BitLinear architectures (`mlx.bitLinear`): see ./mlx-bitlinear.ts.
 */

import { ConfigReader, type DecoderHparams } from "../arch/config.js";
import { architectureHparams } from "../arch/decoder-metadata.js";
import type { Architecture } from "../arch/types.js";
import { isBlockLinear, mlxConvShape, presentHfTensorName, roleKind, type TensorRole } from "../arch/tensor-names.js";
import { checkHparamsAgainstTensors, checkRequiredTensors, mapCheckpointTensors } from "./checkpoint-tensors.js";
import { UserError } from "../errors.js";
import type { Checkpoint } from "../readers/checkpoint.js";
import { isFloatDtype, SAFETENSORS_DTYPES, type FloatDtype } from "../readers/dtypes.js";
import { bitnetLinearSource } from "../readers/ternary-sources.js";
import { ternaryLayout } from "../arch/ternary-layout.js";
import { bitLinearUnit } from "./mlx-bitlinear.js";
import type { SourceTensor } from "../readers/source-tensor.js";
import { type MlxBits, type MlxGroupSize } from "../writers/mlx/affine.js";
import { packedWords } from "../writers/mlx/pack.js";
import { chooseGroupSize, mixedBits, MIXED_RECIPES, type MixedRecipe } from "../writers/mlx/recipes.js";

/** `bits: 1.58` means ternary weights stored as exact 2-bit groups. */
export type MlxBitsOption = MlxBits | 1.58;

export interface MlxPlanOptions {
  readonly bits: MlxBitsOption;
  readonly groupSize: MlxGroupSize;
  readonly mixed?: MixedRecipe;
}

export type UnitEncoding =
  | { readonly kind: "float" }
  | { readonly kind: "affine"; readonly bits: MlxBits; readonly groupSize: MlxGroupSize }
  | { readonly kind: "ternary"; readonly groupSize: MlxGroupSize }
  | { readonly kind: "bitlinear" };

export type OutputDtype = FloatDtype | "U32" | "U8";

export interface OutputTensor {
  readonly name: string;
  readonly dtype: OutputDtype;
  readonly shape: readonly number[];
  readonly byteLength: number;
}

/** One source tensor and the one (float) or three (weight, scales, biases) tensors it becomes. */
export interface MlxUnit {
  readonly source: SourceTensor;
  /** The module path mlx-lm keys per-layer settings by: the name without `.weight` / `.bias`. */
  readonly module: string;
  readonly role: TensorRole;
  /** The float dtype of the output (kept tensor, or scales and biases). */
  readonly dtype: FloatDtype;
  readonly encoding: UnitEncoding;
  readonly outputs: readonly OutputTensor[];
  /** Elements of the source, what mlx-lm counts as parameters. */
  readonly parameters: number;
}

export interface MlxDecision {
  /** The Hugging Face tensor name the decision is about. */
  readonly tensor: string;
  readonly action: "smaller-group" | "kept-float" | "lossy-ternary" | "dropped" | "config";
  /** One sentence for a human. */
  readonly message: string;
  readonly groupSize?: number;
  readonly bits?: number;
}

export interface QuantizationParams {
  readonly group_size: number;
  readonly bits: number;
  readonly mode: "affine";
}

export interface MlxPlan {
  readonly hparams: DecoderHparams;
  readonly units: readonly MlxUnit[];
  /** config.json's `quantization` (and `quantization_config`): global params, then per-module overrides. */
  readonly quantization?: Readonly<Record<string, number | string | QuantizationParams>>;
  /** Without `quantization` (BitLinear models): config.json's `quantization_config`. */
  readonly quantizationConfig?: Readonly<Record<string, unknown>>;
  /** Keys to set in config.json beyond the quantization block. */
  readonly configUpdates: Readonly<Record<string, unknown>>;
  readonly decisions: readonly MlxDecision[];
  /** The dtype floats are cast to (config torch_dtype), or undefined when each keeps its own. */
  readonly castDtype: FloatDtype | undefined;
}

const TORCH_DTYPES: Readonly<Record<string, FloatDtype>> = { float16: "F16", bfloat16: "BF16", float32: "F32" };

/**
 * mlx_lm/convert.py casts every float parameter to config["torch_dtype"], or
 * text_config["dtype"] when there is no torch_dtype, if it names one of
 * float16 / bfloat16 / float32.
 */
export function castDtypeOf(config: Readonly<Record<string, unknown>>): FloatDtype | undefined {
  let name = config["torch_dtype"];
  const textConfig = config["text_config"];
  if ((name === undefined || name === null) && typeof textConfig === "object" && textConfig !== null) {
    name = (textConfig as Record<string, unknown>)["dtype"];
  }
  return typeof name === "string" ? TORCH_DTYPES[name] : undefined;
}

interface PlannedSource {
  readonly source: SourceTensor;
  /** The name mlx-lm's model gives the tensor. */
  readonly name: string;
  readonly role: TensorRole;
  readonly block: number | undefined;
  readonly suffix: string;
}

export function planMlx(checkpoint: Checkpoint, architecture: Architecture, options: MlxPlanOptions): MlxPlan {
  const reader = new ConfigReader(checkpoint.config, checkpoint.configFile, architecture.configDefaults);
  const hparams = architectureHparams(architecture, reader);
  checkHparamsAgainstTensors(checkpoint, architecture, hparams);
  architecture.mlx?.checkConfig?.(reader);
  const castDtype = castDtypeOf(checkpoint.config);
  const decisions: MlxDecision[] = [];
  const configUpdates: Record<string, unknown> = {};
  const bitLinear = architecture.mlx?.bitLinear !== undefined;
  if (bitLinear && options.bits !== 1.58) {
    throw new UserError(`mlx-lm's ${architecture.gguf} model holds its linear layers as BitLinear (ternary codes, mlx_lm/models/bitlinear_layers.py): convert it with --bits 1.58; got ${options.bits}`, { file: checkpoint.configFile });
  }
  const planned = plannedSources(checkpoint, architecture, bitLinear);
  checkRequiredTensors(checkpoint, architecture, hparams.layers, "mlx-lm");
  const sources = outputLayer(checkpoint, architecture, planned, decisions, configUpdates);
  if (checkpoint.config["rope_theta"] === undefined || checkpoint.config["rope_theta"] === null) {
    configUpdates["rope_theta"] = hparams.ropeTheta;
    decisions.push({
      tensor: "config.json",
      action: "config",
      message: `config.json has no rope_theta; wrote ${hparams.ropeTheta}, the value the model is read with, since mlx-lm's model files default differently (qwen2.py and minicpm.py to 1e6)`,
    });
  }

  const quantization: Record<string, number | string | QuantizationParams> = {
    group_size: options.groupSize,
    bits: options.bits === 1.58 ? 2 : options.mixed ? MIXED_RECIPES[options.mixed].low : options.bits,
    mode: "affine",
  };
  const embeddingDtype = checkpoint.tensors.get(presentHfTensorName(architecture, "token_embd", (name) => checkpoint.tensors.has(name)))?.dtype;
  const units: MlxUnit[] = [];
  for (const planned of sources.sort(unitOrder)) {
    const { source, role, suffix } = planned;
    const dtype = castDtype ?? source.dtype;
    const module = planned.name.slice(0, planned.name.lastIndexOf("."));
    const parameters = source.shape.reduce((a, b) => a * b, 1);
    const base = { source, module, role, dtype, parameters };
    const shape = roleKind(role) === "conv" ? mlxConvShape(source.shape) : source.shape;
    const floatUnit = (): MlxUnit => ({ ...base, encoding: { kind: "float" }, outputs: [{ name: planned.name, dtype, shape, byteLength: parameters * bytesOf(dtype) }] });
    if (!(roleKind(role) !== "norm" && suffix === "weight" && source.shape.length === 2)) {
      units.push(floatUnit());
      continue;
    }
    if (bitLinear && isBlockLinear(role)) {
      // BitLinear's weight_scale must have the activations' dtype (bitlinear_layers.py:130).
      units.push(bitLinearUnit({ ...base, dtype: castDtype ?? (embeddingDtype !== undefined && isFloatDtype(embeddingDtype) ? embeddingDtype : dtype) }));
      continue;
    }
    if (options.bits === 1.58 && !isBlockLinear(role)) {
      decisions.push({
        tensor: source.name,
        action: "kept-float",
        message: `kept in ${dtype}: with --bits 1.58 only the decoder layers' linear weights are ternary; BitNet b1.58 models keep embeddings and the output layer in high precision`,
      });
      units.push(floatUnit());
      continue;
    }
    const unit = affineUnit(base, planned.block, hparams.layers, options, decisions);
    if (!unit) {
      units.push(floatUnit());
      continue;
    }
    if (options.mixed || unit.encoding.groupSize !== options.groupSize) {
      quantization[module] = { group_size: unit.encoding.groupSize, bits: unit.encoding.kind === "affine" ? unit.encoding.bits : 2, mode: "affine" };
    }
    units.push(unit);
  }
  const quantizationConfig = architecture.mlx?.bitLinear?.quantizationConfig;
  return quantizationConfig ? { hparams, units, quantizationConfig, configUpdates, decisions, castDtype } : { hparams, units, quantization, configUpdates, decisions, castDtype };
}

/** Every checkpoint tensor with its role and the name mlx-lm's model gives it; BitNet linear weights as the model computes with them. */
function plannedSources(checkpoint: Checkpoint, architecture: Architecture, bitLinear: boolean): PlannedSource[] {
  const layout = bitLinear ? ternaryLayout(checkpoint, architecture) : undefined;
  // A packed weight's scale is read with its weight.
  const skip = (name: string) => layout === "packed" && name.endsWith(".weight_scale");
  return mapCheckpointTensors(checkpoint, architecture, skip).map(({ tensor, name }) => {
    const ternary = layout !== undefined && isBlockLinear(name.role) && name.suffix === "weight";
    const renamed = architecture.mlx?.names?.[name.role];
    return {
      source: ternary ? bitnetLinearSource(checkpoint, tensor, layout) : tensor.file.sourceTensor(tensor),
      name: renamed ? `${renamed.replace("{bid}", String(name.block))}.${name.suffix}` : tensor.name,
      role: name.role,
      block: name.block,
      suffix: name.suffix,
    };
  });
}

/**
 * The output layer: tied embeddings decided as transformers reads config.json, and the flag written
 * out explicitly because mlx-lm's own defaults differ (llama and qwen2 default to tied, qwen3 requires
 * the key). Tied, the output layer is dropped as the models' sanitize() drops it, unless the
 * architecture's mlx-lm model computes its tied path differently: then it is the embedding, untied.
 */
function outputLayer(checkpoint: Checkpoint, architecture: Architecture, planned: PlannedSource[], decisions: MlxDecision[], configUpdates: Record<string, unknown>): PlannedSource[] {
  // A role may have several names (a multimodal wrapper's text tower): the checkpoint's own.
  const has = (name: string) => checkpoint.tensors.has(name);
  const outputName = presentHfTensorName(architecture, "output", has);
  const embeddingName = presentHfTensorName(architecture, "token_embd", has);
  const embeddingModule = embeddingName.replace(/\.weight$/, "");
  const hasLmHead = checkpoint.tensors.has(outputName);
  const tieFlag = checkpoint.config["tie_word_embeddings"];
  const tied = typeof tieFlag === "boolean" ? tieFlag : !hasLmHead;
  if (!tied && !hasLmHead) throw new UserError(`tie_word_embeddings is false but the checkpoint has no ${outputName}`, { file: checkpoint.directory });
  if (tied && architecture.mlx?.untieOutput) {
    const embedding = planned.find((p) => p.role === "token_embd" && p.suffix === "weight")!;
    configUpdates["tie_word_embeddings"] = false;
    decisions.push({
      tensor: outputName,
      action: "config",
      message: `tied embeddings: wrote ${outputName} from ${embeddingName} and tie_word_embeddings false, since mlx-lm's ${architecture.gguf} model computes its tied output differently`,
    });
    return [...planned.filter((p) => p.role !== "output"), { ...embedding, name: outputName, role: "output", block: undefined }];
  }
  if (typeof tieFlag !== "boolean") {
    configUpdates["tie_word_embeddings"] = tied;
    decisions.push({
      tensor: outputName,
      action: "config",
      message: `config.json has no tie_word_embeddings; wrote ${tied} (the checkpoint ${hasLmHead ? "has" : "has no"} ${outputName}), since mlx-lm's default differs by architecture`,
    });
  }
  if (!tied) return planned;
  for (const p of planned.filter((p) => p.role === "output")) {
    decisions.push({ tensor: p.source.name, action: "dropped", message: `tied embeddings: ${p.source.name} is not written; ${embeddingModule} serves as the output layer, as in mlx-lm` });
  }
  return planned.filter((p) => p.role !== "output");
}

type GroupedEncoding = Extract<UnitEncoding, { groupSize: MlxGroupSize }>;
type UnitBase = Pick<MlxUnit, "source" | "module" | "role" | "dtype" | "parameters">;

/** An affine (or, with bits 1.58, exact ternary) quantized unit; undefined when MLX cannot group its inputs. */
function affineUnit(base: UnitBase, block: number | undefined, layers: number, options: MlxPlanOptions, decisions: MlxDecision[]): (MlxUnit & { encoding: GroupedEncoding }) | undefined {
  const { source, module, role, dtype } = base;
  const [rows, inputs] = source.shape as [number, number];
  const groupSize = chooseGroupSize(inputs, options.groupSize);
  const bits: MlxBits = options.bits === 1.58 ? 2 : options.mixed ? mixedBits(options.mixed, role, block, layers) : options.bits;
  if (groupSize === undefined) {
    decisions.push({
      tensor: source.name,
      action: "kept-float",
      message: `kept in ${dtype}: its input dimension ${inputs} is not a multiple of 32, the smallest group size MLX allows`,
    });
    return undefined;
  }
  if (groupSize !== options.groupSize) {
    decisions.push({
      tensor: source.name,
      action: "smaller-group",
      groupSize,
      bits,
      message: `quantized with group size ${groupSize} instead of ${options.groupSize}: its input dimension ${inputs} is not a multiple of ${options.groupSize}`,
    });
  }
  const groups = inputs / groupSize;
  const words = packedWords(inputs, bits);
  return {
    ...base,
    encoding: options.bits === 1.58 ? { kind: "ternary", groupSize } : { kind: "affine", bits, groupSize },
    outputs: [
      { name: `${module}.weight`, dtype: "U32", shape: [rows, words], byteLength: rows * words * 4 },
      { name: `${module}.scales`, dtype, shape: [rows, groups], byteLength: rows * groups * bytesOf(dtype) },
      { name: `${module}.biases`, dtype, shape: [rows, groups], byteLength: rows * groups * bytesOf(dtype) },
    ],
  };
}

/** Bytes per value, from the one safetensors dtype table. */
function bytesOf(dtype: OutputDtype): number {
  return SAFETENSORS_DTYPES[dtype].bytes;
}

/**
 * The order tensors are written in: mlx-lm's parameter order at the top level
 * (the model before the output layer), natural order within (layer 10 after layer 9).
 */
function unitOrder(a: PlannedSource, b: PlannedSource): number {
  const aHead = a.role === "output";
  const bHead = b.role === "output";
  if (aHead !== bHead) return aHead ? 1 : -1;
  return naturalCompare(a.name, b.name);
}

function naturalCompare(a: string, b: string): number {
  const split = (s: string) => s.split(/(\d+)/);
  const pa = split(a);
  const pb = split(b);
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const x = pa[i]!;
    const y = pb[i]!;
    if (x === y) continue;
    if (i % 2 === 1) return Number(x) - Number(y) || (x < y ? -1 : 1);
    return x < y ? -1 : 1;
  }
  return pa.length - pb.length;
}
