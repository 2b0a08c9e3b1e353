// BPE merges as tokenizer.json stores them, and as GGUF's tokenizer.ggml.merges wants them.

import { UserError } from "../errors.js";
import type { TokenizerJson } from "./model-files.js";

export type MergePair = readonly [left: string, right: string];

type JsonMerges = NonNullable<TokenizerJson["model"]["merges"]>;

/** "a b" strings split like llama.cpp does (at the first space after the first character), or [a, b] pairs. */
export function mergePairs(merges: JsonMerges, file: string): MergePair[] {
  return merges.map((merge, rank) => {
    if (typeof merge !== "string") return merge;
    const space = merge.indexOf(" ", 1);
    if (space < 0) throw new UserError(`merge ${rank} ${JSON.stringify(merge)} is not two space-separated parts`, { file });
    return [merge.slice(0, space), merge.slice(space + 1)];
  });
}

/**
 * GGUF stores each merge as one "a b" string, so a space inside a part (possible in the pair
 * format) is written as U+0120, GPT-2's byte character for a space, as llama.cpp's converter does.
 */
export function ggufMerges(merges: JsonMerges): string[] {
  return merges.map((merge) => (typeof merge === "string" ? merge : merge.map((part) => part.replaceAll(" ", "\u0120")).join(" ")));
}
