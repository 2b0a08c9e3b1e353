/**
 * Anonymous memory (RssAnon) a llama.cpp context really touches while evaluating a long prompt on
 * the CPU, to check the fit model's compute-buffer + ggml-cpu work-buffer figures (the work buffer is
 * allocated at the first graph compute and never appears in llama.cpp's log). Not a test.
 *
 *   node --import tsx bench/fit-rss.ts model.gguf [context=8192] [fa]
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { getLlama, LlamaLogLevel, type Token } from "node-llama-cpp";
import { readGgufArtifact } from "../src/fit/gguf-artifact.js";
import { DEFAULT_LLAMA_CPP, estimateLlamaCpp } from "../src/fit/llama-cpp.js";
import { hostRepackProfile } from "../test/support/fit-llama.js";

const [path, contextArg = "8192", fa] = process.argv.slice(2);
if (!path) throw new Error("usage: bench/fit-rss.ts model.gguf [context] [fa]");
const contextSize = Number(contextArg);
const flashAttention = fa === "fa";
const status = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(readFileSync("/proc/self/status", "utf8"))?.[1] ?? NaN) * 1024;
const MiB = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;

const llama = await getLlama({ gpu: false, build: "never", usePrebuiltBinaries: true, skipDownload: true, progressLogs: false, logLevel: LlamaLogLevel.error });
const model = await llama.loadModel({ modelPath: resolve(path), gpuLayers: 0 });
const context = await model.createContext({ contextSize, sequences: 1, batchSize: 512, flashAttention, ignoreMemorySafetyChecks: true, threads: 2 });
const vocab = 1000; // token ids below every vocabulary size the tests use
const before = status("RssAnon");
const tokens = Array.from({ length: contextSize - 192 }, (_, i) => ((i * 7919) % vocab) + 10) as Token[];
await context.getSequence().evaluateWithoutGeneratingNewTokens(tokens);
const grown = status("RssAnon") - before;
const e = estimateLlamaCpp(await readGgufArtifact(path), { ...DEFAULT_LLAMA_CPP, backend: "cpu", contextSize, flashAttention, cpuRepack: hostRepackProfile() });
console.log(`RssAnon grew ${MiB(grown)} evaluating ${tokens.length} tokens; fit model: compute buffer ${MiB(e.compute)} + cpu work buffer ${MiB(e.cpuWork)} = ${MiB(e.compute + e.cpuWork)} (the KV cache is cleared, hence touched, at creation)`);
await context.dispose();
await model.dispose();
await llama.dispose();
