/**
 * MLX model folders (mlx-lm layout: config.json with an optional "quantization" entry and
 * safetensors shards): tensor bytes exactly from the safetensors headers' data_offsets.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { ConfigReader, type HfConfig } from "../arch/config.js";
import { architectureHparams } from "../arch/decoder-metadata.js";
import { ARCHITECTURES, kvHeadsOfLayers } from "../arch/index.js";
import { isOutputTensor } from "../arch/tensor-names.js";
import { UserError } from "../errors.js";
import { readJson } from "../readers/checkpoint.js";
import { SafetensorsFile } from "../readers/safetensors.js";
import { headCounts, type Artifact, type ArtifactTensor } from "./artifact.js";
import { estimateParameters } from "./onnx-artifact.js";

/** config.json beside safetensors weights: an mlx-lm folder, or a Hugging Face checkpoint. */
export function isModelFolder(folder: string): boolean {
  return existsSync(join(folder, "config.json")) && readdirSync(folder).some((f) => f.endsWith(".safetensors"));
}

/** mlx-lm writes {"format": "mlx"} into every shard (mlx_lm/utils.py save_model); transformers writes "pt" or nothing. */
export async function isMlxFolder(folder: string): Promise<boolean> {
  if (!isModelFolder(folder)) return false;
  const first = readdirSync(folder).filter((f) => f.endsWith(".safetensors")).sort()[0]!;
  const file = await SafetensorsFile.open(join(folder, first));
  await file.close();
  return file.format === "mlx";
}

/**
 * mlx-lm gives the layers an architecture declares sliding a RotatingKVCache of the window
 * (mlx_lm/models/gemma3_text.py make_cache); its llama, qwen2 and qwen3 keep a full cache even when
 * the config names a window, and those architectures declare none.
 */
function mlxSlidingWindow(config: HfConfig, file: string, nLayer: number): { slidingWindow: number; swaLayers: boolean[] } {
  const none = { slidingWindow: 0, swaLayers: Array.from({ length: nLayer }, () => false) };
  const name = (config["architectures"] as unknown[] | undefined)?.[0];
  const architecture = ARCHITECTURES.find((arch) => arch.formats.includes("mlx") && arch.hfArchitectures.includes(name as string));
  if (!architecture) return none;
  const reader = new ConfigReader(config, file, architecture.configDefaults);
  let window;
  try {
    window = architecture.features(reader, architectureHparams(architecture, reader)).slidingWindow;
  } catch (error) {
    // fit reads what it can of a config; converting it is where missing keys are refused
    if (error instanceof UserError) return none;
    throw error;
  }
  return window ? { slidingWindow: window.window, swaLayers: [...window.layers] } : none;
}

export async function readMlxArtifact(folderPath: string): Promise<Artifact> {
  const folder = resolve(folderPath);
  const config = (await readJson(join(folder, "config.json"))) as Record<string, unknown>;
  const shards = readdirSync(folder)
    .filter((f) => f.endsWith(".safetensors"))
    .sort()
    .map((f) => join(folder, f));
  if (shards.length === 0) throw new UserError("no .safetensors files", { file: folder });
  const tensors: ArtifactTensor[] = [];
  for (const shard of shards) {
    // The validated reader: a damaged shard is refused with its file and tensor named.
    const file = await SafetensorsFile.open(shard);
    await file.close();
    for (const info of file.tensors.values()) tensors.push({ name: info.name, type: info.dtype, ne: [...info.shape].reverse(), bytes: info.byteLength, file: shard });
  }
  return mlxArtifact({ folder, config, tensors, files: shards.map((f) => ({ path: f, bytes: statSync(f).size })) });
}

/** An MLX model folder as the fit model reads it: config.json and the shards' tensor entries. */
export interface MlxDescription {
  readonly folder: string;
  readonly config: Readonly<Record<string, unknown>>;
  readonly tensors: readonly ArtifactTensor[];
  readonly files: readonly { readonly path: string; readonly bytes: number }[];
}

/** The fit model's description of an MLX folder: read from disk, or planned before it exists. */
export function mlxArtifact({ folder, config, tensors, files }: MlxDescription): Artifact {
  const text = (config["text_config"] as Record<string, unknown> | undefined) ?? config;
  const nLayer = Number(text["num_hidden_layers"]);
  const nEmbd = Number(text["hidden_size"]);
  if (!Number.isFinite(nLayer) || !Number.isFinite(nEmbd)) throw new UserError("config.json has no num_hidden_layers / hidden_size", { file: join(folder, "config.json") });
  const nHead = headCounts(text["num_attention_heads"], nLayer);
  // mlx-lm's hybrids (lfm2) keep a KV cache only in their attention layers.
  const nHeadKv = kvHeadsOfLayers(text, join(folder, "config.json"), headCounts(text["num_key_value_heads"], nLayer, nHead[0]));
  const headDim = Number(text["head_dim"] ?? nEmbd / (nHead[0] ?? 1));
  const nFf = Number(text["intermediate_size"] ?? 0);
  const quant = (config["quantization"] ?? config["quantization_config"]) as { bits?: number; group_size?: number } | undefined;
  const floatTensor = tensors.find((t) => t.name.endsWith("norm.weight"));
  const dtype = String(config["torch_dtype"] ?? floatTensor?.type ?? "float16").toLowerCase();
  const dtypeName = dtype.includes("bf16") || dtype.includes("bfloat16") ? "bfloat16" : dtype.includes("32") ? "float32" : "float16";
  const tied = Boolean(config["tie_word_embeddings"] ?? !tensors.some((t) => isOutputTensor(t.name)));
  const nVocab = Number(text["vocab_size"] ?? 0);
  const weightBytes = tensors.reduce((sum, t) => sum + t.bytes, 0);
  const floatParameters = tensors.filter((t) => !t.name.endsWith(".scales") && !t.name.endsWith(".biases") && t.type !== "U32");
  return {
    path: folder,
    format: "mlx",
    name: basename(folder),
    quantization: quant?.bits ? `${quant.bits}-bit affine, group ${quant.group_size ?? 64}` : dtypeName,
    hparams: {
      architecture: String(config["model_type"] ?? "unknown"),
      nLayer,
      nEmbd,
      nVocab,
      nHead,
      nHeadKv,
      headDimK: headDim,
      headDimV: headDim,
      nFf: Array.from({ length: nLayer }, () => nFf),
      contextLength: Number(text["max_position_embeddings"] ?? 2048),
      ...mlxSlidingWindow(config, join(folder, "config.json"), nLayer),
      tiedEmbeddings: tied,
    },
    tensors,
    weightBytes,
    files,
    parameters: quant?.bits
      ? estimateParameters(nLayer, nEmbd, nFf, nVocab, nHead[0] ?? 0, nHeadKv[0] ?? 0, headDim, tied)
      : floatParameters.reduce((sum, t) => sum + t.ne.reduce((a, b) => a * b, 1), 0),
    details: {
      kind: "mlx",
      dtype: dtypeName,
      dtypeBytes: dtypeName === "float32" ? 4 : 2,
      ...(quant?.bits ? { bits: quant.bits, groupSize: quant.group_size ?? 64 } : {}),
    },
  };
}
