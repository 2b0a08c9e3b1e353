// Shared inputs for the ONNX tests: prompts tokenized by llama.cpp from corpus slices,
// and small synthetic qwen2 / qwen3 / tied-embedding llama checkpoints.

import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { convertToGguf } from "../../src/convert/gguf.js";
import { resolveScheme } from "../../src/quant/schemes.js";
import { CORPUS, TINY_LLAMA, tempDir } from "./cli.js";
import { llamaCppTokenize } from "./llama-cpp.js";
import { writeSyntheticCheckpoint, type SyntheticSpec } from "./synthetic-checkpoint.js";

export const BOS = 1;

let vocabGguf: Promise<string> | undefined;
const vocabDir = tempDir("edgequant-onnx-vocab-");

/** An F32 GGUF of the tiny Llama, for llama.cpp's tokenizer (every fixture shares its tokenizer.model). */
export function tokenizerGguf(): Promise<string> {
  vocabGguf ??= (async () => {
    const file = join(vocabDir, "tiny-llama-f32.gguf");
    await convertToGguf({ source: TINY_LLAMA, output: file, scheme: resolveScheme({ scheme: "f32" }) });
    return file;
  })();
  return vocabGguf;
}

/** Three prompts: BOS + llama.cpp's tokens of three slices of the test corpus, within the tiny Llama's 256-token context. */
export async function corpusPrompts(): Promise<number[][]> {
  const corpus = readFileSync(CORPUS, "utf8");
  const gguf = await tokenizerGguf();
  const slices = [corpus.slice(0, 120), corpus.slice(5000, 5300), corpus.slice(20000, 20090)];
  return Promise.all(slices.map(async (text) => [BOS, ...(await llamaCppTokenize(gguf, text))].slice(0, 200)));
}

const SPECS: Record<string, SyntheticSpec> = {
  qwen2: { modelType: "qwen2", hidden: 128, layers: 2, heads: 4, kvHeads: 2, headDim: 32, intermediate: 256, vocab: 4096, seed: 11, dtype: "BF16" },
  qwen3: { modelType: "qwen3", hidden: 128, layers: 2, heads: 4, kvHeads: 1, headDim: 64, intermediate: 384, vocab: 4096, seed: 12, dtype: "F32" },
  "llama-tied": { modelType: "llama", hidden: 96, layers: 2, heads: 6, kvHeads: 3, headDim: 16, intermediate: 192, vocab: 4096, seed: 13, dtype: "F16", tieEmbeddings: true },
  granite: { modelType: "granite", hidden: 128, layers: 2, heads: 4, kvHeads: 2, headDim: 32, intermediate: 256, vocab: 4096, seed: 14, dtype: "BF16", tieEmbeddings: true },
  // five layers: layer 3 has no RoPE (SmolLM3-3B's 1,1,1,0 pattern); no lm_head, as tied by default
  smollm3: { modelType: "smollm3", hidden: 128, layers: 5, heads: 4, kvHeads: 2, headDim: 32, intermediate: 256, vocab: 4096, seed: 15, dtype: "BF16" },
  // Fused qkv/gate_up (one MatMul + Split), LongRoPE short factors with the attention factor; Phi-4-mini adds partial rotary and GQA.
  "phi3.5": { modelType: "phi3.5", hidden: 128, layers: 2, heads: 4, kvHeads: 4, headDim: 32, intermediate: 256, vocab: 4096, seed: 18, dtype: "BF16" },
  "phi4-mini": { modelType: "phi4-mini", hidden: 128, layers: 2, heads: 4, kvHeads: 2, headDim: 32, intermediate: 256, vocab: 4096, seed: 16, dtype: "BF16" },
  // Seven layers: the sixth global, the others sliding over a 16-token window the prompts exceed.
  gemma3: { modelType: "gemma3", hidden: 128, layers: 7, heads: 4, kvHeads: 2, headDim: 32, intermediate: 256, vocab: 4096, seed: 15, dtype: "BF16" },
};

const root = tempDir("edgequant-onnx-synthetic-");

/** A synthetic checkpoint folder (written once per test process). */
export function syntheticModel(name: keyof typeof SPECS): string {
  const dir = join(root, name);
  if (!existsSync(join(dir, "config.json"))) writeSyntheticCheckpoint(dir, SPECS[name]!);
  return dir;
}

export const SYNTHETIC_MODELS = Object.keys(SPECS) as (keyof typeof SPECS)[];

/** Removes the temporary folders this module made (call from afterAll, after disposeLlamaCpp). */
export function removeOnnxFixtures(): void {
  rmSync(root, { recursive: true, force: true });
  rmSync(vocabDir, { recursive: true, force: true });
  vocabGguf = undefined;
}
