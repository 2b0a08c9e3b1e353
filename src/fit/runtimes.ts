/**
 * Memory and decode-speed models per runtime: llama.cpp (./llama-cpp.ts, modelled buffer by buffer),
 * ONNX Runtime and MLX (weights exact from the files; KV cache from the cache layout each runtime
 * uses; activations estimated). Each returns, for a context length, the components, which memory
 * pool each lands in, and the bytes one decoded token reads.
 */
import { isTokenEmbeddingTensor } from "../arch/tensor-names.js";
import type { Artifact } from "./artifact.js";
import type { Device, Runtime } from "./devices.js";
import { alignUp, rowSize } from "../quant/ggml-types.js";
import { estimateLlamaCpp, kvTypeId, type CpuRepackProfile, type LlamaCppSettings } from "./llama-cpp.js";

export interface KvConfig {
  /** "f16": the runtime's native 16-bit (or model-dtype) cache; "q8_0": 8-bit. */
  readonly kvCache: "f16" | "q8_0";
  readonly flashAttention: boolean;
}

/** The configurations a manifest reports by default. q8_0 V needs flash attention in llama.cpp. */
export const DEFAULT_KV_CONFIGS: readonly KvConfig[] = [
  { kvCache: "f16", flashAttention: false },
  { kvCache: "f16", flashAttention: true },
  { kvCache: "q8_0", flashAttention: true },
];

type PoolName = "ram" | "gpu" | "vram";

interface PoolUse {
  readonly pool: PoolName;
  readonly used: number;
  readonly budget: number;
  readonly basis: string;
}

export interface MemoryEstimate {
  /** The context the runtime actually allocates (llama.cpp pads to 256, MLX grows in steps of 256). */
  readonly allocatedContext: number;
  readonly weights: number;
  readonly kvCache: number;
  readonly compute: number;
  readonly output: number;
  readonly overhead: number;
  /** What must stay resident: the figure a "resident" OS limit counts (formats/devices.yaml platforms). */
  readonly total: number;
  /**
   * The peak resident set, what `top` and `/usr/bin/time` show: also the mapped file pages the
   * OS may drop again (llama.cpp-cpu: the originals of repacked weights); a "peak" limit counts it.
   */
  readonly peakResident: number;
  readonly pools: readonly PoolUse[];
  /** Runtime-specific buffers (llama.cpp's log names where they exist). */
  readonly breakdown: Readonly<Record<string, number>>;
  /** Bytes read from memory per decoded token at this context (weights + the filled KV cache). */
  readonly bytesPerToken: number;
}

export interface RuntimeModel {
  readonly runtime: Runtime;
  readonly settings: Readonly<Record<string, string | number | boolean>>;
  /** Components that are estimates rather than a model of the runtime's allocations. */
  readonly estimated: readonly string[];
  readonly notes: readonly string[];
  /** Bandwidth decoding is limited by, and the fraction of it assumed reachable. */
  readonly bandwidth: number;
  readonly bandwidthEfficiency: number;
  evaluate(context: number): MemoryEstimate;
}

type RuntimeChoice = { readonly model: RuntimeModel } | { readonly unsupported: string };

const RAM_BASIS = (device: Device) => `memory.available: ${device.memory.availableBasis} (the limit counts ${device.limitCounts === "peak" ? "the peak resident set" : "resident memory"})`;

/** The RAM a device's limit counts: what must stay resident, or the peak resident set (its platform's limitCounts). */
function ramPool(device: Device, resident: number, peak: number): PoolUse {
  return { pool: "ram", used: device.limitCounts === "peak" ? peak : resident, budget: device.memory.available, basis: RAM_BASIS(device) };
}

function unifiedPools(device: Device, total: number, gpuResident: number): PoolUse[] {
  const pools: PoolUse[] = [ramPool(device, total, total)];
  if (device.memory.gpuWorkingSet !== undefined) {
    pools.push({ pool: "gpu", used: gpuResident, budget: device.memory.gpuWorkingSet, basis: `memory.gpuWorkingSet: ${device.memory.gpuWorkingSetBasis ?? "Metal recommendedMaxWorkingSetSize"}` });
  }
  return pools;
}

function embeddingBytes(artifact: Artifact): number {
  return artifact.tensors.filter((t) => isTokenEmbeddingTensor(t.name)).reduce((sum, t) => sum + t.bytes, 0);
}

/** Weights read per decoded token: all of them except the embedding table, of which one row is read (unless it is also the output matrix). */
function weightsReadPerToken(artifact: Artifact): number {
  return artifact.hparams.tiedEmbeddings ? artifact.weightBytes : artifact.weightBytes - embeddingBytes(artifact);
}

