import { GGUFValueType, parseGgufShardFilename } from "@huggingface/gguf";
import { UserError } from "../../errors.js";
import { i32, type GgufMetadata, type GgufValue } from "./metadata.js";
import { DEFAULT_ALIGNMENT } from "./writer.js";

/**
 * GGUF splits as llama.cpp's gguf-split writes and llama.cpp loads them:
 * `<prefix>-00001-of-00003.gguf`, all metadata in the first file, and in
 * every file `split.no`, `split.count` and `split.tensors.count`.
 */

/** How to cut a model into files: at most `maxBytes` of tensor data per file (gguf-split's rule), or `count` balanced files. */
export type SplitRule = { readonly maxBytes: number } | { readonly count: number };

/** The split index of each tensor, in order; tensors stay in file order so every split is a contiguous slice. */
export function assignSplits(tensorBytes: readonly number[], rule: SplitRule): number[] {
  const padded = tensorBytes.map((bytes) => Math.ceil(bytes / DEFAULT_ALIGNMENT) * DEFAULT_ALIGNMENT);
  const assignment: number[] = [];
  if ("maxBytes" in rule) {
    let split = 0;
    let used = 0;
    for (const [i, bytes] of padded.entries()) {
      // As gguf-split: a tensor that would overflow the current file starts the next one (never an empty file).
      if (i > 0 && used + bytes > rule.maxBytes) {
        split++;
        used = 0;
      }
      used += bytes;
      assignment.push(split);
    }
    return assignment;
  }
  // Balanced: a tensor goes to the part its middle byte falls in, as if the bytes were cut into `count` equal ranges.
  const total = padded.reduce((a, b) => a + b, 0);
  let before = 0;
  for (const bytes of padded) {
    assignment.push(Math.min(rule.count - 1, Math.floor(((before + bytes / 2) * rule.count) / total)));
    before += bytes;
  }
  // One dominant tensor can leave a part empty; such a layout cannot give N jobs a file each.
  if (new Set(assignment).size !== rule.count) throw new UserError(`the model's tensors cannot be spread over ${rule.count} non-empty parts; use fewer parts`);
  return assignment;
}

export function splitCount(assignment: readonly number[]): number {
  return (assignment.at(-1) ?? 0) + 1;
}

/** llama.cpp's llama_split_path: `<prefix>-%05d-of-%05d.gguf`, counting from 1. */
export function splitPath(output: string, index: number, count: number): string {
  const prefix = output.endsWith(".gguf") ? output.slice(0, -".gguf".length) : output;
  return `${prefix}-${String(index + 1).padStart(5, "0")}-of-${String(count).padStart(5, "0")}.gguf`;
}

/** A path in splitPath's form, read back with @huggingface/gguf's parser: the prefix, which split (from 0) and how many; undefined for any other name. */
export function parseSplitPath(path: string): { readonly prefix: string; readonly index: number; readonly count: number } | undefined {
  const parsed = parseGgufShardFilename(path);
  return parsed ? { prefix: parsed.prefix, index: Number(parsed.shard) - 1, count: Number(parsed.total) } : undefined;
}

/** The first split carries the model's metadata; every split carries the split keys. */
export function splitMetadata(metadata: GgufMetadata, index: number, count: number, totalTensors: number): GgufMetadata {
  const u16 = (value: number): GgufValue => ({ type: GGUFValueType.UINT16, value });
  return new Map([
    ...(index === 0 ? metadata : []),
    ["split.no", u16(index)],
    ["split.count", u16(count)],
    ["split.tensors.count", i32(totalTensors)],
  ]);
}
