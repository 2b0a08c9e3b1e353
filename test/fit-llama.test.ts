// Acceptance 1: the fit model's llama.cpp figures against llama.cpp's own, for our F16 and Q4_K_M
// GGUFs of tiny-llama and of the TinyLlama-1.1B-shaped synthetic checkpoint, at contexts 512, 2048
// and 8192 on the CPU: model buffers, KV cache and compute buffer each within 5%. node-llama-cpp's
// GgufInsights estimator is run on the same cases and its error printed beside ours.
//
// One row of FIT_MODELS per GGUF: a new architecture adds a row (its GGUF builder and settings);
// `vitest run test/fit-llama.test.ts -t "<name>"` builds and checks just that row.

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, test } from "vitest";
import { TINY_LLAMA } from "./support/cli.js";
import { checkFit, convertedGguf, fitCases, fitReport, settings, type FitModel, type FitPair } from "./support/fit-cases.js";
import { disposeFitLlama } from "./support/fit-llama.js";
import { cachedGguf, GGUF_CACHE } from "./support/gguf-cache.js";
import { writeSyntheticGguf, type SyntheticModel } from "./support/fit-synthetic-gguf.js";
import { syntheticCheckpoint } from "./support/large-checkpoint.js";
import { writeSyntheticCheckpoint } from "./support/synthetic-checkpoint.js";
import { GgmlType } from "../src/quant/ggml-types.js";

const CONTEXTS = [512, 2048, 8192];

/** A zero-weight GGUF in a layout our converter does not write (see fit-synthetic-gguf.ts). */
function zeroGguf(file: string, model: SyntheticModel): () => Promise<string> {
  return async () => {
    const path = join(GGUF_CACHE, file);
    await writeSyntheticGguf(path, model);
    return path;
  };
}

const FIT_MODELS: FitModel[] = [
  { name: "tiny-llama F16", gguf: () => cachedGguf(TINY_LLAMA, "tiny-llama", "f16"), settings: settings(CONTEXTS) },
  // beyond the acceptance: the same model must hold with flash attention on, and with a q8_0 cache
  {
    name: "tiny-llama Q4_K_M",
    gguf: () => cachedGguf(TINY_LLAMA, "tiny-llama", "q4_k_m"),
    settings: [...settings(CONTEXTS, [false, true]), ...settings([2048, 8192], [true], ["q8_0"])],
  },
  { name: "TinyLlama-1.1B-shaped F16", gguf: () => cachedGguf(syntheticCheckpoint("tinyllama1b"), "tinyllama1b", "f16"), settings: settings(CONTEXTS) },
  {
    name: "TinyLlama-1.1B-shaped Q4_K_M",
    gguf: () => cachedGguf(syntheticCheckpoint("tinyllama1b"), "tinyllama1b", "q4_k_m"),
    settings: [...settings(CONTEXTS, [false, true]), ...settings([2048, 8192], [true], ["q8_0"])],
  },
  // layouts our converter does not write: sliding-window attention, and a tied Q4_0 embedding that
  // llama.cpp duplicates into the CPU_REPACK buffer as the output matrix
  {
    name: "gemma3 SWA (synthetic)",
    gguf: zeroGguf("synthetic-gemma3-swa.gguf", { arch: "gemma3", layers: 6, embd: 256, heads: 4, kvHeads: 2, headDim: 64, ff: 512, vocab: 512, context: 32768, type: GgmlType.F16, tied: true, slidingWindow: 512 }),
    settings: settings(CONTEXTS, [false, true]),
  },
  {
    name: "llama tied Q4_0 (synthetic)",
    gguf: zeroGguf("synthetic-llama-tied-q4_0.gguf", { arch: "llama", layers: 4, embd: 256, heads: 4, kvHeads: 2, headDim: 64, ff: 512, vocab: 512, context: 4096, type: GgmlType.Q4_0, tied: true }),
    settings: settings(CONTEXTS, [false, true]),
  },
  // granite-3.3-2b-instruct's config: the muP scales add nodes to llama.cpp's graph
  {
    name: "granite (synthetic) Q4_K_M",
    gguf: convertedGguf("granite", "q4_k_m", (dir) =>
      writeSyntheticCheckpoint(dir, { modelType: "granite", hidden: 256, layers: 4, heads: 4, kvHeads: 2, headDim: 64, intermediate: 512, vocab: 4096, seed: 21, dtype: "BF16", tieEmbeddings: true }),
    ),
    settings: settings(CONTEXTS, [false, true]),
  },
  // SmolLM3-3B's config: layers 3 and 7 skip RoPE (llama.cpp's every-4th NoPE step), tied output
  {
    name: "smollm3 (synthetic) Q4_K_M",
    gguf: convertedGguf("smollm3", "q4_k_m", (dir) =>
      writeSyntheticCheckpoint(dir, { modelType: "smollm3", hidden: 256, layers: 8, heads: 4, kvHeads: 2, headDim: 64, intermediate: 512, vocab: 4096, seed: 21, dtype: "BF16" }),
    ),
    settings: settings(CONTEXTS, [false, true]),
  },
  // Phi-4-mini-instruct's config (phi3 graph): fused attn_qkv, a double-height ffn_up halved by a
  // one-input SwiGLU, the query scale node, the residual-first add, LongRoPE factor tensors. The
  // source folder avoids "phi3" in its name (general.name), for which llama.cpp looks up Phi-3 tokens.
  ...["f16", "q4_k_m"].map((scheme) => ({
    name: `phi3 (synthetic Phi-4-mini) ${scheme.toUpperCase()}`,
    gguf: convertedGguf("phi-four-mini", scheme, (dir) =>
      writeSyntheticCheckpoint(dir, { modelType: "phi4-mini", hidden: 512, layers: 4, heads: 8, kvHeads: 4, headDim: 64, intermediate: 1024, vocab: 4096, seed: 5, dtype: "BF16" }),
    ),
    settings: settings(CONTEXTS, [false, true]),
  })),
  // our own gemma3 conversion: 7 layers (the 6th global), one KV head as gemma-3-270m, a 16-token window
  ...["f16", "q4_k_m"].map((scheme) => ({
    name: `gemma3 ${scheme.toUpperCase()} (ours, 270m config)`,
    gguf: convertedGguf("gemma3", scheme, (dir) =>
      writeSyntheticCheckpoint(dir, { modelType: "gemma3", hidden: 256, layers: 7, heads: 4, kvHeads: 1, headDim: 64, intermediate: 512, vocab: 4096, seed: 5, dtype: "BF16" }),
    ),
    settings: settings(CONTEXTS, [false, true]),
  })),
];

const pairs: FitPair[] = [];
afterAll(async () => {
  await disposeFitLlama();
  console.log(fitReport(pairs));
  writeFileSync(join(GGUF_CACHE, "acceptance-llama-cpp.json"), JSON.stringify(pairs, null, 2));
});

describe("the fit model predicts llama.cpp's buffers within 5%", () => {
  // a row's first case also builds its GGUF (the 1.1B-shaped conversion takes minutes)
  test.each(fitCases(FIT_MODELS))("$name, context $context, flash attention $flashAttention, KV $kv", async ({ model, name: _name, ...setting }) => {
    await checkFit(model, setting, pairs);
  }, 1_800_000);
});