/** KV bytes per token of context, per layer kind, for a cache element size in bytes (or a ggml type). */
function kvBytesRead(artifact: Artifact, context: number, bytesPerRow: (layer: number) => number): number {
  const h = artifact.hparams;
  let bytes = 0;
  for (let il = 0; il < h.nLayer; il++) {
    const cells = h.swaLayers[il] ? Math.min(context, h.slidingWindow) : context;
    bytes += bytesPerRow(il) * cells;
  }
  return bytes;
}

/**
 * The estimate of a runtime that keeps everything in one process allocation (ONNX Runtime, MLX):
 * the files' weights plus the KV cache, compute and overhead, no separate output buffer.
 */
function hostEstimate(
  artifact: Artifact,
  parts: { readonly allocatedContext: number; readonly kvCache: number; readonly compute: number; readonly overhead: number; readonly kvBytesPerToken: number },
  pools: (total: number) => PoolUse[],
  breakdown: Readonly<Record<string, number>>,
): MemoryEstimate {
  const { allocatedContext, kvCache, compute, overhead } = parts;
  const total = artifact.weightBytes + kvCache + compute + overhead;
  return {
    allocatedContext,
    weights: artifact.weightBytes,
    kvCache,
    compute,
    output: 0,
    overhead,
    total,
    peakResident: total,
    pools: pools(total),
    breakdown,
    bytesPerToken: weightsReadPerToken(artifact) + parts.kvBytesPerToken,
  };
}

/** Whether ./llama-graph.ts (or ./shortconv-graph.ts) can rebuild this model's graph (a dense decoder with the usual tensors). */
function graphModelled(artifact: Artifact): boolean {
  const names = new Set(artifact.tensors.map((t) => t.name));
  // ./shortconv-graph.ts rebuilds the short-convolution blocks of hybrids that declare them
  const shortConv = artifact.details.kind === "gguf" && artifact.details.shortConv === true;
  const mixer = (il: number) => names.has(`blk.${il}.attn_q.weight`) || names.has(`blk.${il}.attn_qkv.weight`) || (shortConv && names.has(`blk.${il}.shortconv.in_proj.weight`));
  const dense = (il: number) => names.has(`blk.${il}.ffn_down.weight`) && mixer(il);
  return Array.from({ length: artifact.hparams.nLayer }, (_, il) => dense(il)).every(Boolean) && names.has("token_embd.weight");
}

