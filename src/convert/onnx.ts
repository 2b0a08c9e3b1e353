/**
 * Hugging Face checkpoint -> ONNX decoder model folder (onnxruntime-genai or transformers.js
 * layout): open -> plan -> encode -> write, like every format. Weights stream tensor by tensor
 * into the external data file; the ModelProto itself holds only the graph and pointers into
 * that file. See src/writers/onnx/README.md.
 */
import { readFile } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { ConfigReader, type DecoderHparams } from "../arch/config.js";
import { architectureHparams } from "../arch/decoder-metadata.js";
import { resolveArchitectureFor } from "../arch/index.js";
import { isIgnoredTensor, presentHfTensorName, roleKind, tensorNameMapper } from "../arch/tensor-names.js";
import type { Architecture } from "../arch/types.js";
import { UserError } from "../errors.js";
import { ACCURACY_LEVELS, ONNX_BITS, ONNX_GROUP_SIZES, type OnnxBits } from "../options.js";
import { checkRotaryTables } from "../writers/onnx/rotary.js";
import { checkHparamsAgainstTensors } from "../plan/checkpoint-tensors.js";
import { OnnxWeightPlan } from "../plan/onnx.js";
import { openCheckpoint, readOptionalJson, type Checkpoint } from "../readers/checkpoint.js";
import type { SourceTensor } from "../readers/source-tensor.js";
import { buildDecoder } from "../writers/onnx/decoder.js";
import { ExternalDataWriter, type ExternalData } from "../writers/onnx/external-data.js";
import { checkOnnxDestination, genaiConfig, onnxFileNames, ONNX_LAYOUTS, transformersJsConfig, type OnnxFileNames, type OnnxLayout } from "../writers/onnx/layout.js";
import { encodeModel } from "../writers/onnx/proto.js";
import type { FloatStorage, ValueStats } from "../writers/onnx/weights.js";
import { StagingFolder } from "../writers/staging-folder.js";

export type { OnnxBits } from "../options.js";
export type { OnnxLayout } from "../writers/onnx/layout.js";

export interface OnnxConversionProgress {
  readonly tensor: string;
  readonly doneBytes: number;
  readonly totalBytes: number;
}

export interface OnnxConversionOptions {
  /** A model folder (config.json + safetensors + tokenizer files) or a .safetensors file beside its config.json. */
  readonly source: string;
  /** The output folder; replaced if it already holds an ONNX model, refused if it holds anything else. */
  readonly output: string;
  /** 32 / 16: plain float weights; 8 / 4: MatMulNBits blocks with GGUF Q8_0 / Q4_0 math; 1.58: ternary as 2-bit MatMulNBits. */
  readonly bits: OnnxBits;
  /** Block size along the input dimension for 8-, 4- and 1.58-bit weights (default 32, GGUF's block). */
  readonly groupSize?: 16 | 32 | 64 | 128;
  /** "genai" (default): model.onnx + genai_config.json; "transformersjs": onnx/model_<dtype>.onnx + transformers.js_config. */
  readonly layout?: OnnxLayout;
  /**
   * MatMulNBits accuracy_level. 4 (the default for 8 and 4 bits, as onnxruntime-genai's builder
   * uses on CPU) lets ONNX Runtime's CPU kernels quantize activations to int8 per block, as
   * llama.cpp does with Q8 activations: ~6x faster decoding. 0 (the default for 1.58 bits) keeps
   * activations float32, so results are the dequantized weights' exact product.
   */
  readonly accuracyLevel?: 0 | 1 | 4;
  /** Replace an earlier ONNX model folder at `output`. Default: refuse it. */
  readonly overwrite?: boolean;
  readonly onProgress?: (progress: OnnxConversionProgress) => void;
}

export interface OnnxReport {
  readonly output: string;
  readonly format: "onnx";
  readonly layout: OnnxLayout;
  readonly architecture: string;
  readonly bits: OnnxBits;
  readonly groupSize?: number;
  /** The .onnx file and its external data file, relative to `output`. */
  readonly modelFile: string;
  readonly dataFile: string;
  /** Every file written, relative to `output`. */
  readonly files: readonly string[];
  readonly initializers: number;
  /** Bytes of the external data file. */
  readonly weightBytes: number;
  /** How each checkpoint weight was stored, by Hugging Face tensor name. */
  readonly weights: Readonly<Record<string, string>>;
  readonly warnings: readonly string[];
}

/** Whether `value` is one of `allowed` (the options module's lists), for values from untyped callers. */
const oneOf = (allowed: readonly number[], value: number): boolean => allowed.includes(value);

export interface OnnxSettings {
  readonly bits: OnnxBits;
  readonly quantized: boolean;
  readonly groupSize: number;
  readonly layout: OnnxLayout;
  readonly accuracyLevel: number;
}

