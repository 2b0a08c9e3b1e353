/**
 * What llama.cpp allocates for a GGUF model and a context, buffer by buffer, as it reports them in
 * its log. Each figure follows the code that allocates it (llama.cpp as shipped with node-llama-cpp
 * 3.22, release v0.5.0):
 *
 * Model buffers (src/llama-model.cpp load_tensors, src/llama-model-loader.cpp create_tensor):
 *   - Every weight is placed in the first buffer type of its layer's list that supports the op it
 *     feeds (select_weight_buft). On CPU that list is [extra buffer types..., CPU]; the "CPU_REPACK"
 *     extra type (ggml/src/ggml-cpu/repack.cpp, ggml_repack_get_optimal_repack_type +
 *     extra_buffer_type::supports_op) takes 2-D MUL_MAT weights of the types the CPU has
 *     interleaved kernels for, and holds a repacked *copy* (same size) in anonymous memory.
 *   - With mmap, the remaining weights become one "CPU_Mapped" buffer over the file range from the
 *     first to the last of them (llama_model_loader::get_mapping_range), so tensors that were
 *     repacked but lie inside that range stay mapped too (clean file pages the OS may drop).
 *   - token_embd is an input-layer tensor (GET_ROWS): never repacked, and kept in host memory by
 *     GPU backends. A tied output matrix is a TENSOR_DUPLICATED copy that is repacked separately.
 * KV cache (src/llama-kv-cache.cpp constructor): per layer K [n_embd_k_gqa, kv_size] of type_k and
 *   V [n_embd_v_gqa, kv_size] of type_v (V padded to the widest layer when transposed, i.e. without
 *   flash attention); kv_size = n_ctx padded to 256 (llama-context.cpp); sliding-window layers get
 *   GGML_PAD(min(n_ctx, n_swa + n_ubatch), 256) cells (src/llama-kv-cache-iswa.cpp).
 * Output buffer (llama_context::output_reserve): n_vocab floats per sequence at creation.
 * Compute buffer (llama_context::sched_reserve): ggml-alloc's reservation of the prompt-processing
 *   graph (n_ubatch tokens, n_ubatch outputs, the whole cache) and the one-token graph; the buffer is
 *   the larger. See ./llama-graph.ts and ./ggml-alloc.ts.
 */
import type { Artifact } from "./artifact.js";
import { allocateGraph } from "./ggml-alloc.js";
import type { Tensor } from "./ggml-graph.js";
import { buildDecoderGraph, type DecoderShape, type WeightInfo } from "./llama-graph.js";
import { buildShortConvGraph } from "./shortconv-graph.js";
import { alignUp, GgmlType, ggmlType, ggmlTypeByName, isQuantized, rowSize, TENSOR_ALIGNMENT } from "../quant/ggml-types.js";

type LlamaCppBackend = "cpu" | "metal" | "cuda" | "vulkan";

/**
 * Which weights ggml's CPU backend repacks, by instruction set (repack.cpp
 * ggml_repack_get_optimal_repack_type): "x86-avx2" also covers AVX-512 machines except for Q2_K.
 */
export type CpuRepackProfile = "x86-avx2" | "x86-avx512" | "arm-i8mm" | "arm-dotprod" | "none";

export interface LlamaCppSettings {
  readonly backend: LlamaCppBackend;
  /** Requested context; llama.cpp pads it to a multiple of 256. */
  readonly contextSize: number;
  readonly batchSize: number;
  readonly ubatchSize: number;
  readonly sequences: number;
  readonly flashAttention: boolean;
  /** ggml type names: "f16", "q8_0", ... */
  readonly kvCacheType: string;
  readonly mmap: boolean;
  readonly cpuRepack: CpuRepackProfile;
}

export const DEFAULT_LLAMA_CPP: Omit<LlamaCppSettings, "backend" | "contextSize" | "cpuRepack"> = {
  batchSize: 512,
  ubatchSize: 512,
  sequences: 1,
  flashAttention: false,
  kvCacheType: "f16",
  mmap: true,
};

