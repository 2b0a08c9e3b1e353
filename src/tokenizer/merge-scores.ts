// llama.cpp's SentencePiece tokenizer repeatedly merges the adjacent pair whose concatenation is
// the highest-scoring token; a Hugging Face BPE tokenizer merges the pair with the lowest merge
// rank. Scores derived from merge order make the first behave like the second, for vocabularies
// that came from SentencePiece (every split of a token into two tokens is a merge, ranked together).

import type { MergePair } from "./merges.js";

/**
 * A score for every token: tokens produced by a merge get -1, -2, ... in the order of their first
 * merge; the others (single characters, and tokens no merge builds) get lower scores still, in id
 * order, so that llama.cpp only reaches them after every merge BPE would have made.
 */
export function mergeOrderScores(tokens: readonly string[], merges: readonly MergePair[]): number[] {
  const idOf = new Map<string, number>();
  tokens.forEach((token, id) => {
    if (!idOf.has(token)) idOf.set(token, id);
  });
  const scores = new Array<number>(tokens.length).fill(Number.NaN);
  let next = -1;
  for (const [left, right] of merges) {
    const id = idOf.get(left + right);
    if (id !== undefined && Number.isNaN(scores[id])) scores[id] = next--;
  }
  return scores.map((score) => (Number.isNaN(score) ? next-- : score));
}
