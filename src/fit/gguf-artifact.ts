import { existsSync, statSync } from "node:fs";
import { basename, resolve } from "node:path";
import { llamaCppGraphTraits } from "../arch/index.js";
import { UserError } from "../errors.js";
import { headCounts, type Artifact, type ArtifactTensor, type DecoderHparams } from "./artifact.js";
import { contiguousBytes, fileTypeName, ggmlType } from "../quant/ggml-types.js";
import { readGgufHeader } from "../readers/gguf-header.js";
import { parseSplitPath, splitPath } from "../writers/gguf/split.js";

/** A GGUF's header as the fit model reads it: plain metadata values and tensor entries. */
export interface GgufDescription {
  readonly path: string;
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly tensors: readonly ArtifactTensor[];
  readonly files: readonly { readonly path: string; readonly bytes: number }[];
}

/** Reads a GGUF file (or every shard of a split GGUF) into the fit model's description. */
export async function readGgufArtifact(path: string): Promise<Artifact> {
  const full = resolve(path);
  if (!existsSync(full)) throw new UserError("no such file", { file: path });
  const split = parseSplitPath(full);
  const files = split ? Array.from({ length: split.count }, (_, i) => splitPath(split.prefix, i, split.count)) : [full];
  const tensors: ArtifactTensor[] = [];
  let metadata: Record<string, unknown> = {};
  for (const [index, file] of files.entries()) {
    if (!existsSync(file)) throw new UserError(`shard ${index + 1} of the split GGUF is missing`, { file });
    const parsed = await readGgufHeader(file);
    if (index === 0) metadata = parsed.metadata as unknown as Record<string, unknown>;
    for (const info of parsed.tensorInfos) {
      const ne = info.shape.map(Number);
      const type = Number(info.dtype);
      tensors.push({
        name: info.name,
        type: ggmlType(type).name,
        ggmlType: type,
        ne,
        bytes: contiguousBytes(type, ne),
        file,
        offset: Number(parsed.tensorDataOffset + info.offset),
      });
    }
  }
  return ggufArtifact({ path: full, metadata, tensors, files: files.map((file) => ({ path: file, bytes: statSync(file).size })) });
}