interface LlamaCppWeights {
  /** "CPU_Mapped model buffer size" (mmap) or "CPU model buffer size" (no mmap). */
  readonly host: number;
  /** "CPU_REPACK model buffer size". */
  readonly repack: number;
  /** Weights in the GPU backend's own buffers (CUDA / Vulkan), or Metal's mapped buffers. */
  readonly device: number;
  /** Bytes of the weights the CPU still reads after loading: host buffer minus repacked originals. */
  readonly hostActive: number;
  readonly repackedTensors: number;
}

export interface LlamaCppEstimate {
  readonly settings: LlamaCppSettings;
  readonly cells: number;
  readonly cellsSwa: number;
  readonly weights: LlamaCppWeights;
  /** `recurrent`: hybrid models' recurrent-layer state, llama.cpp's "RS buffer" beside the attention layers' KV. */
  readonly kv: { readonly k: number; readonly v: number; readonly recurrent: number; readonly total: number };
  /** "<backend> compute buffer size". */
  readonly compute: number;
  /** Host-side compute buffer of a GPU backend (inputs and the token-embedding lookup). */
  readonly computeHost: number;
  readonly output: number;
  /** Thread work buffer of ggml-cpu (ggml_graph_plan's work_size): not in llama.cpp's log. */
  readonly cpuWork: number;
  readonly computePeak: readonly { name: string; bytes: number }[];
  /** Whether the compute figures come from replaying the architecture's graph (else a rough estimate). */
  readonly computeModelled: boolean;
}

/** ggml-cpu repack: the interleaved layout chosen for a MUL_MAT weight, or null. */
function repackable(type: number, rows: number, profile: CpuRepackProfile): boolean {
  const name = ggmlType(type).name;
  const x86 = profile === "x86-avx2" || profile === "x86-avx512";
  const arm = profile === "arm-i8mm" || profile === "arm-dotprod";
  switch (name) {
    case "q4_0":
      return (x86 && rows % 8 === 0) || (arm && rows % 4 === 0);
    case "q4_K":
      return (x86 || arm) && rows % 8 === 0;
    case "q2_K":
      return profile === "x86-avx512" && rows % 8 === 0;
    case "q5_K":
    case "q6_K":
      return arm && rows % 8 === 0;
    case "iq4_nl":
    case "mxfp4":
      return (x86 && rows % 8 === 0) || (arm && rows % 4 === 0);
    case "q8_0":
    case "q1_0":
      return arm && rows % 4 === 0;
    default:
      return false;
  }
}

/** Weights used by MUL_MAT (llm_tensor_info_for): everything 2-D but the token embedding and norms. */
function isMatmulWeight(name: string, ne: readonly number[]): boolean {
  if (name === "token_embd.weight") return false;
  if (!name.endsWith(".weight")) return false;
  return ne.length === 2 && (ne[1] ?? 1) > 1 && !/norm\.weight$/.test(name);
}