/** The settings an export runs with, checked: for `convert`, and for `plan`, which sizes the same exports. */
export function onnxSettings(options: Pick<OnnxConversionOptions, "bits" | "groupSize" | "layout" | "accuracyLevel">): OnnxSettings {
  const { bits } = options;
  if (!oneOf(ONNX_BITS, bits)) throw new UserError(`ONNX bits must be one of ${ONNX_BITS.join(", ")}; got ${bits}`);
  const quantized = bits === 8 || bits === 4 || bits === 1.58;
  if (options.groupSize !== undefined) {
    if (!quantized) throw new UserError(`the group size applies to 8-, 4- and 1.58-bit ONNX exports, not ${bits}-bit`);
    if (!oneOf(ONNX_GROUP_SIZES, options.groupSize)) throw new UserError(`the ONNX group size must be one of ${ONNX_GROUP_SIZES.join(", ")} (MatMulNBits needs a power of two >= 16); got ${options.groupSize}`);
  }
  const layout = options.layout ?? "genai";
  if (!ONNX_LAYOUTS.includes(layout)) throw new UserError(`unknown ONNX layout '${String(layout)}' (${ONNX_LAYOUTS.join(", ")})`);
  const accuracyLevel = options.accuracyLevel ?? (bits === 8 || bits === 4 ? 4 : 0);
  if (!oneOf(ACCURACY_LEVELS, accuracyLevel)) throw new UserError(`the MatMulNBits accuracy level must be one of ${ACCURACY_LEVELS.join(", ")}; got ${String(accuracyLevel)}`);
  return { bits, quantized, groupSize: options.groupSize ?? 32, layout, accuracyLevel };
}

export async function convertToOnnx(options: OnnxConversionOptions): Promise<OnnxReport> {
  const settings = onnxSettings(options);
  const output = resolve(options.output);
  const overwrite = options.overwrite ?? false;
  checkOnnxDestination(output, overwrite);
  const checkpoint = await openCheckpoint(options.source);
  try {
    const prepared = prepareExport(checkpoint, settings);
    const { names, architecture } = prepared;
    const staging = await StagingFolder.create(output);
    try {
      await staging.mkdir(names.folder);
      const { model, built, stats, plan } = await staging.writeFile(names.dataPath, (handle) =>
        buildOnnxModel(checkpoint, prepared, new ExternalDataWriter(handle, names.dataName), options.onProgress),
      );
      await staging.writeBytes(names.modelPath, encodeModel(model));
      const files = [names.modelPath, names.dataPath, ...(await writeSideFiles(checkpoint, prepared, staging))];
      await staging.commit((destination) => checkOnnxDestination(destination, overwrite));
      return {
        output,
        format: "onnx",
        layout: settings.layout,
        architecture: architecture.gguf,
        bits: settings.bits,
        ...(settings.quantized ? { groupSize: settings.groupSize } : {}),
        modelFile: names.modelPath,
        dataFile: names.dataPath,
        files: files.sort(),
        initializers: model.graph!.initializer!.length,
        weightBytes: built.weightBytes,
        weights: Object.fromEntries(built.encodings),
        warnings: onnxWarnings(stats, plan),
      };
    } catch (error) {
      await staging.discard();
      throw error;
    }
  } finally {
    await checkpoint.close();
  }
}

/** What an export of this checkpoint is, decided and checked before any weight is read. */
export interface PreparedExport {
  readonly architecture: Architecture;
  readonly reader: ConfigReader;
  readonly hparams: DecoderHparams;
  readonly settings: OnnxSettings;
  readonly names: OnnxFileNames;
}

/** The checks and decisions of an export, for `convert` and for `plan`. */
export function prepareExport(checkpoint: Checkpoint, settings: OnnxSettings): PreparedExport {
  const architecture = resolveArchitectureFor("onnx", checkpoint.config, checkpoint.configFile);
  const reader = new ConfigReader(checkpoint.config, checkpoint.configFile, architecture.configDefaults);
  const hparams = architectureHparams(architecture, reader);
  checkHparamsAgainstTensors(checkpoint, architecture, hparams);
  checkRotaryTables(hparams, checkpoint.configFile);
  checkTensorNames([...checkpoint.tensors.keys()], architecture, hparams, checkpoint.directory);
  return { architecture, reader, hparams, settings, names: onnxFileNames(settings.layout, settings.bits) };
}

/**
 * Plans every weight and builds the graph, streaming the weights into `data` (the external data
 * file, or only its layout when `plan` sizes an export), then the ModelProto that points at them.
 */
