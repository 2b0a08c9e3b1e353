/**
 * The fit manifest: for every artifact x device x KV configuration x context length, what the
 * device's runtime allocates, whether it fits the memory an app can use there, the headroom, the
 * largest context that fits, and the decode speed memory bandwidth allows.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { UserError } from "../errors.js";
import { VERSION } from "../version.js";
import type { Artifact } from "./artifact.js";
import { loadCatalogue, selectDevices, type Device, type Runtime } from "./devices.js";
import { rowSize } from "../quant/ggml-types.js";
import { parseSplitPath } from "../writers/gguf/split.js";
import { readGgufArtifact } from "./gguf-artifact.js";
import { kvTypeId } from "./llama-cpp.js";
import { isMlxFolder, isModelFolder, readMlxArtifact } from "./mlx-artifact.js";
import { onnxModelFiles, readOnnxArtifact } from "./onnx-artifact.js";
import { chooseRuntime, DEFAULT_KV_CONFIGS, type KvConfig, type MemoryEstimate, type RuntimeModel } from "./runtimes.js";

const DEFAULT_CONTEXTS: readonly number[] = [512, 2048, 4096, 8192, 32768];
const FIT_MANIFEST_SCHEMA = "edgequant-fit-manifest/v1";

export interface FitManifestOptions {
  /** Device ids; default: every device of the catalogue. */
  readonly devices?: readonly string[];
  /** Context lengths; default 512, 2048, 4096, 8192, 32768 and each model's maximum. */
  readonly contexts?: readonly number[];
  /** A YAML file of extra devices / runtimes (formats/devices.schema.json). */
  readonly devicesFile?: string;
  /** KV cache configurations; default f16 (flash attention off and on) and q8_0 (flash attention on). */
  readonly kvConfigs?: readonly KvConfig[];
}

export interface FitArtifact {
  readonly id: string;
  readonly path: string;
  readonly format: Artifact["format"];
  readonly name: string;
  readonly architecture: string;
  readonly quantization: string;
  readonly parameters: number;
  /** The tensors' data bytes, exactly as stored in the files. */
  readonly weightBytes: number;
  readonly files: readonly { readonly path: string; readonly bytes: number }[];
  readonly contextLength: number;
  readonly layers: number;
  readonly embeddingLength: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly slidingWindow: number;
  /** KV cache bytes one token of context adds (all layers, K and V), by cache type. */
  readonly kvBytesPerToken: { readonly f16: number; readonly q8_0: number };
}

/** A runtime's memory estimate at one context, judged against the device's budgets. */
export interface FitRow extends Omit<MemoryEstimate, "bytesPerToken"> {
  readonly context: number;
  readonly exceedsModelContext: boolean;
  readonly fits: boolean;
  /** Budget minus use of the tightest pool (negative when it does not fit). */
  readonly headroom: number;
  readonly bindingPool: string;
  readonly decodeTokensPerSecond: number;
}

export interface FitResult {
  readonly artifact: string;
  readonly device: string;
  readonly runtime: string | null;
  readonly kvCache: KvConfig["kvCache"];
  readonly flashAttention: boolean;
  readonly supported: boolean;
  readonly reason?: string;
  readonly settings?: Readonly<Record<string, string | number | boolean>>;
  readonly estimated?: readonly string[];
  readonly notes?: readonly string[];
  readonly decode?: { readonly bandwidth: number; readonly efficiency: number };
  readonly rows?: readonly FitRow[];
  readonly largestContext?: { readonly tokens: number | null; readonly limitedBy: "memory" | "model context" };
}

export interface FitManifest {
  readonly schema: typeof FIT_MANIFEST_SCHEMA;
  readonly generator: { readonly name: "edgequant"; readonly version: string };
  readonly createdAt: string;
  readonly contexts: readonly number[];
  readonly assumptions: readonly string[];
  readonly artifacts: readonly FitArtifact[];
  readonly runtimes: readonly Runtime[];
  readonly devices: readonly Device[];
  readonly results: readonly FitResult[];
}

