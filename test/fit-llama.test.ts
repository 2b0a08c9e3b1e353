// Acceptance 1: the fit model's llama.cpp figures against llama.cpp's own, for our F16 and Q4_K_M
// GGUFs of tiny-llama and of the TinyLlama-1.1B-shaped synthetic checkpoint, at contexts 512, 2048
// and 8192 on the CPU: model buffers, KV cache and compute buffer each within 5%. node-llama-cpp's
// GgufInsights estimator is run on the same cases and its error printed beside ours.

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { readGgufArtifact } from "../src/fit/gguf-artifact.js";
import { DEFAULT_LLAMA_CPP, estimateLlamaCpp } from "../src/fit/llama-cpp.js";
import { TINY_LLAMA } from "./support/cli.js";
import { disposeFitLlama, hostRepackProfile, insightsEstimate, measureLlamaCpp } from "./support/fit-llama.js";
import { cachedGguf, GGUF_CACHE } from "./support/gguf-cache.js";
import { writeSyntheticGguf } from "./support/fit-synthetic-gguf.js";
import { syntheticCheckpoint } from "./support/large-checkpoint.js";
import { writeSyntheticCheckpoint } from "./support/synthetic-checkpoint.js";
import { tempDir } from "./support/cli.js";
import { GgmlType } from "../src/quant/ggml-types.js";

const MiB = 2 ** 20;
const TOLERANCE = 0.05;
const CONTEXTS = [512, 2048, 8192];
const NAMES = ["tiny-llama F16", "tiny-llama Q4_K_M", "TinyLlama-1.1B-shaped F16", "TinyLlama-1.1B-shaped Q4_K_M", "gemma3 SWA (synthetic)", "llama tied Q4_0 (synthetic)", "gemma3 F16 (ours, 270m config)", "gemma3 Q4_K_M (ours, 270m config)"];
const models: { name: string; path: string }[] = [];

interface Pair {
  model: string;
  context: number;
  flashAttention: boolean;
  kv: "f16" | "q8_0";
  component: "model" | "kv" | "compute" | "output" | "kv+output";
  llamaCpp: number;
  ours: number;
  insights?: number;
}
const pairs: Pair[] = [];

beforeAll(async () => {
  const big = syntheticCheckpoint("tinyllama1b");
  const paths = [
    await cachedGguf(TINY_LLAMA, "tiny-llama", "f16"),
    await cachedGguf(TINY_LLAMA, "tiny-llama", "q4_k_m"),
    await cachedGguf(big, "tinyllama1b", "f16"),
    await cachedGguf(big, "tinyllama1b", "q4_k_m"),
  ];
  // layouts our converter does not write: sliding-window attention, and a tied Q4_0 embedding that
  // llama.cpp duplicates into the CPU_REPACK buffer as the output matrix
  const gemma = join(GGUF_CACHE, "synthetic-gemma3-swa.gguf");
  const tied = join(GGUF_CACHE, "synthetic-llama-tied-q4_0.gguf");
  await writeSyntheticGguf(gemma, { arch: "gemma3", layers: 6, embd: 256, heads: 4, kvHeads: 2, headDim: 64, ff: 512, vocab: 512, context: 32768, type: GgmlType.F16, tied: true, slidingWindow: 512 });
  await writeSyntheticGguf(tied, { arch: "llama", layers: 4, embd: 256, heads: 4, kvHeads: 2, headDim: 64, ff: 512, vocab: 512, context: 4096, type: GgmlType.Q4_0, tied: true });
  paths.push(gemma, tied);
  // our own gemma3 conversion: 7 layers (the 6th global), one KV head as gemma-3-270m, a 16-token window
  const gemmaSource = join(tempDir(), "gemma3");
  writeSyntheticCheckpoint(gemmaSource, { modelType: "gemma3", hidden: 256, layers: 7, heads: 4, kvHeads: 1, headDim: 64, intermediate: 512, vocab: 4096, seed: 5, dtype: "BF16" });
  paths.push(await cachedGguf(gemmaSource, "gemma3", "f16"), await cachedGguf(gemmaSource, "gemma3", "q4_k_m"));
  paths.forEach((path, i) => models.push({ name: NAMES[i]!, path }));
}, 1_800_000);

