// Fit for phi3 GGUFs (fused attn_qkv, a double-height ffn_up split by a one-input SwiGLU, LongRoPE
// factor tensors, queries scaled before attention as src/models/phi3.cpp does): model buffers, KV
// cache and compute buffer each within 5% of llama.cpp's own report on the CPU, as fit-llama.test.ts
// checks for llama. The checkpoint has Phi-4-mini-instruct's config (GQA, partial rotary, tied).

import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { readGgufArtifact } from "../src/fit/gguf-artifact.js";
import { DEFAULT_LLAMA_CPP, estimateLlamaCpp } from "../src/fit/llama-cpp.js";
import { tempDir } from "./support/cli.js";
import { disposeFitLlama, hostRepackProfile, measureLlamaCpp } from "./support/fit-llama.js";
import { cachedGguf } from "./support/gguf-cache.js";
import { writeSyntheticCheckpoint } from "./support/synthetic-checkpoint.js";

const TOLERANCE = 0.05;
const paths = new Map<string, string>();

beforeAll(async () => {
  // No "phi3" in the folder name (general.name): llama.cpp would look up Phi-3 special tokens the tiny vocabulary lacks.
  const source = join(tempDir(), "phi-four-mini");
  writeSyntheticCheckpoint(source, { modelType: "phi4-mini", hidden: 512, layers: 4, heads: 8, kvHeads: 4, headDim: 64, intermediate: 1024, vocab: 4096, seed: 5, dtype: "BF16" });
  for (const scheme of ["f16", "q4_k_m"]) paths.set(scheme, await cachedGguf(source, "phi4-mini-shaped", scheme));
}, 600_000);

afterAll(() => disposeFitLlama());

const cases = ["f16", "q4_k_m"].flatMap((scheme) => [512, 2048, 8192].flatMap((context) => [false, true].map((flashAttention) => ({ scheme, context, flashAttention }))));

describe("fit predicts llama.cpp's buffers for a phi3 GGUF within 5%", () => {
  test.each(cases)("$scheme, context $context, flash attention $flashAttention", async ({ scheme, context, flashAttention }) => {
    const path = paths.get(scheme)!;
    const measured = await measureLlamaCpp(path, { contextSize: context, flashAttention, kvCacheType: "F16" });
    const artifact = await readGgufArtifact(path);
    const ours = estimateLlamaCpp(artifact, {
      ...DEFAULT_LLAMA_CPP,
      batchSize: measured.batch,
      ubatchSize: measured.ubatch,
      backend: "cpu",
      contextSize: context,
      flashAttention,
      kvCacheType: "f16",
      cpuRepack: hostRepackProfile(),
    });
    const llamaModel = measured.modelMapped + measured.modelRepack;
    const error = (a: number, b: number) => Math.abs(a - b) / b;
    console.log(
      `phi3 ${scheme} ctx ${context} FA ${flashAttention}: model ${error(ours.weights.host + ours.weights.repack, llamaModel).toFixed(4)}, ` +
        `kv ${error(ours.kv.total, measured.kv).toFixed(4)}, compute ${error(ours.compute, measured.compute).toFixed(4)} (llama.cpp ${measured.compute}, ours ${ours.compute})`,
    );
    expect(ours.cells).toBe(measured.cells);
    expect(error(ours.weights.host + ours.weights.repack, llamaModel)).toBeLessThanOrEqual(TOLERANCE);
    expect(error(ours.kv.total, measured.kv)).toBeLessThanOrEqual(TOLERANCE);
    expect(error(ours.compute, measured.compute)).toBeLessThanOrEqual(TOLERANCE);
  }, 300_000);
});
