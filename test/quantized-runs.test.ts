import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { convertToGguf } from "../src/convert/gguf.js";
import { resolveScheme } from "../src/quant/schemes.js";
import { CORPUS, TINY_LLAMA, tempDir } from "./support/cli.js";
import { disposeLlamaCpp, llamaCppGenerate } from "./support/llama-cpp.js";
import { llamaCppPerplexity } from "./support/perplexity.js";

const dir = tempDir();
const corpus = readFileSync(CORPUS, "utf8");
/** 8 windows of the model's full 256-token context: enough to rank the schemes, seconds to run. */
const SLICE = { window: 256, bos: 1, maxWindows: 8 };
const files: Record<string, string> = {};
const perplexity: Record<string, number> = {};

beforeAll(async () => {
  for (const scheme of ["f16", "q8_0", "q4_k_m", "tq2_0"]) {
    files[scheme] = join(dir, `tiny-llama-${scheme}.gguf`);
    // TQ2_0 of this non-ternary model is lossy by design: it shows llama.cpp runs the type, not a good model.
    await convertToGguf({ source: TINY_LLAMA, output: files[scheme]!, scheme: resolveScheme({ scheme }), allowLossyTernary: true });
  }
});
afterAll(async () => {
  await disposeLlamaCpp();
  rmSync(dir, { recursive: true, force: true });
});

describe("llama.cpp loads what we quantize and generates text", () => {
  for (const scheme of ["q8_0", "q4_k_m", "tq2_0"]) {
    it(`${scheme}: 24 greedy tokens of text`, async () => {
      const text = await llamaCppGenerate(files[scheme]!, "Release History\n\n  2022-12-28 (3.40.1)\n\n", 24);
      console.log(`${scheme} continues: ${JSON.stringify(text)}`);
      expect(text.trim().length).toBeGreaterThan(0);
    });
  }
});

describe("perplexity on held-out text ranks the schemes as their bit widths predict", () => {
  it("Q8_0 within 2% of F16, Q4_K_M within 25%; TQ2_0 of a non-ternary model finite but worse than Q4_K_M", async () => {
    for (const scheme of ["f16", "q8_0", "q4_k_m", "tq2_0"]) {
      const result = await llamaCppPerplexity(files[scheme]!, corpus, SLICE);
      perplexity[scheme] = result.perplexity;
      console.log(`${scheme}: perplexity ${result.perplexity.toFixed(3)} over ${result.scoredTokens} tokens (${result.windows} windows of ${SLICE.window})`);
    }
    expect(perplexity["q8_0"]! / perplexity["f16"]!).toBeLessThan(1.02);
    expect(perplexity["q4_k_m"]! / perplexity["f16"]!).toBeLessThan(1.25);
    expect(Number.isFinite(perplexity["tq2_0"]!)).toBe(true);
    expect(perplexity["tq2_0"]!).toBeGreaterThan(perplexity["q4_k_m"]!);
  });
});
