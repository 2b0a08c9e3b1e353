/**
 * Prints llama.cpp's own memory log lines (model, KV, output and compute buffers) for one model load
 * and context on the CPU, next to the fit model's prediction for the same settings. A debugging aid
 * for src/fit/llama-cpp.ts, not a test.
 *
 *   node --import tsx bench/fit-llama-log.ts model.gguf [context=2048] [fa] [q8_0]
 *   GGML_SCHED_DEBUG=2 FIT_LOG_LEVEL=debug node --import tsx bench/fit-llama-log.ts model.gguf 512   # + graph nodes
 */
import { resolve } from "node:path";
import { getLlama, LlamaLogLevel } from "node-llama-cpp";
import { readGgufArtifact } from "../src/fit/gguf-artifact.js";
import { DEFAULT_LLAMA_CPP, estimateLlamaCpp } from "../src/fit/llama-cpp.js";
import { hostRepackProfile } from "../test/support/fit-llama.js";

const [path, contextArg = "2048", ...flags] = process.argv.slice(2);
if (!path) throw new Error("usage: bench/fit-llama-log.ts model.gguf [context] [fa] [q8_0]");
const contextSize = Number(contextArg);
const flashAttention = flags.includes("fa") || flags.includes("q8_0");
const q8 = flags.includes("q8_0");
const lines: string[] = [];
const llama = await getLlama({
  gpu: false, build: "never", usePrebuiltBinaries: true, skipDownload: true, progressLogs: false,
  logLevel: process.env["FIT_LOG_LEVEL"] === "debug" ? LlamaLogLevel.debug : LlamaLogLevel.info,
  logger: (level, message) => lines.push(`[${level}] ${message.trimEnd()}`),
});
const model = await llama.loadModel({ modelPath: resolve(path), gpuLayers: 0 });
const context = await model.createContext({
  contextSize, sequences: 1, batchSize: 512, flashAttention, ignoreMemorySafetyChecks: true, failedCreationRemedy: false,
  ...(q8 ? { experimentalKvCacheKeyType: "Q8_0", experimentalKvCacheValueType: "Q8_0" } : {}),
});
await new Promise((r) => setTimeout(r, 300));
const shown = process.env["FIT_LOG_LEVEL"] === "debug" ? lines : lines.filter((l) => /buffer size|cells|n_ctx |flash_attn|n_ubatch|n_outputs_max /.test(l));
console.log(shown.join("\n"));
const e = estimateLlamaCpp(await readGgufArtifact(path), { ...DEFAULT_LLAMA_CPP, backend: "cpu", contextSize, flashAttention, kvCacheType: q8 ? "q8_0" : "f16", cpuRepack: hostRepackProfile() });
const MiB = (b: number) => `${(b / 2 ** 20).toFixed(2)} MiB`;
console.log(`\nfit model (${hostRepackProfile()}): CPU_Mapped ${MiB(e.weights.host)}, CPU_REPACK ${MiB(e.weights.repack)}, KV ${MiB(e.kv.total)} (${e.cells} cells), output ${MiB(e.output)}, compute ${MiB(e.compute)}, cpu work (not logged) ${MiB(e.cpuWork)}`);
await context.dispose();
await model.dispose();
await llama.dispose();