afterAll(async () => {
  await disposeFitLlama();
  const error = (a: number, b: number) => (b === 0 ? "     n/a" : `${(((a - b) / b) * 100).toFixed(2).padStart(7)}%`);
  const rows = pairs.map(
    (p) =>
      `${p.model.padEnd(29)} ${String(p.context).padStart(5)} ${p.flashAttention ? "FA " : "   "}${p.kv.padEnd(5)}${p.component.padEnd(8)} llama.cpp ${(p.llamaCpp / MiB).toFixed(2).padStart(8)} MiB  ours ${(p.ours / MiB).toFixed(2).padStart(8)} MiB ${error(p.ours, p.llamaCpp)}` +
      (p.insights === undefined ? "" : `  GgufInsights ${(p.insights / MiB).toFixed(2).padStart(8)} MiB ${error(p.insights, p.llamaCpp)}`),
  );
  console.log(`\nfit model vs llama.cpp (CPU, repack profile ${hostRepackProfile()})\n${rows.join("\n")}`);
  writeFileSync(join(GGUF_CACHE, "acceptance-llama-cpp.json"), JSON.stringify(pairs, null, 2));
});

const cases = [
  ...[0, 1, 2, 3].flatMap((m) => CONTEXTS.map((context) => ({ m, name: NAMES[m]!, context, flashAttention: false, kv: "f16" as const }))),
  // beyond the acceptance: the same model must hold with flash attention on, and with a q8_0 cache
  ...[1, 3].flatMap((m) => CONTEXTS.map((context) => ({ m, name: NAMES[m]!, context, flashAttention: true, kv: "f16" as const }))),
  ...[1, 3].flatMap((m) => [2048, 8192].map((context) => ({ m, name: NAMES[m]!, context, flashAttention: true, kv: "q8_0" as const }))),
  ...[4, 5, 6, 7].flatMap((m) => CONTEXTS.flatMap((context) => [false, true].map((flashAttention) => ({ m, name: NAMES[m]!, context, flashAttention, kv: "f16" as const })))),
];

describe("the fit model predicts llama.cpp's buffers within 5%", () => {
  test.each(cases)("$name, context $context, flash attention $flashAttention, KV $kv", async ({ m, context, flashAttention, kv }) => {
    const { name, path } = models[m]!;
    const measured = await measureLlamaCpp(path, { contextSize: context, flashAttention, kvCacheType: kv === "q8_0" ? "Q8_0" : "F16" });
    const artifact = await readGgufArtifact(path);
    // the batch sizes the context really got (node-llama-cpp asks for 513 with sliding-window models
    // when the context allows it; llama.cpp's own default is 512)
    expect([512, 513]).toContain(measured.ubatch);
    const ours = estimateLlamaCpp(artifact, {
      ...DEFAULT_LLAMA_CPP,
      batchSize: measured.batch,
      ubatchSize: measured.ubatch,
      backend: "cpu",
      contextSize: context,
      flashAttention,
      kvCacheType: kv,
      cpuRepack: hostRepackProfile(),
    });
    const insights = await insightsEstimate(path, { contextSize: context, flashAttention, kvCacheType: kv });
    const add = (component: Pair["component"], llamaCpp: number, mine: number, theirs?: number) =>
      pairs.push({ model: name, context, flashAttention, kv, component, llamaCpp, ours: mine, ...(theirs === undefined ? {} : { insights: theirs }) });
    const llamaModel = measured.modelMapped + measured.modelRepack;
    add("model", llamaModel, ours.weights.host + ours.weights.repack, insights.model);
    add("kv", measured.kv, ours.kv.total);
    add("compute", measured.compute, ours.compute, insights.graph);
    add("output", measured.output, ours.output);
    // GgufInsights does not split its context figure: compare it with llama.cpp's KV + output buffers
    add("kv+output", measured.kv + measured.output, ours.kv.total + ours.output, insights.context);

    expect(ours.cells).toBe(measured.cells);
    expect(Math.abs(ours.weights.host - measured.modelMapped) / measured.modelMapped).toBeLessThanOrEqual(TOLERANCE);
    if (measured.modelRepack > 0) expect(Math.abs(ours.weights.repack - measured.modelRepack) / measured.modelRepack).toBeLessThanOrEqual(TOLERANCE);
    else expect(ours.weights.repack).toBe(0);
    expect(Math.abs(ours.weights.host + ours.weights.repack - llamaModel) / llamaModel).toBeLessThanOrEqual(TOLERANCE);
    expect(Math.abs(ours.kv.total - measured.kv) / measured.kv).toBeLessThanOrEqual(TOLERANCE);
    expect(Math.abs(ours.compute - measured.compute) / measured.compute).toBeLessThanOrEqual(TOLERANCE);
  }, 300_000);
});
