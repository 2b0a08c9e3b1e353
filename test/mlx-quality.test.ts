// A quick quality check of MLX output (bench/mlx-perplexity.ts has the full figures): the
// dequantized MLX weights, run through the reference forward pass, predict held-out text about
// as well as the source at 8 bits, a little worse at 4, clearly worse at 2.

import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { convertToGguf } from "../src/convert/gguf.js";
import { convertToMlx } from "../src/convert/mlx.js";
import { resolveScheme } from "../src/quant/schemes.js";
import { CORPUS, TINY_LLAMA, tempDir } from "./support/cli.js";
import { disposeLlamaCpp, llamaCppTokenize } from "./support/llama-cpp.js";
import { meanNll } from "./support/logit-metrics.js";
import { dequantizeMlxFolder, readMlxFolder } from "./support/mlx-reference.js";
import { referenceLogits } from "./support/reference-forward.js";
import { writeSafetensors } from "./support/safetensors.js";

const dir = tempDir("edgequant-mlx-quality-");
let tokens: number[] = [];

beforeAll(async () => {
  const gguf = join(dir, "vocab.gguf");
  await convertToGguf({ source: TINY_LLAMA, output: gguf, scheme: resolveScheme({ scheme: "f16" }) });
  const text = readFileSync(CORPUS, "utf8").slice(20_000, 21_000);
  tokens = [1, ...(await llamaCppTokenize(gguf, text)).slice(0, 159)];
});

afterAll(async () => {
  await disposeLlamaCpp();
  rmSync(dir, { recursive: true, force: true });
});

async function nllAt(bits: 2 | 4 | 8): Promise<number> {
  const mlx = join(dir, `mlx-${bits}`);
  await convertToMlx({ source: TINY_LLAMA, output: mlx, bits });
  const hf = join(dir, `hf-${bits}`);
  mkdirSync(hf);
  const config = JSON.parse(readFileSync(join(TINY_LLAMA, "config.json"), "utf8")) as Record<string, unknown>;
  writeFileSync(join(hf, "config.json"), JSON.stringify({ ...config, torch_dtype: "float32" }));
  writeSafetensors(
    join(hf, "model.safetensors"),
    [...dequantizeMlxFolder(readMlxFolder(mlx))].map(([name, t]) => ({ name, shape: t.shape, dtype: "F32" as const, data: t.data })),
  );
  return meanNll(referenceLogits(hf, tokens), tokens);
}

describe("MLX quantization quality on tiny-llama (160 tokens of held-out text)", () => {
  it("8-bit is within 0.5% of the source's NLL, 4-bit within 5%, 2-bit worse than 4-bit", async () => {
    expect(tokens.length).toBe(160);
    const source = meanNll(referenceLogits(TINY_LLAMA, tokens), tokens);
    const [eight, four, two] = [await nllAt(8), await nllAt(4), await nllAt(2)];
    console.log(`[mlx-quality] mean NLL (nats/token): source ${source.toFixed(4)}, 8-bit ${eight.toFixed(4)}, 4-bit ${four.toFixed(4)}, 2-bit ${two.toFixed(4)}`);
    expect(Math.abs(eight - source) / source).toBeLessThan(0.005);
    expect(Math.abs(four - source) / source).toBeLessThan(0.05);
    expect(two).toBeGreaterThan(four);
  });
});
