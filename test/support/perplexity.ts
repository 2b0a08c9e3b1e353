// Perplexity of a GGUF under llama.cpp, the way llama-perplexity measures it: the text is cut
// into windows of `window` tokens, each starting with BOS, and only the second half of each
// window is scored, so every scored token has at least half a window of context.

import { llamaCppLogits, llamaCppTokenize } from "./llama-cpp.js";
import { logSoftmax } from "./logit-metrics.js";

export interface PerplexityResult {
  readonly perplexity: number;
  readonly scoredTokens: number;
  readonly windows: number;
}

export async function llamaCppPerplexity(gguf: string, text: string, options: { window: number; bos: number; maxWindows?: number }): Promise<PerplexityResult> {
  const tokens = await llamaCppTokenize(gguf, text);
  const body = options.window - 1;
  const windows = Math.min(Math.floor(tokens.length / body), options.maxWindows ?? Infinity);
  let nll = 0;
  let scored = 0;
  for (let w = 0; w < windows; w++) {
    const input = [options.bos, ...tokens.slice(w * body, (w + 1) * body)];
    const logits = await llamaCppLogits(gguf, input);
    for (let t = Math.floor(options.window / 2); t + 1 < input.length; t++) {
      nll -= logSoftmax(logits[t]!)[input[t + 1]!]!;
      scored++;
    }
  }
  return { perplexity: Math.exp(nll / scored), scoredTokens: scored, windows };
}