function llamaCppModel(artifact: Artifact, runtime: Runtime, device: Device, config: KvConfig): RuntimeModel {
  const backend = runtime.backend;
  const discrete = (backend === "cuda" || backend === "vulkan") && device.gpu !== undefined && !device.gpu.unified && !device.memory.unified && device.gpu.available !== undefined;
  const repack: CpuRepackProfile = backend === "cpu" ? device.cpu.repack : "none";
  const base = { backend, batchSize: 512, ubatchSize: 512, sequences: 1, flashAttention: config.flashAttention, kvCacheType: config.kvCache, mmap: true, cpuRepack: repack } as const;
  const h = artifact.hparams;
  const details = artifact.details.kind === "gguf" ? artifact.details : undefined;
  // llama_vocab: token text plus ~40 bytes of token_data / maps per token
  const vocab = (details?.vocabTextBytes ?? 0) + h.nVocab * 40;
  const typeK = kvTypeId(config.kvCache);
  const bandwidth = discrete ? (device.gpu!.bandwidth ?? device.bandwidth) : device.bandwidth;
  const efficiency = device.bandwidthEfficiency ?? (backend === "cpu" ? 0.6 : 0.7);
  const notes: string[] = [];
  if (backend === "cpu") notes.push("compute = llama.cpp's compute buffer plus ggml-cpu's thread work buffer (ggml_graph_plan: the activations each MUL_MAT converts to its weights' dot type, largest without flash attention at long contexts where the attention probabilities are converted to f16), which llama.cpp allocates at the first decode and does not log");
  if (backend === "cpu" && repack !== "none") notes.push(`ggml-cpu repacks ${repack === "x86-avx2" || repack === "x86-avx512" ? "Q4_0/Q4_K/IQ4_NL" : "Q4_0/Q4_K/Q5_K/Q6_K/IQ4_NL/Q8_0"} matmul weights into a CPU_REPACK copy (${repack})`);
  if (backend !== "cpu") notes.push("all layers offloaded (n_gpu_layers = all); token_embd stays in host memory as llama.cpp keeps the input layer on the CPU");
  return {
    runtime,
    settings: {
      n_ctx: "the row's context, padded to 256",
      n_batch: 512,
      n_ubatch: 512,
      n_seq_max: 1,
      flash_attn: config.flashAttention,
      type_k: config.kvCache,
      type_v: config.kvCache,
      use_mmap: true,
      n_gpu_layers: backend === "cpu" ? 0 : "all",
      ...(backend === "cpu" ? { cpu_repack: repack } : {}),
    },
    estimated: [
      ...(!graphModelled(artifact)
        ? [`compute (llama.cpp's ${h.architecture} graph is not rebuilt op for op: dominant tensors only)`]
        : backend === "cpu"
          ? []
          : ["compute (graph replayed in CPU node order; GPU backends may reorder or fuse)"]),
      "overhead",
    ],
    notes,
    bandwidth,
    bandwidthEfficiency: efficiency,
    evaluate(context: number): MemoryEstimate {
      const settings: LlamaCppSettings = { ...base, contextSize: context };
      const e = estimateLlamaCpp(artifact, settings);
      const w = e.weights;
      const weights = backend === "cpu" ? w.hostActive + w.repack : w.device + w.hostActive;
      const compute = e.compute + e.computeHost + e.cpuWork;
      const overhead = runtime.overhead.host + runtime.overhead.device + vocab;
      const total = weights + e.kv.total + compute + e.output + overhead;
      // CPU: the whole mapped range stays in the resident set, the repacked tensors' originals
      // included (read once to repack, then clean pages the OS may drop); GPU backends: as resident.
      const peakResident = backend === "cpu" ? total - weights + w.host + w.repack : total;
      let pools: PoolUse[];
      if (discrete) {
        const vram = w.device + e.kv.total + e.compute + runtime.overhead.device;
        pools = [
          { pool: "vram", used: vram, budget: device.gpu!.available!, basis: `gpu.available: ${device.gpu!.availableBasis ?? ""}` },
          ramPool(device, total - vram, peakResident - vram),
        ];
      } else if (backend === "metal") {
        pools = unifiedPools(device, total, w.device + e.kv.total + e.compute);
      } else {
        pools = [ramPool(device, total, peakResident)];
      }
      const kvRow = (il: number) => rowSize(typeK, h.headDimK * (h.nHeadKv[il] ?? 0)) + rowSize(typeK, h.headDimV * (h.nHeadKv[il] ?? 0));
      return {
        allocatedContext: e.cells,
        weights,
        kvCache: e.kv.total,
        compute,
        output: e.output,
        overhead,
        total,
        peakResident,
        pools,
        breakdown: {
          ...(backend === "cpu" ? { modelMapped: w.host, modelRepack: w.repack } : { modelDevice: w.device, modelHostMapped: w.host }),
          kvK: e.kv.k,
          kvV: e.kv.v,
          ...(e.kv.recurrent > 0 ? { recurrentState: e.kv.recurrent } : {}),
          computeBuffer: e.compute,
          ...(e.computeHost > 0 ? { computeHostBuffer: e.computeHost } : {}),
          ...(e.cpuWork > 0 ? { cpuWorkBuffer: e.cpuWork } : {}),
          outputBuffer: e.output,
          vocabulary: vocab,
          runtimeHost: runtime.overhead.host,
          ...(runtime.overhead.device > 0 ? { runtimeDevice: runtime.overhead.device } : {}),
        },
        bytesPerToken: weightsReadPerToken(artifact) + kvBytesRead(artifact, context, kvRow),
      };
    },
  };
}

function onnxRuntimeModel(artifact: Artifact, runtime: Runtime, device: Device, config: KvConfig): RuntimeChoice {
  if (artifact.details.kind !== "onnx") return { unsupported: "not an ONNX model" };
  if (config.kvCache !== "f16" || config.flashAttention) return { unsupported: "onnxruntime-genai's cache type is fixed by the model's past_key_values inputs" };
  const d = artifact.details;
  const h = artifact.hparams;
  const kvPerToken = h.nHeadKv.reduce((sum, n) => sum + 2 * n * h.headDimK * d.kvBytesPerElement, 0);
  const prefillCap = 2048;
  const model: RuntimeModel = {
    runtime,
    settings: {
      execution_provider: "cpu",
      kv_cache_dtype: d.kvDtype,
      past_present_share_buffer: false,
      prompt_tokens_per_run: `min(context, ${prefillCap})`,
    },
    estimated: ["compute (largest activations: logits, attention probabilities, MLP)", "overhead"],
    notes: [
      "weights are the initializers' bytes exactly (MatMulNBits prepacking replaces, not duplicates, them)",
      `past and present KV tensors are both alive during a step (past_present_share_buffer false): ${d.kvDtype}, 2 copies`,
      `a prompt is run in one pass of up to ${prefillCap} tokens; GroupQueryAttention on CPU materialises heads x tokens x total_length float32 scores`,
    ],
    bandwidth: device.bandwidth,
    bandwidthEfficiency: device.bandwidthEfficiency ?? 0.6,
    evaluate(context: number): MemoryEstimate {
      const kv = 2 * kvPerToken * context;
      const T = Math.min(context, prefillCap);
      const nHead = Math.max(...h.nHead);
      const nFf = Math.max(...h.nFf, 0);
      const logits = T * h.nVocab * 4;
      const scores = nHead * T * T * 4;
      const mlp = 3 * T * nFf * 4;
      const hidden = 4 * T * h.nEmbd * 4;
      const overhead = runtime.overhead.host;
      return hostEstimate(
        artifact,
        { allocatedContext: context, kvCache: kv, compute: logits + Math.max(scores, mlp) + hidden, overhead, kvBytesPerToken: kvPerToken * context },
        (total) => [ramPool(device, total, total)],
        { initializers: artifact.weightBytes, kvPast: kv / 2, kvPresent: kv / 2, logits, attentionScores: scores, mlpActivations: mlp, hiddenStates: hidden, runtimeHost: overhead },
      );
    },
  };
  return { model };
}