/** The fit model's description of a GGUF from its header: read from a file, or planned before it exists. */
export function ggufArtifact(gguf: GgufDescription): Artifact {
  const { metadata, tensors, path } = gguf;
  const arch = String(metadata["general.architecture"] ?? "");
  if (!arch) throw new UserError("GGUF has no general.architecture", { file: path });
  const key = (name: string) => metadata[`${arch}.${name}`];
  const num = (name: string, fallback?: number): number => {
    const value = key(name);
    if (value === undefined || value === null) {
      if (fallback === undefined) throw new UserError(`GGUF has no ${arch}.${name}`, { file: path });
      return fallback;
    }
    return Number(value);
  };
  const nLayer = num("block_count");
  const nEmbd = num("embedding_length");
  const nHead = headCounts(key("attention.head_count"), nLayer);
  const nHeadKv = headCounts(key("attention.head_count_kv"), nLayer, nHead[0]);
  const headDim = nHead[0] ? nEmbd / nHead[0] : 0;
  const tokens = metadata["tokenizer.ggml.tokens"];
  const nVocab = num("vocab_size", Array.isArray(tokens) ? tokens.length : tensors.find((t) => t.name === "token_embd.weight")?.ne[1]);
  const nFfRaw = key("feed_forward_length");
  const nFf = Array.isArray(nFfRaw) ? nFfRaw.map(Number) : Array.from({ length: nLayer }, () => Number(nFfRaw ?? 0));
  const { slidingWindow, swaLayers } = slidingWindowLayers(arch, nLayer, num("attention.sliding_window", 0), key("attention.sliding_window_pattern"));
  const traits = llamaCppGraphTraits(arch);

  const hparams: DecoderHparams = {
    architecture: arch,
    nLayer,
    nEmbd,
    nVocab,
    nHead,
    nHeadKv,
    headDimK: num("attention.key_length", headDim),
    headDimV: num("attention.value_length", headDim),
    nFf,
    contextLength: num("context_length", 2048),
    slidingWindow,
    swaLayers,
    tiedEmbeddings: !tensors.some((t) => t.name === "output.weight"),
    ...recurrentState(nHeadKv, nEmbd, num("shortconv.l_cache", 0)),
  };
  const fileType = metadata["general.file_type"];
  const weightBytes = tensors.reduce((sum, t) => sum + t.bytes, 0);
  const parameters = tensors.reduce((sum, t) => sum + t.ne.reduce((a, b) => a * b, 1), 0);
  return {
    path,
    format: "gguf",
    name: String(metadata["general.name"] ?? basename(path, ".gguf")),
    quantization: fileType === undefined ? dominantType(tensors) : fileTypeName(Number(fileType)),
    hparams,
    tensors,
    weightBytes,
    files: gguf.files,
    parameters,
    details: {
      kind: "gguf",
      embeddingScale: traits.embeddingScale ?? false,
      residualScale: traits.residualScale ?? false,
      logitScale: traits.logitScale ?? false,
      attnSoftcap: traits.attnSoftcapKey !== undefined && Number(key(traits.attnSoftcapKey) ?? 0) > 0,
      queryScale: traits.queryScale ?? false,
      residualFirst: traits.residualFirst ?? false,
      noRopeLayerStep: traits.noRopeLayerStep ?? 0,
      ...(traits.shortConv ? { shortConv: true } : {}),
      ...(traits.outputNorm ? { outputNorm: traits.outputNorm } : {}),
      vocabTextBytes: Array.isArray(tokens) ? tokens.reduce((sum: number, t: unknown) => sum + String(t).length, 0) : 0,
    },
  };
}

/**
 * Short-convolution layers (llama.cpp: is_recr when n_head_kv(il) == 0) keep the last l_cache - 1
 * inputs of every channel: n_embd_r = n_embd * (l_cache - 1), and no S state (llama-hparams.cpp).
 */
function recurrentState(nHeadKv: readonly number[], nEmbd: number, lCache: number): { recurrentState?: number[] } {
  if (lCache === 0) return {};
  return { recurrentState: nHeadKv.map((kv) => (kv === 0 ? nEmbd * (lCache - 1) : 0)) };
}

function dominantType(tensors: readonly ArtifactTensor[]): string {
  const bytes = new Map<string, number>();
  for (const t of tensors) bytes.set(t.type, (bytes.get(t.type) ?? 0) + t.bytes);
  return [...bytes.entries()].sort((a, b) => b[1] - a[1])[0]?.[0]?.toUpperCase() ?? "unknown";
}

/**
 * Which layers use sliding-window attention, and the window: from the GGUF's explicit
 * per-layer pattern, else from the period llama.cpp applies for the architecture.
 */
function slidingWindowLayers(arch: string, nLayer: number, window: number, pattern: unknown): { slidingWindow: number; swaLayers: boolean[] } {
  const traits = llamaCppGraphTraits(arch);
  let swaLayers: boolean[] = Array.from({ length: nLayer }, () => false);
  let slidingWindow = 0;
  if (Array.isArray(pattern)) {
    swaLayers = pattern.map(Boolean);
    slidingWindow = window;
  } else if (traits.swaPeriod !== undefined && (window > 0 || traits.defaultWindow)) {
    const period = typeof pattern === "number" || typeof pattern === "bigint" ? Number(pattern) : traits.swaPeriod;
    slidingWindow = window > 0 ? window : traits.defaultWindow!;
    swaLayers = swaLayers.map((_, il) => period === 0 || il % period < period - 1);
  }
  return { slidingWindow: swaLayers.some(Boolean) ? slidingWindow : 0, swaLayers };
}