function llamaCppWeights(artifact: Artifact, settings: LlamaCppSettings): LlamaCppWeights {
  const onGpu = settings.backend === "cuda" || settings.backend === "vulkan";
  const isMetal = settings.backend === "metal";
  let repack = 0;
  let repackedTensors = 0;
  let device = 0;
  const hostTensors: { file: string; offset: number; bytes: number; repacked: boolean }[] = [];
  for (const t of artifact.tensors) {
    const type = t.ggmlType ?? 0;
    const isInput = t.name === "token_embd.weight";
    if ((onGpu || isMetal) && !isInput) {
      device += alignUp(t.bytes, TENSOR_ALIGNMENT);
      continue;
    }
    const cpuRepack = settings.backend === "cpu" && isMatmulWeight(t.name, t.ne) && repackable(type, t.ne[1] ?? 1, settings.cpuRepack);
    if (cpuRepack) {
      repack += alignUp(t.bytes, TENSOR_ALIGNMENT);
      repackedTensors++;
    } else {
      hostTensors.push({ file: t.file, offset: t.offset ?? 0, bytes: t.bytes, repacked: false });
    }
  }
  // a tied output matrix is loaded a second time when its layer's buffer type differs from token_embd's
  if (artifact.hparams.tiedEmbeddings) {
    const embd = artifact.tensors.find((t) => t.name === "token_embd.weight");
    if (embd) {
      const type = embd.ggmlType ?? 0;
      if (onGpu || isMetal) device += alignUp(embd.bytes, TENSOR_ALIGNMENT);
      else if (settings.backend === "cpu" && repackable(type, embd.ne[1] ?? 1, settings.cpuRepack)) {
        repack += alignUp(embd.bytes, TENSOR_ALIGNMENT);
        repackedTensors++;
      }
    }
  }
  let host = 0;
  let hostActive = hostTensors.reduce((sum, t) => sum + t.bytes, 0);
  if (settings.mmap) {
    // one mapped buffer per file: first..last offset of the tensors it holds
    const byFile = new Map<string, { first: number; last: number }>();
    for (const t of hostTensors) {
      const range = byFile.get(t.file) ?? { first: Infinity, last: 0 };
      range.first = Math.min(range.first, t.offset);
      range.last = Math.max(range.last, t.offset + t.bytes);
      byFile.set(t.file, range);
    }
    for (const { first, last } of byFile.values()) if (last > first) host += last - first;
    if (isMetal) {
      // Metal maps the file into its own buffers; the CPU mapping above is token_embd's range only
      hostActive = hostTensors.reduce((sum, t) => sum + t.bytes, 0);
    }
  } else {
    host = hostTensors.reduce((sum, t) => sum + alignUp(t.bytes, TENSOR_ALIGNMENT), 0);
  }
  return { host, repack, device, hostActive, repackedTensors };
}

function decoderShape(artifact: Artifact): DecoderShape {
  const weights = new Map<string, WeightInfo>();
  for (const t of artifact.tensors) weights.set(t.name, { type: t.ggmlType ?? GgmlType.F32, ne: t.ne });
  const h = artifact.hparams;
  const details = artifact.details.kind === "gguf" ? artifact.details : undefined;
  return {
    nLayer: h.nLayer,
    nEmbd: h.nEmbd,
    nVocab: h.nVocab,
    headDimK: h.headDimK,
    headDimV: h.headDimV,
    nHead: h.nHead,
    nHeadKv: h.nHeadKv,
    swaLayers: h.swaLayers,
    slidingWindow: h.slidingWindow,
    weights,
    embeddingScale: details?.embeddingScale ?? false,
    residualScale: details?.residualScale ?? false,
    logitScale: details?.logitScale ?? false,
    attnSoftcap: details?.attnSoftcap ?? false,
    queryScale: details?.queryScale ?? false,
    residualFirst: details?.residualFirst ?? false,
    noRopeLayerStep: details?.noRopeLayerStep ?? 0,
    ...(h.recurrentState ? { recurrentState: h.recurrentState } : {}),
    ...(details?.shortConv ? { shortConv: true } : {}),
    ...(details?.outputNorm ? { outputNorm: details.outputNorm } : {}),
  };
}

export function kvTypeId(name: string): number {
  const info = ggmlTypeByName(name);
  if (!info) throw new Error(`unknown KV cache type '${name}'`);
  return info.id;
}

/** Cells of the full and sliding-window caches for a requested context. */
function kvCells(artifact: Artifact, settings: LlamaCppSettings): { cells: number; cellsSwa: number } {
  const cells = alignUp(Math.max(settings.contextSize, 1), 256);
  const window = artifact.hparams.slidingWindow;
  const cellsSwa = window > 0 ? alignUp(Math.min(cells, window + settings.ubatchSize), 256) : cells;
  return { cells, cellsSwa };
}

