// llama.cpp's own memory figures for a model load and a context, read from its log through
// node-llama-cpp (prebuilt CPU binaries, never built or downloaded), and node-llama-cpp's
// GgufInsights estimates for the same settings.

import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { getLlama, GgmlType, GgufInsights, LlamaLogLevel, readGgufFileInfo, type Llama } from "node-llama-cpp";
import type { CpuRepackProfile } from "../../src/fit/llama-cpp.js";
import { ORACLES, requireLlamaCpp, requireOracleAsync } from "./oracle.js";

// llama.cpp's own figures are the oracle here: without its binaries, fail at once.
requireLlamaCpp();

const MiB = 2 ** 20;

export interface LlamaCppReport {
  /** "CPU_Mapped model buffer size" (or "CPU model buffer size" without mmap). */
  readonly modelMapped: number;
  /** "CPU_REPACK model buffer size" (0 when absent). */
  readonly modelRepack: number;
  readonly kv: number;
  readonly compute: number;
  readonly output: number;
  readonly cells: number;
  /** n_batch / n_ubatch the context got (node-llama-cpp uses batchSize + 1 for sliding-window models). */
  readonly batch: number;
  readonly ubatch: number;
  readonly log: readonly string[];
}

const lines: string[] = [];
let llamaPromise: Promise<Llama> | null = null;

function llama(): Promise<Llama> {
  llamaPromise ??= requireOracleAsync(ORACLES.llamaCpp, () =>
    getLlama({
      gpu: false,
      build: "never",
      usePrebuiltBinaries: true,
      skipDownload: true,
      progressLogs: false,
      logLevel: LlamaLogLevel.info,
      logger: (level, message) => lines.push(`[${level}] ${message.trimEnd()}`),
    }),
  );
  return llamaPromise;
}

export async function disposeFitLlama(): Promise<void> {
  const pending = llamaPromise;
  llamaPromise = null;
  if (pending) await (await pending).dispose();
}

/** Native log lines reach JS asynchronously: wait until one matching `pattern` has arrived since `mark`. */
async function waitForLine(mark: number, pattern: RegExp, timeoutMs = 5000): Promise<void> {
  const started = Date.now();
  while (!lines.slice(mark).some((l) => pattern.test(l))) {
    if (Date.now() - started > timeoutMs) throw new Error(`llama.cpp never logged ${pattern}; got:\n${lines.slice(mark).join("\n")}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  await new Promise((r) => setTimeout(r, 50));
}

function mib(log: readonly string[], pattern: RegExp): number | undefined {
  for (const line of log) {
    const m = pattern.exec(line);
    if (m) return Math.round(Number(m[1]) * MiB);
  }
  return undefined;
}

/** Loads `path` on the CPU, creates a context, and returns the buffer sizes llama.cpp logged. */
export async function measureLlamaCpp(path: string, options: { contextSize: number; flashAttention: boolean; kvCacheType?: "F16" | "Q8_0"; mmap?: boolean }): Promise<LlamaCppReport> {
  const instance = await llama();
  const mark = lines.length;
  const model = await instance.loadModel({ modelPath: resolve(path), gpuLayers: 0, useMmap: options.mmap ?? true });
  try {
    await waitForLine(mark, /model buffer size/);
    const contextMark = lines.length;
    const context = await model.createContext({
      contextSize: options.contextSize,
      sequences: 1,
      batchSize: 512,
      flashAttention: options.flashAttention,
      ignoreMemorySafetyChecks: true,
      failedCreationRemedy: false,
      ...(options.kvCacheType ? { experimentalKvCacheKeyType: options.kvCacheType, experimentalKvCacheValueType: options.kvCacheType } : {}),
    });
    try {
      await waitForLine(contextMark, /compute buffer size/);
      const log = lines.slice(mark);
      const contextLog = lines.slice(contextMark);
      const mapped = mib(log, /CPU(?:_Mapped)? model buffer size =\s*([\d.]+) MiB/);
      if (mapped === undefined) throw new Error(`no model buffer line:\n${log.join("\n")}`);
      return {
        modelMapped: mapped,
        modelRepack: mib(log, /CPU_REPACK model buffer size =\s*([\d.]+) MiB/) ?? 0,
        // sliding-window models log one KV buffer for the full cache and one for the window
        kv: contextLog.filter((l) => /KV buffer size =/.test(l)).reduce((sum, l) => sum + (mib([l], /KV buffer size =\s*([\d.]+) MiB/) ?? NaN), 0),
        compute: mib(contextLog, /CPU compute buffer size =\s*([\d.]+) MiB/) ?? NaN,
        output: mib(contextLog, /output buffer size =\s*([\d.]+) MiB/) ?? NaN,
        cells: Number(/size = .*\(\s*(\d+) cells/.exec(contextLog.find((l) => /cells,/.test(l)) ?? "")?.[1] ?? NaN),
        batch: Number(/n_batch\s+=\s*(\d+)/.exec(contextLog.find((l) => /n_batch\s+=/.test(l)) ?? "")?.[1] ?? NaN),
        ubatch: Number(/n_ubatch\s+=\s*(\d+)/.exec(contextLog.find((l) => /n_ubatch\s+=/.test(l)) ?? "")?.[1] ?? NaN),
        log: contextLog.filter((l) => /buffer size|cells|flash_attn/.test(l)),
      };
    } finally {
      await context.dispose();
    }
  } finally {
    await model.dispose();
  }
}

export interface InsightsEstimate {
  readonly model: number;
  /** KV cache + output buffer, without the graph overhead. */
  readonly context: number;
  /** The graph (compute buffer) part: with minus without graph overhead. */
  readonly graph: number;
}

/** node-llama-cpp's JS estimator (GgufInsights, the non-simulating V1 methods) for the same CPU load. */
export async function insightsEstimate(path: string, options: { contextSize: number; flashAttention: boolean; kvCacheType?: "f16" | "q8_0" }): Promise<InsightsEstimate> {
  const insights = await GgufInsights.from(await readGgufFileInfo(resolve(path)), await llama());
  const model = insights.estimateModelResourceRequirements({ gpuLayers: 0, useMmap: true }).cpuRam;
  const kvType = options.kvCacheType === "q8_0" ? GgmlType.Q8_0 : GgmlType.F16;
  const common = { contextSize: options.contextSize, modelGpuLayers: 0, batchSize: 512, sequences: 1, flashAttention: options.flashAttention, kvCacheKeyType: kvType, kvCacheValueType: kvType };
  const withGraph = insights.estimateContextResourceRequirements({ ...common, includeGraphOverhead: true }).cpuRam;
  const context = insights.estimateContextResourceRequirements({ ...common, includeGraphOverhead: false }).cpuRam;
  return { model, context, graph: withGraph - context };
}

/** The repack profile of the machine the tests run on (what ggml-cpu will do here). */
export function hostRepackProfile(): CpuRepackProfile {
  if (process.arch === "x64") {
    const flags = existsSync("/proc/cpuinfo") ? readFileSync("/proc/cpuinfo", "utf8") : "";
    if (/\bavx512f\b/.test(flags)) return "x86-avx512";
    if (/\bavx2\b/.test(flags)) return "x86-avx2";
    return "none";
  }
  if (process.arch === "arm64") {
    const flags = existsSync("/proc/cpuinfo") ? readFileSync("/proc/cpuinfo", "utf8") : "";
    if (/\bi8mm\b/.test(flags) || process.platform === "darwin") return "arm-i8mm";
    if (/\basimddp\b/.test(flags)) return "arm-dotprod";
  }
  return "none";
}
