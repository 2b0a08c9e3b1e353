/**
 * Hugging Face checkpoint -> ONNX decoder model folder (onnxruntime-genai or transformers.js
 * layout). Weights stream tensor by tensor into the external data file; the ModelProto
 * itself holds only the graph and pointers into that file. See src/writers/onnx/README.md.
 */
import { existsSync, readdirSync, rmSync, statSync } from "node:fs";
import { copyFile, mkdir, open, readFile, rename, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { ConfigReader, type DecoderHparams } from "../arch/config.js";
import { resolveArchitectureFor } from "../arch/index.js";
import { isIgnoredTensor, roleKind, tensorNameMapper, hfTensorName } from "../arch/tensor-names.js";
import type { Architecture } from "../arch/types.js";
import { OnnxWeightPlan, type OnnxBits } from "../plan/onnx.js";
import { UserError } from "../errors.js";
import { openCheckpoint, readOptionalJson } from "../readers/checkpoint.js";
import type { SourceTensor } from "../readers/source-tensor.js";
import { buildDecoder } from "../writers/onnx/decoder.js";
import { ExternalDataWriter } from "../writers/onnx/external-data.js";
import { encodeModel } from "../writers/onnx/proto.js";
import type { FloatStorage, ValueStats } from "../writers/onnx/weights.js";
import { TOKENIZER_AND_GENERATION_FILES } from "../readers/side-files.js";

export type { OnnxBits } from "../plan/onnx.js";
export type OnnxLayout = "genai" | "transformersjs";

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

const VALID_BITS: readonly number[] = [32, 16, 8, 4, 1.58];
const VALID_GROUPS: readonly number[] = [16, 32, 64, 128];

/** transformers.js file suffixes by dtype (utils/dtypes.js DEFAULT_DTYPE_SUFFIX_MAPPING). */
const TRANSFORMERS_JS_DTYPE: Record<string, { dtype: string; suffix: string }> = {
  "32": { dtype: "fp32", suffix: "" },
  "16": { dtype: "fp16", suffix: "_fp16" },
  "8": { dtype: "q8", suffix: "_quantized" },
  "4": { dtype: "q4", suffix: "_q4" },
  "1.58": { dtype: "q2", suffix: "_q2" },
};

/** Files copied from the checkpoint folder when present. */
const SIDE_FILES = TOKENIZER_AND_GENERATION_FILES;

export async function convertToOnnx(options: OnnxConversionOptions): Promise<OnnxReport> {
  const { bits } = options;
  if (!VALID_BITS.includes(bits)) throw new UserError(`--bits for ONNX must be one of ${VALID_BITS.join(", ")}; got ${bits}`);
  const quantized = bits === 8 || bits === 4 || bits === 1.58;
  if (options.groupSize !== undefined) {
    if (!quantized) throw new UserError(`--group-size applies to 8-, 4- and 1.58-bit ONNX exports, not ${bits}-bit`);
    if (!VALID_GROUPS.includes(options.groupSize)) throw new UserError(`--group-size must be one of ${VALID_GROUPS.join(", ")} (MatMulNBits needs a power of two >= 16); got ${options.groupSize}`);
  }
  const groupSize = options.groupSize ?? 32;
  const layout = options.layout ?? "genai";
  if (layout !== "genai" && layout !== "transformersjs") throw new UserError(`unknown ONNX layout '${String(layout)}' (genai, transformersjs)`);
  const accuracyLevel = options.accuracyLevel ?? (bits === 8 || bits === 4 ? 4 : 0);
  const output = resolve(options.output);
  checkOutput(output);

  const checkpoint = await openCheckpoint(options.source);
  const partial = join(dirname(output), `.${basename(output)}.${process.pid}.partial`);
  const removePartial = () => rmSync(partial, { recursive: true, force: true });
  process.once("exit", removePartial);
  try {
    const architecture = resolveArchitectureFor("onnx", checkpoint.config, checkpoint.configFile);
    const reader = new ConfigReader(checkpoint.config, checkpoint.configFile);
    const hparams = reader.decoderHparams();
    const features = architecture.features(reader, hparams);
    checkTensorNames([...checkpoint.tensors.keys()], architecture, hparams, checkpoint.directory);

    const naming = layout === "genai" ? { folder: "", model: "model.onnx" } : { folder: "onnx", model: `model${TRANSFORMERS_JS_DTYPE[String(bits)]!.suffix}.onnx` };
    const modelPath = naming.folder ? `${naming.folder}/${naming.model}` : naming.model;
    const dataName = `${naming.model}_data`;
    const dataPath = naming.folder ? `${naming.folder}/${dataName}` : dataName;
    await mkdir(join(partial, naming.folder), { recursive: true }).catch((cause: NodeJS.ErrnoException) => {
      throw new UserError(`cannot create the output folder (${cause.code ?? cause.message})`, { file: output });
    });

    const sources = new Map<string, SourceTensor>();
    for (const tensor of checkpoint.tensors.values()) sources.set(tensor.name, tensor.file.sourceTensor(tensor));
    const embedding = sources.get(hfTensorName(architecture, "token_embd"));
    const tied = !sources.has(hfTensorName(architecture, "output"));
    const totalBytes = [...sources.values()].reduce((sum, t) => sum + t.byteLength, 0) + (tied ? (embedding?.byteLength ?? 0) : 0);
    const keptFloat: FloatStorage = bits === 32 || (bits !== 16 && embedding?.dtype === "F32") ? "F32" : "F16";
    const plan = new OnnxWeightPlan(bits, groupSize, keptFloat);
    const warnings: string[] = [];
    const stats: ValueStats = { nonFinite: 0, overflowedToF16: 0 };
    let doneBytes = 0;

    const handle = await open(join(partial, dataPath), "w");
    let built;
    let writer: ExternalDataWriter;
    try {
      writer = new ExternalDataWriter(handle, dataName);
      built = await buildDecoder({
        architecture,
        hparams,
        features,
        tensor: (name) => sources.get(name),
        plan,
        accuracyLevel,
        writer,
        stats,
        onTensor: (name, bytes) => {
          doneBytes += bytes;
          options.onProgress?.({ tensor: name, doneBytes, totalBytes });
        },
      });
      await handle.sync();
    } finally {
      await handle.close();
    }

    const doc = `${basename(checkpoint.directory)} (${architecture.gguf}) converted by edgequant: ${bits}-bit${quantized ? `, block ${groupSize}` : ""}`;
    const model = built.graph.model(architecture.gguf, doc, { "edgequant.bits": String(bits), ...(quantized ? { "edgequant.group_size": String(groupSize) } : {}) });
    await writeFile(join(partial, modelPath), encodeModel(model));

    // Side files: config, tokenizer, generation config, runtime configs.
    const files = [modelPath, dataPath];
    for (const file of SIDE_FILES) {
      const from = join(checkpoint.directory, file);
      if (existsSync(from)) {
        await copyFile(from, join(partial, file));
        files.push(file);
      }
    }
    const generation = (await readOptionalJson(join(checkpoint.directory, "generation_config.json"))) as Record<string, unknown> | undefined;
    const config = JSON.parse(await readFile(checkpoint.configFile, "utf8")) as Record<string, unknown>;
    if (layout === "transformersjs") {
      const { dtype } = TRANSFORMERS_JS_DTYPE[String(bits)]!;
      config["transformers.js_config"] = {
        dtype,
        use_external_data_format: { [naming.model]: 1 },
        kv_cache_dtype: { [dtype]: "float32" },
      };
    } else {
      await writeFile(join(partial, "genai_config.json"), `${JSON.stringify(genaiConfig(hparams, naming.model, config, generation), null, 4)}\n`);
      files.push("genai_config.json");
    }
    await writeFile(join(partial, "config.json"), `${JSON.stringify(config, null, 2)}\n`);
    files.push("config.json");

    await replaceFolder(partial, output);

    if (stats.nonFinite > 0) warnings.push(`${stats.nonFinite} NaN/Inf values in the source weights, converted as they are; the model may produce NaN`);
    if (stats.overflowedToF16 > 0) warnings.push(`${stats.overflowedToF16} weights exceed float16's range and became ±Inf; use --bits 32`);
    if (plan.lossyTernary.length > 0) {
      warnings.push(`${plan.lossyTernary.length} weights are not ternary ({-s, 0, +s}) and were ternarised with BitNet's absmean scale, which loses most of their information (first: ${plan.lossyTernary[0]})`);
    }
    return {
      output,
      format: "onnx",
      layout,
      architecture: architecture.gguf,
      bits,
      ...(quantized ? { groupSize } : {}),
      modelFile: modelPath,
      dataFile: dataPath,
      files: files.sort(),
      initializers: model.graph!.initializer!.length,
      weightBytes: writer.bytes,
      weights: Object.fromEntries(built.encodings),
      warnings,
    };
  } catch (error) {
    await rm(partial, { recursive: true, force: true });
    throw error;
  } finally {
    process.off("exit", removePartial);
    await checkpoint.close();
  }
}

/**
 * Every checkpoint tensor must be one the graph uses (older transformers' rotary inv_freq
 * buffers excepted): a role of the architecture, in a block config.json declares, and a bias
 * only on a Linear.
 */
function checkTensorNames(names: readonly string[], architecture: Architecture, h: DecoderHparams, directory: string): void {
  const mapName = tensorNameMapper(architecture);
  const unknown = names.filter((name) => {
    if (isIgnoredTensor(name)) return false;
    const mapped = mapName(name);
    if (!mapped || (mapped.block !== undefined && mapped.block >= h.layers)) return true;
    return mapped.suffix === "bias" && roleKind(mapped.role) !== "linear";
  });
  if (unknown.length > 0) {
    const shown = unknown.slice(0, 5).join(", ") + (unknown.length > 5 ? `, ... (${unknown.length} in all)` : "");
    throw new UserError(`tensors the ONNX ${architecture.gguf} graph does not use: ${shown} (biases, extra norms or more layers than config.json declares?)`, { file: directory });
  }
}

function checkOutput(output: string): void {
  if (!existsSync(output)) return;
  if (!statSync(output).isDirectory()) throw new UserError("the output must be a folder, and a file is in the way", { file: output });
  const entries = readdirSync(output);
  const isOnnxFolder = entries.length === 0 || entries.some((e) => e.endsWith(".onnx") || e === "onnx" || e === "genai_config.json");
  if (!isOnnxFolder) throw new UserError("the output folder exists and does not hold an ONNX model; choose a new folder", { file: output });
}

/** Moves the finished folder into place; an earlier ONNX folder there is replaced only once the new one is complete. */
async function replaceFolder(partial: string, output: string): Promise<void> {
  if (!existsSync(output)) {
    await rename(partial, output);
    return;
  }
  const old = join(dirname(output), `.${basename(output)}.${process.pid}.old`);
  await rename(output, old);
  try {
    await rename(partial, output);
  } catch (error) {
    await rename(old, output);
    throw error;
  }
  await rm(old, { recursive: true, force: true });
}

function firstId(value: unknown): number | undefined {
  if (typeof value === "number") return value;
  if (Array.isArray(value) && typeof value[0] === "number") return value[0];
  return undefined;
}

/** genai_config.json as onnxruntime-genai's model builder writes it for a decoder-only model. */
function genaiConfig(h: DecoderHparams, modelFile: string, config: Record<string, unknown>, generation: Record<string, unknown> | undefined) {
  const eos = generation?.["eos_token_id"] ?? config["eos_token_id"] ?? 2;
  const bos = firstId(generation?.["bos_token_id"] ?? config["bos_token_id"]) ?? 1;
  const pad = firstId(generation?.["pad_token_id"] ?? config["pad_token_id"]) ?? firstId(eos) ?? 0;
  return {
    model: {
      bos_token_id: bos,
      context_length: h.contextLength,
      decoder: {
        session_options: { log_id: "onnxruntime-genai", provider_options: [] },
        filename: modelFile,
        head_size: h.headDim,
        hidden_size: h.hiddenSize,
        inputs: {
          input_ids: "input_ids",
          attention_mask: "attention_mask",
          position_ids: "position_ids",
          past_key_names: "past_key_values.%d.key",
          past_value_names: "past_key_values.%d.value",
        },
        outputs: { logits: "logits", present_key_names: "present.%d.key", present_value_names: "present.%d.value" },
        num_attention_heads: h.heads,
        num_hidden_layers: h.layers,
        num_key_value_heads: h.kvHeads,
      },
      eos_token_id: eos,
      pad_token_id: pad,
      // onnxruntime-genai names model types as transformers' model_type does.
      type: config["model_type"],
      vocab_size: h.vocabSize,
    },
    search: {
      diversity_penalty: 0.0,
      do_sample: false,
      early_stopping: true,
      length_penalty: 1.0,
      max_length: h.contextLength,
      min_length: 0,
      no_repeat_ngram_size: 0,
      num_beams: 1,
      num_return_sequences: 1,
      past_present_share_buffer: false,
      repetition_penalty: 1.0,
      temperature: 1.0,
      top_k: 1,
      top_p: 1.0,
    },
  };
}