export async function buildOnnxModel(checkpoint: Checkpoint, prepared: PreparedExport, data: ExternalData, onProgress?: OnnxConversionOptions["onProgress"]) {
  const { architecture, reader, hparams, settings } = prepared;
  const sources = new Map<string, SourceTensor>();
  for (const tensor of checkpoint.tensors.values()) sources.set(tensor.name, tensor.file.sourceTensor(tensor));
  const has = (name: string) => sources.has(name);
  const embedding = sources.get(presentHfTensorName(architecture, "token_embd", has));
  const tied = !sources.has(presentHfTensorName(architecture, "output", has));
  const totalBytes = [...sources.values()].reduce((sum, t) => sum + t.byteLength, 0) + (tied ? (embedding?.byteLength ?? 0) : 0);
  const { bits } = settings;
  const keptFloat: FloatStorage = bits === 32 || (bits !== 16 && embedding?.dtype === "F32") ? "F32" : "F16";
  const plan = new OnnxWeightPlan(bits, settings.groupSize, keptFloat);
  const stats: ValueStats = { nonFinite: 0, overflowedToF16: 0 };
  let doneBytes = 0;
  const decoder = await buildDecoder({
    architecture, hparams, features: architecture.features(reader, hparams), plan, stats, writer: data,
    tensor: (name) => sources.get(name),
    accuracyLevel: settings.accuracyLevel,
    onTensor: (name, bytes) => {
      doneBytes += bytes;
      onProgress?.({ tensor: name, doneBytes, totalBytes });
    },
  });
  const doc = `${basename(checkpoint.directory)} (${architecture.gguf}) converted by edgequant: ${bits}-bit${settings.quantized ? `, block ${settings.groupSize}` : ""}`;
  const model = decoder.graph.model(architecture.gguf, doc, { "edgequant.bits": String(bits), ...(settings.quantized ? { "edgequant.group_size": String(settings.groupSize) } : {}) });
  return { model, built: { encodings: decoder.encodings, weightBytes: data.bytes }, stats, plan };
}

function onnxWarnings(stats: ValueStats, plan: OnnxWeightPlan): string[] {
  const warnings: string[] = [];
  if (stats.nonFinite > 0) warnings.push(`${stats.nonFinite} NaN/Inf values in the source weights, converted as they are; the model may produce NaN`);
  if (stats.overflowedToF16 > 0) warnings.push(`${stats.overflowedToF16} weights exceed float16's range and became ±Inf; use --bits 32`);
  if (plan.lossyTernary.length > 0) {
    warnings.push(`${plan.lossyTernary.length} weights are not ternary ({-s, 0, +s}) and were ternarised with BitNet's absmean scale, which loses most of their information (first: ${plan.lossyTernary[0]})`);
  }
  return warnings;
}

/** Tokenizer and generation files as they are, config.json (with transformers.js' entry) and genai_config.json; returns their names. */
async function writeSideFiles(checkpoint: Checkpoint, prepared: PreparedExport, staging: StagingFolder): Promise<string[]> {
  const files = await staging.copyModelFiles(checkpoint.directory);
  const { config, genai } = await exportConfigs(checkpoint, prepared);
  if (genai) {
    await staging.writeText("genai_config.json", `${JSON.stringify(genai, null, 4)}\n`);
    files.push("genai_config.json");
  }
  await staging.writeText("config.json", `${JSON.stringify(config, null, 2)}\n`);
  files.push("config.json");
  return files;
}

/** The export's config.json and (genai layout) genai_config.json. */
export async function exportConfigs(checkpoint: Checkpoint, { hparams, settings, names }: PreparedExport): Promise<{ config: Record<string, unknown>; genai?: Record<string, unknown> }> {
  const config = JSON.parse(await readFile(checkpoint.configFile, "utf8")) as Record<string, unknown>;
  if (settings.layout === "transformersjs") {
    config["transformers.js_config"] = transformersJsConfig(settings.bits, names);
    return { config };
  }
  const generation = (await readOptionalJson(join(checkpoint.directory, "generation_config.json"))) as Record<string, unknown> | undefined;
  return { config, genai: genaiConfig(hparams, names.modelName, config, generation) };
}

/**
 * Every checkpoint tensor must be one the graph uses (older transformers' rotary inv_freq
 * buffers excepted): a role of the architecture, in a block config.json declares, and a bias
 * only on a Linear.
 */
function checkTensorNames(names: readonly string[], architecture: Architecture, h: DecoderHparams, directory: string): void {
  const mapName = tensorNameMapper(architecture);
  const unknown = names.filter((name) => {
    if (isIgnoredTensor(name) || architecture.ignoredHfTensors?.some((pattern) => pattern.test(name))) return false;
    const mapped = mapName(name);
    if (!mapped || (mapped.block !== undefined && mapped.block >= h.layers)) return true;
    return mapped.suffix === "bias" && roleKind(mapped.role) !== "linear";
  });
  if (unknown.length > 0) {
    const shown = unknown.slice(0, 5).join(", ") + (unknown.length > 5 ? `, ... (${unknown.length} in all)` : "");
    throw new UserError(`tensors the ONNX ${architecture.gguf} graph does not use: ${shown} (biases, extra norms or more layers than config.json declares?)`, { file: directory });
  }
}