function llamaCppKv(artifact: Artifact, settings: LlamaCppSettings): LlamaCppEstimate["kv"] {
  const h = artifact.hparams;
  const typeK = kvTypeId(settings.kvCacheType);
  const typeV = typeK;
  const { cells, cellsSwa } = kvCells(artifact, settings);
  const vTrans = !settings.flashAttention;
  const vWidthMax = Math.max(...h.nHeadKv.map((n) => n * h.headDimV));
  let k = 0;
  let v = 0;
  for (let il = 0; il < h.nLayer; il++) {
    const layerCells = h.swaLayers[il] ? cellsSwa : cells;
    const nKv = h.nHeadKv[il] ?? 0;
    if (nKv === 0) continue;
    k += alignUp(rowSize(typeK, h.headDimK * nKv) * layerCells * settings.sequences, TENSOR_ALIGNMENT);
    v += alignUp(rowSize(typeV, (vTrans ? vWidthMax : h.headDimV * nKv)) * layerCells * settings.sequences, TENSOR_ALIGNMENT);
  }
  // llama_memory_recurrent: an F32 R tensor per recurrent layer, max(1, n_seq_max) rows (no rollback snapshots).
  const recurrent = (h.recurrentState ?? []).reduce((sum, n) => sum + (n > 0 ? alignUp(n * 4 * Math.max(1, settings.sequences), TENSOR_ALIGNMENT) : 0), 0);
  return { k, v, recurrent, total: k + v + recurrent };
}

/** ggml_backend_buft_get_alignment of each backend's compute buffer type. */
const COMPUTE_ALIGNMENT: Record<LlamaCppBackend, number> = { cpu: 32, metal: 32, cuda: 128, vulkan: 64 };

/** ggml-cpu's vec_dot_type: what a MUL_MAT converts its activations to (ggml-cpu.c type_traits_cpu). */
function vecDotType(type: number): number {
  const name = ggmlType(type).name;
  if (name === "f32" || name === "f16" || name === "bf16") return type;
  if (["q4_0", "q5_0", "q8_0", "iq4_nl", "mxfp4", "q1_0", "q2_0"].includes(name)) return GgmlType.Q8_0;
  if (name === "q4_1" || name === "q5_1") return 9; // q8_1
  return 15; // q8_K
}

function cpuWorkBytes(nodes: readonly Tensor[]): number {
  let work = 0;
  for (const node of nodes) {
    if (node.op !== "MUL_MAT") continue;
    const [a, b] = node.src;
    if (!a || !b) continue;
    const dot = vecDotType(a.type);
    if (b.type === dot) continue;
    const blocks = ggmlType(dot).blockSize;
    if (b.ne[0] % blocks !== 0) continue;
    work = Math.max(work, rowSize(dot, b.ne[0]) * b.ne[1] * b.ne[2] * b.ne[3]);
  }
  return work;
}

type ComputeFigures = {
  bytes: number;
  peak: { name: string; bytes: number }[];
  cpuWork: number;
  /** False when the architecture's graph could not be rebuilt and the figures are a rough estimate. */
  modelled: boolean;
};

/** Graph replays are pure functions of the model and these settings: remember the recent ones. */
const computeCache = new WeakMap<Artifact, Map<string, ComputeFigures>>();

function llamaCppCompute(artifact: Artifact, settings: LlamaCppSettings): ComputeFigures {
  const key = [settings.backend, settings.contextSize, settings.batchSize, settings.ubatchSize, settings.sequences, settings.flashAttention, settings.kvCacheType].join(":");
  let perArtifact = computeCache.get(artifact);
  if (!perArtifact) computeCache.set(artifact, (perArtifact = new Map()));
  const hit = perArtifact.get(key);
  if (hit) return hit;
  let figures: ComputeFigures;
  try {
    figures = replayCompute(artifact, settings);
  } catch {
    figures = roughCompute(artifact, settings);
  }
  perArtifact.set(key, figures);
  return figures;
}

