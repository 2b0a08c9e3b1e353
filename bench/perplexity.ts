/**
 * Perplexity of the bundled tiny Llama on the whole held-out corpus under llama.cpp, per scheme
 * (a script, not a test: it takes minutes). Windows of the model's full 256-token context, second
 * half of each scored, as llama-perplexity does.
 *
 *   node --import tsx bench/perplexity.ts [model folder] [scheme ...]
 */
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { convertToGguf } from "../src/convert/gguf.js";
import { resolveScheme } from "../src/quant/schemes.js";
import { CORPUS, TINY_LLAMA, tempDir } from "../test/support/cli.js";
import { disposeLlamaCpp } from "../test/support/llama-cpp.js";
import { llamaCppPerplexity } from "../test/support/perplexity.js";

const [model = TINY_LLAMA, ...requested] = process.argv.slice(2);
const schemes = requested.length > 0 ? requested : ["f16", "q8_0", "q4_k_m", "tq2_0"];
const corpus = readFileSync(CORPUS, "utf8");
const dir = tempDir();
const results: Record<string, string> = {};
for (const scheme of schemes) {
  const file = join(dir, `${scheme}.gguf`);
  // TQ types on a normally trained model are lossy on purpose here: the point is to measure it.
  await convertToGguf({ source: model, output: file, scheme: resolveScheme({ scheme }), allowLossyTernary: true });
  const result = await llamaCppPerplexity(file, corpus, { window: 256, bos: 1 });
  results[scheme] = `${result.perplexity.toFixed(4)} (${result.scoredTokens} tokens, ${result.windows} windows)`;
  console.log(`${scheme.padEnd(7)} perplexity ${results[scheme]}`);
}
await disposeLlamaCpp();
rmSync(dir, { recursive: true, force: true });