function mlxModel(artifact: Artifact, runtime: Runtime, device: Device, config: KvConfig): RuntimeChoice {
  if (artifact.details.kind !== "mlx") return { unsupported: "not an MLX model" };
  if (config.flashAttention && config.kvCache === "f16") return { unsupported: "MLX has no flash-attention switch (its fused attention is always used)" };
  const d = artifact.details;
  const h = artifact.hparams;
  // mlx-lm QuantizedKVCache(bits=8, group_size=64): uint8 values plus a scale and bias per 64 in the model dtype
  const bytesPerElement = config.kvCache === "q8_0" ? 1 + (2 * d.dtypeBytes) / 64 : d.dtypeBytes;
  const kvPerToken = h.nHeadKv.reduce((sum, n) => sum + 2 * n * h.headDimK * bytesPerElement, 0);
  const chunk = 2048;
  const fusedAttention = [64, 80, 128].includes(h.headDimK);
  const model: RuntimeModel = {
    runtime,
    settings: {
      kv_cache: config.kvCache === "q8_0" ? "QuantizedKVCache(bits=8, group_size=64)" : `KVCache (${d.dtype})`,
      kv_step: 256,
      prefill_step_size: chunk,
    },
    estimated: ["compute (one prefill chunk's activations)", "overhead"],
    notes: [
      "weights are the safetensors tensors' bytes exactly, loaded into unified memory",
      "the KV cache grows in steps of 256 tokens as the conversation does",
      fusedAttention ? "attention uses mx.fast.scaled_dot_product_attention's fused kernel (no score matrix)" : "head dim without a fused attention kernel: scores are materialised",
    ],
    bandwidth: device.bandwidth,
    bandwidthEfficiency: device.bandwidthEfficiency ?? 0.7,
    evaluate(context: number): MemoryEstimate {
      const cells = alignUp(context, 256);
      const kv = kvPerToken * cells;
      const T = Math.min(context, chunk);
      const nFf = Math.max(...h.nFf, 0);
      const activations = T * (4 * h.nEmbd + 3 * nFf) * d.dtypeBytes;
      const scores = fusedAttention ? 0 : Math.max(...h.nHead) * T * context * 4;
      const compute = activations + scores + h.nVocab * 4;
      const overhead = runtime.overhead.host;
      return hostEstimate(
        artifact,
        { allocatedContext: cells, kvCache: kv, compute, overhead, kvBytesPerToken: kvPerToken * context },
        (total) => unifiedPools(device, total, artifact.weightBytes + kv + compute),
        { safetensors: artifact.weightBytes, kvCache: kv, activations, attentionScores: scores, runtimeHost: overhead },
      );
    },
  };
  return { model };
}

/** The first runtime on the device that loads the artifact's format, modelled for `config`. */
export function chooseRuntime(artifact: Artifact, device: Device, runtimes: ReadonlyMap<string, Runtime>, config: KvConfig): RuntimeChoice & { runtime?: Runtime } {
  const runtime = device.runtimes.map((id) => runtimes.get(id)).find((r): r is Runtime => r !== undefined && r.formats.includes(artifact.format));
  if (!runtime) return { unsupported: `no runtime listed for ${device.id} loads ${artifact.format} models` };
  switch (runtime.engine) {
    case "llama.cpp":
      if (config.kvCache === "q8_0" && !config.flashAttention) return { runtime, unsupported: "llama.cpp needs flash attention for a quantized V cache" };
      return { runtime, model: llamaCppModel(artifact, runtime, device, config) };
    case "onnxruntime":
      return { runtime, ...onnxRuntimeModel(artifact, runtime, device, config) };
    case "mlx":
      return { runtime, ...mlxModel(artifact, runtime, device, config) };
  }
}