/**
 * For graphs ./llama-graph.ts does not rebuild (mixture-of-experts, recurrent, encoder-decoder...):
 * the tensors that dominate a decoder's compute buffer at their ubatch sizes.
 */
function roughCompute(artifact: Artifact, settings: LlamaCppSettings): ComputeFigures {
  const h = artifact.hparams;
  const { cells } = kvCells(artifact, settings);
  const T = Math.min(cells, settings.ubatchSize);
  const heads = Math.max(...h.nHead, 1);
  const nFf = Math.max(...h.nFf, h.nEmbd);
  const logits = h.nVocab * Math.min(T, settings.batchSize) * 4;
  const attention = settings.flashAttention ? cells * T * 2 : cells * T * heads * 4 + cells * T * 4;
  const activations = 4 * h.nEmbd * T * 4 + 3 * nFf * T * 4;
  return { bytes: Math.max(logits, attention + activations) + 2 * h.nEmbd * T * 4, peak: [], cpuWork: settings.flashAttention ? 0 : cells * T * heads * 2, modelled: false };
}

function replayCompute(artifact: Artifact, settings: LlamaCppSettings): ComputeFigures {
  const shape = decoderShape(artifact);
  const { cells, cellsSwa } = kvCells(artifact, settings);
  const typeK = kvTypeId(settings.kvCacheType);
  const nTokens = Math.min(cells, settings.ubatchSize);
  const common = { kvSize: cells, kvSizeSwa: cellsSwa, flashAttention: settings.flashAttention, typeK, typeV: typeK };
  const alignment = COMPUTE_ALIGNMENT[settings.backend];
  const buildGraph = shape.shortConv ? buildShortConvGraph : buildDecoderGraph;
  const pp = buildGraph(shape, { ...common, nTokens, nOutputs: Math.min(nTokens, settings.batchSize) });
  const ppAlloc = allocateGraph(pp, alignment);
  const tg = buildGraph(shape, { ...common, nTokens: settings.sequences, nOutputs: settings.sequences });
  const tgAlloc = allocateGraph(tg, alignment);
  const best = tgAlloc.bytes > ppAlloc.bytes ? tgAlloc : ppAlloc;
  return { bytes: best.bytes, peak: [...best.peak], cpuWork: cpuWorkBytes(pp.nodes), modelled: true };
}

export function estimateLlamaCpp(artifact: Artifact, settings: LlamaCppSettings): LlamaCppEstimate {
  if (settings.kvCacheType !== "f16" && settings.kvCacheType !== "f32" && settings.kvCacheType !== "bf16" && !settings.flashAttention) {
    // llama_context: "quantized V cache was requested, but this requires Flash Attention"
    if (isQuantized(kvTypeId(settings.kvCacheType))) throw new Error(`a ${settings.kvCacheType} KV cache needs flash attention in llama.cpp`);
  }
  const { cells, cellsSwa } = kvCells(artifact, settings);
  const compute = llamaCppCompute(artifact, settings);
  const h = artifact.hparams;
  const onGpu = settings.backend !== "cpu";
  const tokens = Math.min(cells, settings.ubatchSize);
  return {
    settings,
    cells,
    cellsSwa,
    weights: llamaCppWeights(artifact, settings),
    kv: llamaCppKv(artifact, settings),
    compute: compute.bytes,
    // get_rows of token_embd runs on the CPU when the layers are offloaded: ids, the looked-up rows and the vector input
    computeHost: onGpu ? alignUp(tokens * 4, 32) + 2 * alignUp(h.nEmbd * tokens * 4, 32) : 0,
    output: h.nVocab * 4 * settings.sequences,
    cpuWork: settings.backend === "cpu" ? compute.cpuWork : 0,
    computePeak: compute.peak,
    computeModelled: compute.modelled,
  };
}