const ASSUMPTIONS: readonly string[] = [
  "Sizes are bytes. A model fits when, in every memory pool it uses (ram: the app's memory budget; gpu: Metal's working set on Apple GPUs; vram: a discrete GPU's memory), what the runtime allocates is at most the budget. Headroom is the smallest budget minus use.",
  "Budgets are what one app can really use (device memory.available), not installed RAM; each device entry names its basis and sources.",
  "llama.cpp figures follow its allocations buffer by buffer for one sequence (n_seq_max 1), n_batch = n_ubatch = 512, use_mmap on, the row's context padded to 256: model buffers (mmapped file range, plus the CPU_REPACK copy ggml-cpu makes of Q4_0/Q4_K/IQ4_NL weights on x86 and more types on ARM), the KV cache, the output (logits) buffer, the compute buffer (ggml-alloc replayed over the graph llama.cpp reserves) and ggml-cpu's thread work buffer. Weights count what stays resident: mapped tensors the CPU still reads plus repacked copies; the mapped originals of repacked tensors are clean file pages the OS can drop.",
  "KV configurations: f16 with flash attention off (node-llama-cpp's default; the compute buffer then grows with the context) and on (llama.cpp's auto default on most backends), and q8_0 K and V, which needs flash attention.",
  "ONNX Runtime and MLX weights are the files' tensor bytes exactly; their KV cache follows each runtime's cache layout; their compute figures are estimates of the largest activations and are labelled so.",
  "Runtime overheads (process, libraries, GPU contexts) are assumed constants per runtime, stated with their basis in the runtimes list.",
  "Decode tokens/s = bandwidth x efficiency / bytes read per token, where a token reads every weight once (the embedding table only one row unless it is also the output matrix) and the KV cache filled to the row's context; batch 1, memory-bound, no speculative decoding. It is an upper bound where compute, not bandwidth, limits (small models on CPUs).",
];

/** Every model artifact at `path`: a GGUF or ONNX file, or a folder of them (searched one level deep). */
async function findArtifacts(path: string): Promise<Artifact[]> {
  const full = resolve(path);
  if (!existsSync(full)) throw new UserError("no such file or folder", { file: path });
  if (statSync(full).isFile()) {
    if (full.endsWith(".gguf")) return [await readGgufArtifact(full)];
    if (full.endsWith(".onnx")) return [await readOnnxArtifact(full)];
    throw new UserError("not a model artifact: give a .gguf file, an ONNX or MLX model folder, or a folder of them", { file: path });
  }
  const found = await artifactsIn(full);
  const isModel = found.some((a) => a.format !== "gguf");
  if (!isModel) {
    for (const entry of readdirSync(full).sort()) {
      const sub = join(full, entry);
      if (!entry.startsWith(".") && statSync(sub).isDirectory()) found.push(...(await artifactsIn(sub)));
    }
  }
  if (found.length === 0 && isModelFolder(full)) {
    throw new UserError(`a Hugging Face checkpoint, not a converted model: 'edgequant plan ${path}' predicts every GGUF, MLX and ONNX artifact it can become and fits each`, { file: path });
  }
  if (found.length === 0) throw new UserError("no GGUF, ONNX or MLX model found here", { file: path });
  return found;
}

async function artifactsIn(folder: string): Promise<Artifact[]> {
  const found: Artifact[] = [];
  const ggufs = readdirSync(folder)
    // A split model is read from its first file, which names the others.
    .filter((f) => f.endsWith(".gguf") && (parseSplitPath(f)?.index ?? 0) === 0)
    .sort();
  for (const f of ggufs) found.push(await readGgufArtifact(join(folder, f)));
  for (const f of onnxModelFiles(folder)) found.push(await readOnnxArtifact(f));
  if (found.length === 0 && (await isMlxFolder(folder))) found.push(await readMlxArtifact(folder));
  return found;
}

function artifactId(artifact: Artifact, taken: Set<string>): string {
  const base = artifact.format === "gguf" ? basename(artifact.path) : artifact.name;
  let id = base;
  for (let i = 2; taken.has(id); i++) id = `${base}#${i}`;
  taken.add(id);
  return id;
}

function kvBytesPerToken(artifact: Artifact, type: string): number {
  const h = artifact.hparams;
  const id = kvTypeId(type);
  return h.nHeadKv.reduce((sum, n) => sum + rowSize(id, h.headDimK * n) + rowSize(id, h.headDimV * n), 0);
}

function summarize(artifact: Artifact, id: string): FitArtifact {
  const h = artifact.hparams;
  return {
    id,
    path: artifact.path,
    format: artifact.format,
    name: artifact.name,
    architecture: h.architecture,
    quantization: artifact.quantization,
    parameters: artifact.parameters,
    weightBytes: artifact.weightBytes,
    files: artifact.files,
    contextLength: h.contextLength,
    layers: h.nLayer,
    embeddingLength: h.nEmbd,
    heads: h.nHead[0] ?? 0,
    // the attention layers' (a hybrid's recurrent layers have none)
    kvHeads: Math.max(0, ...h.nHeadKv),
    headDim: h.headDimK,
    slidingWindow: h.slidingWindow,
    kvBytesPerToken: { f16: kvBytesPerToken(artifact, "f16"), q8_0: kvBytesPerToken(artifact, "q8_0") },
  };
}

