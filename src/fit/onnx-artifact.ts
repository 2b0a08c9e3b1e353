/**
 * ONNX decoder folders (onnxruntime-genai layout: model.onnx + external data + genai_config.json, or
 * transformers.js layout: onnx/model_<dtype>.onnx): the initializers' exact bytes from the ModelProto
 * (external data lengths and inline raw data), hyperparameters from config.json / genai_config.json,
 * and the KV cache element type from the past_key_values inputs.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import onnxProto from "onnx-proto";
import { UserError } from "../errors.js";
import { readOptionalJson } from "../readers/checkpoint.js";
import { headCounts, type Artifact, type ArtifactTensor } from "./artifact.js";

const { onnx } = onnxProto;

/** onnx.TensorProto.DataType -> [name, bits per element]. */
const ELEMENT: Record<number, [string, number]> = {
  1: ["float32", 32],
  2: ["uint8", 8],
  3: ["int8", 8],
  4: ["uint16", 16],
  5: ["int16", 16],
  6: ["int32", 32],
  7: ["int64", 64],
  9: ["bool", 8],
  10: ["float16", 16],
  11: ["float64", 64],
  12: ["uint32", 32],
  13: ["uint64", 64],
  16: ["bfloat16", 16],
  21: ["uint4", 4],
  22: ["int4", 4],
};

/** The .onnx files of an ONNX model folder (one per dtype in the transformers.js layout). */
export function onnxModelFiles(folder: string): string[] {
  if (existsSync(join(folder, "model.onnx"))) return [join(folder, "model.onnx")];
  const sub = join(folder, "onnx");
  if (existsSync(sub) && statSync(sub).isDirectory()) {
    return readdirSync(sub)
      .filter((f) => f.endsWith(".onnx"))
      .sort()
      .map((f) => join(sub, f));
  }
  return readdirSync(folder)
    .filter((f) => f.endsWith(".onnx"))
    .sort()
    .map((f) => join(folder, f));
}

/**
 * The folder holding the model's config: the .onnx file's own (genai layout, whatever the folder
 * is called), or the parent of transformers.js's onnx/ subfolder.
 */
function modelFolderOf(file: string): string {
  const own = dirname(file);
  const hasConfig = (folder: string) => existsSync(join(folder, "genai_config.json")) || existsSync(join(folder, "config.json"));
  return !hasConfig(own) && basename(own) === "onnx" && hasConfig(dirname(own)) ? dirname(own) : own;
}

export async function readOnnxArtifact(modelFile: string): Promise<Artifact> {
  const file = resolve(modelFile);
  const folder = modelFolderOf(file);
  let model: onnxProto.onnx.ModelProto;
  try {
    model = onnx.ModelProto.decode(await readFile(file));
  } catch (cause) {
    throw new UserError(`not a readable ONNX model (${(cause as Error).message})`, { file });
  }
  const config = ((await readOptionalJson(join(folder, "config.json"))) ?? {}) as Record<string, unknown>;
  const genai = (await readOptionalJson(join(folder, "genai_config.json"))) as GenaiConfig | undefined;
  return onnxArtifact({ file, folder, model, config, ...(genai ? { genai } : {}), fileBytes: (f) => (existsSync(f) ? statSync(f).size : 0) });
}

type GenaiConfig = { model?: { context_length?: number; decoder?: Record<string, number> } };

/** An ONNX model as the fit model reads it: the ModelProto and the configs beside it. */
export interface OnnxDescription {
  readonly file: string;
  readonly folder: string;
  readonly model: onnxProto.onnx.ModelProto;
  readonly config: Readonly<Record<string, unknown>>;
  /** genai_config.json: present in onnxruntime-genai's layout only. */
  readonly genai?: GenaiConfig;
  readonly fileBytes: (path: string) => number;
}

