// Perplexity the way llama-perplexity measures it: the text is cut into windows of `window`
// tokens, each starting with BOS, and only the second half of each window is scored, so every
// scored token has at least half a window of context. One loop for every runtime we measure.

import { llamaCppLogits, llamaCppTokenize } from "./llama-cpp.js";
import { logSoftmax } from "./logit-metrics.js";

export interface PerplexityResult {
  readonly perplexity: number;
  readonly scoredTokens: number;
  readonly windows: number;
}

export interface PerplexityWindows {
  readonly window: number;
  readonly bos: number;
  readonly maxWindows?: number;
}

/** Perplexity of `tokens` under a runtime that returns logits at every position of an input. */
export async function windowedPerplexity(
  tokens: readonly number[],
  options: PerplexityWindows,
  logitsOf: (input: number[]) => Promise<ArrayLike<number>[]>,
): Promise<PerplexityResult> {
  const body = options.window - 1;
  const windows = Math.min(Math.floor(tokens.length / body), options.maxWindows ?? Infinity);
  let nll = 0;
  let scored = 0;
  for (let w = 0; w < windows; w++) {
    const input = [options.bos, ...tokens.slice(w * body, (w + 1) * body)];
    const logits = await logitsOf(input);
    for (let t = Math.floor(options.window / 2); t + 1 < input.length; t++) {
      nll -= logSoftmax(logits[t]!)[input[t + 1]!]!;
      scored++;
    }
  }
  return { perplexity: Math.exp(nll / scored), scoredTokens: scored, windows };
}

/** llama.cpp's perplexity on a GGUF, with llama.cpp's own tokenization of `text`. */
export async function llamaCppPerplexity(gguf: string, text: string, options: PerplexityWindows): Promise<PerplexityResult> {
  return windowedPerplexity(await llamaCppTokenize(gguf, text), options, (input) => llamaCppLogits(gguf, input));
}