function row(model: RuntimeModel, context: number, modelContext: number): FitRow {
  const e = model.evaluate(context);
  let binding = e.pools[0]!;
  for (const p of e.pools) if (p.budget - p.used < binding.budget - binding.used) binding = p;
  return {
    context,
    allocatedContext: e.allocatedContext,
    exceedsModelContext: context > modelContext,
    weights: e.weights,
    kvCache: e.kvCache,
    compute: e.compute,
    output: e.output,
    overhead: e.overhead,
    total: e.total,
    peakResident: e.peakResident,
    pools: e.pools,
    fits: e.pools.every((p) => p.used <= p.budget),
    headroom: binding.budget - binding.used,
    bindingPool: binding.pool,
    decodeTokensPerSecond: Math.round((10 * model.bandwidth * model.bandwidthEfficiency) / e.bytesPerToken) / 10,
    breakdown: e.breakdown,
  };
}

function fitsAt(model: RuntimeModel, context: number): boolean {
  return model.evaluate(context).pools.every((p) => p.used <= p.budget);
}

/** Largest context (a multiple of 256, or the model's maximum) that fits. */
export function largestContext(model: RuntimeModel, modelContext: number): { tokens: number | null; limitedBy: "memory" | "model context" } {
  if (fitsAt(model, modelContext)) return { tokens: modelContext, limitedBy: "model context" };
  const step = 256;
  let lo = 0; // in steps; 0 means nothing fits
  let hi = Math.floor((modelContext - 1) / step);
  if (hi < 1 || !fitsAt(model, step)) return { tokens: null, limitedBy: "memory" };
  lo = 1;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (fitsAt(model, mid * step)) lo = mid;
    else hi = mid - 1;
  }
  return { tokens: lo * step, limitedBy: "memory" };
}

/** Builds the manifest for the artifact(s) at `artifactPath`. */
export async function fitManifest(artifactPath: string, options: FitManifestOptions = {}): Promise<FitManifest> {
  return fitArtifacts(await findArtifacts(artifactPath), options);
}

/** The manifest for artifacts described in memory: read from files, or planned before they exist (`plan`). */
export async function fitArtifacts(artifacts: readonly Artifact[], options: FitManifestOptions = {}): Promise<FitManifest> {
  const catalogue = await loadCatalogue(options.devicesFile);
  const devices = selectDevices(catalogue, options.devices);
  for (const c of options.contexts ?? []) {
    if (!Number.isInteger(c) || c < 1) throw new UserError(`context lengths are positive integers; got ${c}`);
  }
  const contexts = [...new Set([...(options.contexts ?? [...DEFAULT_CONTEXTS, ...artifacts.map((a) => a.hparams.contextLength)])])].sort((a, b) => a - b);
  const kvConfigs = options.kvConfigs ?? DEFAULT_KV_CONFIGS;
  const taken = new Set<string>();
  const summaries = artifacts.map((a) => summarize(a, artifactId(a, taken)));
  const results: FitResult[] = [];
  const usedRuntimes = new Set<string>();
  artifacts.forEach((artifact, index) => {
    const summary = summaries[index]!;
    for (const device of devices) {
      for (const config of kvConfigs) {
        const choice = chooseRuntime(artifact, device, catalogue.runtimes, config);
        const base = { artifact: summary.id, device: device.id, runtime: choice.runtime?.id ?? null, kvCache: config.kvCache, flashAttention: config.flashAttention };
        if (choice.runtime) usedRuntimes.add(choice.runtime.id);
        if (!("model" in choice)) {
          results.push({ ...base, supported: false, reason: choice.unsupported });
          continue;
        }
        const model = choice.model;
        results.push({
          ...base,
          supported: true,
          settings: model.settings,
          estimated: model.estimated,
          notes: model.notes,
          decode: { bandwidth: model.bandwidth, efficiency: model.bandwidthEfficiency },
          rows: contexts.map((c) => row(model, c, artifact.hparams.contextLength)),
          largestContext: largestContext(model, artifact.hparams.contextLength),
        });
      }
    }
  });
  return {
    schema: FIT_MANIFEST_SCHEMA,
    generator: { name: "edgequant", version: VERSION },
    createdAt: new Date().toISOString(),
    contexts,
    assumptions: ASSUMPTIONS,
    artifacts: summaries,
    runtimes: [...catalogue.runtimes.values()].filter((r) => usedRuntimes.has(r.id)),
    devices,
    results,
  };
}

/** `<out>.fit.json` beside a converted model file or folder. */
export function defaultFitPath(artifactPath: string): string {
  return `${resolve(artifactPath).replace(/[\\/]+$/, "")}.fit.json`;
}