/** The fit model's description of an ONNX model: read from disk, or planned before it exists. */
export function onnxArtifact({ file, folder, model, config, genai, fileBytes }: OnnxDescription): Artifact {
  const graph = model.graph;
  if (!graph) throw new UserError("ONNX model has no graph", { file });
  const tensors: ArtifactTensor[] = [];
  const dataFiles = new Map<string, number>();
  for (const init of graph.initializer ?? []) {
    const dims = (init.dims ?? []).map(Number);
    const [dtype, bits] = ELEMENT[init.dataType ?? 0] ?? [`type ${init.dataType}`, 0];
    let bytes: number;
    let where = file;
    const external = init.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL;
    if (external) {
      const entry = (key: string) => (init.externalData ?? []).find((e) => e.key === key)?.value;
      const location = entry("location");
      const length = entry("length");
      where = location ? join(dirname(file), location) : file;
      bytes = length !== undefined && length !== null ? Number(length) : Math.ceil((dims.reduce((a, b) => a * b, 1) * bits) / 8);
      dataFiles.set(where, (dataFiles.get(where) ?? 0) + bytes);
    } else {
      bytes = init.rawData && init.rawData.length > 0 ? init.rawData.length : Math.ceil((dims.reduce((a, b) => a * b, 1) * bits) / 8);
    }
    tensors.push({ name: init.name ?? "", type: dtype, ne: [...dims].reverse(), bytes, file: where });
  }
  const decoder = genai?.model?.decoder ?? {};
  const nLayer = Number(config["num_hidden_layers"] ?? decoder["num_hidden_layers"]);
  const nEmbd = Number(config["hidden_size"] ?? decoder["hidden_size"]);
  const nHead = headCounts(config["num_attention_heads"] ?? decoder["num_attention_heads"], nLayer);
  const nHeadKv = headCounts(config["num_key_value_heads"] ?? decoder["num_key_value_heads"], nLayer, nHead[0]);
  const headDim = Number(config["head_dim"] ?? decoder["head_size"] ?? nEmbd / (nHead[0] ?? 1));
  if (!Number.isFinite(nLayer) || !Number.isFinite(nEmbd)) throw new UserError("no config.json or genai_config.json with the model's shape beside the ONNX model", { file });
  const past = (graph.input ?? []).find((i) => /past_key_values\.\d+\.key$/.test(i.name ?? ""));
  const pastType = past?.type?.tensorType?.elemType ?? 1;
  const [kvDtype, kvBits] = ELEMENT[pastType] ?? ["float32", 32];
  const matmulNBits = (graph.node ?? []).filter((n) => n.opType === "MatMulNBits");
  const attr = (node: onnxProto.onnx.INodeProto | undefined, name: string) => Number(node?.attribute?.find((a) => a.name === name)?.i ?? 0);
  const quantization = matmulNBits.length > 0
    ? `int${attr(matmulNBits[0], "bits")} MatMulNBits, block ${attr(matmulNBits[0], "block_size")}`
    : tensors.some((t) => t.type === "float16")
      ? "float16"
      : "float32";
  const weightBytes = tensors.reduce((sum, t) => sum + t.bytes, 0);
  const nFf = Number(config["intermediate_size"] ?? 0);
  const files = [file, ...dataFiles.keys()].filter((f, i, all) => all.indexOf(f) === i);
  return {
    path: file,
    format: "onnx",
    name: `${basename(folder)}${basename(file) === "model.onnx" ? "" : `/${basename(file, ".onnx")}`}`,
    quantization,
    hparams: {
      architecture: String(config["model_type"] ?? "unknown"),
      nLayer,
      nEmbd,
      nVocab: Number(config["vocab_size"] ?? 0),
      nHead,
      nHeadKv,
      headDimK: headDim,
      headDimV: headDim,
      nFf: Array.from({ length: nLayer }, () => nFf),
      contextLength: Number(genai?.model?.context_length ?? config["max_position_embeddings"] ?? 2048),
      slidingWindow: 0,
      swaLayers: Array.from({ length: nLayer }, () => false),
      tiedEmbeddings: Boolean(config["tie_word_embeddings"] ?? false),
    },
    tensors,
    weightBytes,
    files: files.map((f) => ({ path: f, bytes: fileBytes(f) })),
    parameters: Number(config["num_parameters"] ?? 0) || estimateParameters(nLayer, nEmbd, nFf, Number(config["vocab_size"] ?? 0), nHead[0] ?? 0, nHeadKv[0] ?? 0, headDim, Boolean(config["tie_word_embeddings"])),
    details: {
      kind: "onnx",
      modelFile: file,
      kvDtype,
      kvBytesPerElement: kvBits / 8,
      layout: genai ? "genai" : "transformersjs",
    },
  };
}

/** Parameters of a llama-shaped decoder (ONNX initializers are packed, so they cannot be counted directly). */
export function estimateParameters(layers: number, embd: number, ff: number, vocab: number, heads: number, kvHeads: number, headDim: number, tied: boolean): number {
  const attention = embd * headDim * (2 * heads + 2 * kvHeads);
  const mlp = 3 * embd * ff;
  return layers * (attention + mlp + 2 * embd) + vocab * embd * (tied ? 1 : 2) + embd;
}
