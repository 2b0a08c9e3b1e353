/**
 * The two ONNX folder layouts: onnxruntime-genai's (model.onnx + genai_config.json) and
 * transformers.js' (onnx/model_<dtype>.onnx + `transformers.js_config` in config.json).
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import type { DecoderHparams } from "../../arch/config.js";
import { UserError } from "../../errors.js";
import { EXISTING_OUTPUT } from "../staging-folder.js";
import type { OnnxBits } from "../../options.js";

export type OnnxLayout = "genai" | "transformersjs";
export const ONNX_LAYOUTS: readonly OnnxLayout[] = ["genai", "transformersjs"];

/** transformers.js file suffixes by dtype (utils/dtypes.js DEFAULT_DTYPE_SUFFIX_MAPPING). */
const TRANSFORMERS_JS_DTYPE: Record<string, { dtype: string; suffix: string }> = {
  "32": { dtype: "fp32", suffix: "" },
  "16": { dtype: "fp16", suffix: "_fp16" },
  "8": { dtype: "q8", suffix: "_quantized" },
  "4": { dtype: "q4", suffix: "_q4" },
  "1.58": { dtype: "q2", suffix: "_q2" },
};

export interface OnnxFileNames {
  /** The folder the model files go in, relative to the output ("" or "onnx"). */
  readonly folder: string;
  readonly modelName: string;
  readonly dataName: string;
  /** Both relative to the output folder. */
  readonly modelPath: string;
  readonly dataPath: string;
}

export function onnxFileNames(layout: OnnxLayout, bits: OnnxBits): OnnxFileNames {
  const folder = layout === "genai" ? "" : "onnx";
  const modelName = layout === "genai" ? "model.onnx" : `model${TRANSFORMERS_JS_DTYPE[String(bits)]!.suffix}.onnx`;
  const dataName = `${modelName}_data`;
  const inFolder = (name: string) => (folder ? `${folder}/${name}` : name);
  return { folder, modelName, dataName, modelPath: inFolder(modelName), dataPath: inFolder(dataName) };
}

/** Whether a folder's entries are an ONNX model folder (or nothing), which an export may replace. */
export function isOnnxFolder(entries: readonly string[]): boolean {
  return entries.length === 0 || entries.some((e) => e.endsWith(".onnx") || e === "onnx" || e === "genai_config.json");
}

/** An ONNX export replaces an earlier ONNX folder, never anything else. */
export function checkOnnxDestination(output: string, overwrite: boolean): void {
  if (!existsSync(output)) return;
  if (!statSync(output).isDirectory()) throw new UserError("the output must be a folder, and a file is in the way", { file: output });
  const entries = readdirSync(output);
  if (entries.length === 0) return;
  if (!isOnnxFolder(entries)) throw new UserError("the output folder exists and does not hold an ONNX model; choose a new folder", { file: output });
  if (!overwrite) throw new UserError(EXISTING_OUTPUT, { file: output });
}

/** The `transformers.js_config` entry config.json gets in the transformers.js layout. */
export function transformersJsConfig(bits: OnnxBits, names: OnnxFileNames): Record<string, unknown> {
  const { dtype } = TRANSFORMERS_JS_DTYPE[String(bits)]!;
  return { dtype, use_external_data_format: { [names.modelName]: 1 }, kv_cache_dtype: { [dtype]: "float32" } };
}

function firstId(value: unknown): number | undefined {
  if (typeof value === "number") return value;
  if (Array.isArray(value) && typeof value[0] === "number") return value[0];
  return undefined;
}

/** genai_config.json as onnxruntime-genai's model builder writes it for a decoder-only model. */
function textModelType(config: Record<string, unknown>): unknown {
  const text = config["text_config"];
  return (typeof text === "object" && text !== null ? (text as Record<string, unknown>)["model_type"] : undefined) ?? config["model_type"];
}

export function genaiConfig(h: DecoderHparams, modelFile: string, config: Record<string, unknown>, generation: Record<string, unknown> | undefined) {
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
      // onnxruntime-genai names model types as transformers' model_type does; a multimodal
      // wrapper's export is its text tower (Gemma 3: gemma3_text).
      type: textModelType(config),
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
