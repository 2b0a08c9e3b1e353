import { unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { readVocabulary } from "../../../src/tokenizer/index.js";
import type { FuzzTarget } from "../target.js";
import { linkMicroModel } from "./base.js";
import { anyJson, applyMutations, mutations } from "./values.js";

/** GPT-2's byte -> printable character table, so the base vocabulary is a real byte-level one. */
function byteLevelAlphabet(): string[] {
  const printable = [...Array(256).keys()].filter((b) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255));
  let extra = 0;
  return [...Array(256).keys()].map((b) => String.fromCodePoint(printable.includes(b) ? b : 256 + extra++));
}

/** A small valid byte-level BPE tokenizer.json (256 bytes, a few merges, two special tokens). */
export function baseTokenizer(): Record<string, unknown> {
  const alphabet = byteLevelAlphabet();
  const vocab: Record<string, number> = Object.fromEntries(alphabet.map((c, i) => [c, i]));
  const merges = [["h", "e"], ["l", "l"], ["he", "ll"], ["Ġ", "t"]];
  for (const [a, b] of merges) vocab[a! + b!] = Object.keys(vocab).length;
  const size = Object.keys(vocab).length;
  return {
    version: "1.0",
    added_tokens: [
      { id: size, content: "<|begin|>", single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
      { id: size + 1, content: "<|end|>", single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
    ],
    normalizer: null,
    post_processor: null,
    pre_tokenizer: {
      type: "Sequence",
      pretokenizers: [
        { type: "Split", pattern: { Regex: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+" }, behavior: "Isolated", invert: false },
        { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges: merges.map(([a, b]) => `${a} ${b}`) },
  };
}

const BASE_CONFIG = { bos_token: "<|begin|>", eos_token: "<|end|>", chat_template: "{% for m in messages %}{{ m['content'] }}{% endfor %}", added_tokens_decoder: {} };

/** Regexes that backtrack catastrophically or that JavaScript and Oniguruma read differently. */
const HOSTILE_PATTERNS = ["(.*.*)*X", "(a|a)*$", "((a+)+)+b", "(?<!\\s)x", "\\G", "[[:alpha:]]", "(?i)x", "\\p{Zzzz}", "("];

interface TokenizerCase {
  readonly tokenizer: unknown;
  readonly config: unknown;
}

export const tokenizerTarget: FuzzTarget<TokenizerCase> = {
  name: "tokenizer",
  description: "tokenizer.json and tokenizer_config.json with nodes replaced, hostile split regexes, huge and duplicate ids",
  input: fc.record({
    tokenizer: fc.oneof(
      { weight: 5, arbitrary: mutations(3).map((edits) => applyMutations(baseTokenizer(), edits)) },
      { weight: 2, arbitrary: fc.constantFrom(...HOSTILE_PATTERNS).map(withSplit) },
      { weight: 1, arbitrary: anyJson },
    ),
    config: fc.oneof({ weight: 3, arbitrary: fc.constant(BASE_CONFIG) }, { weight: 3, arbitrary: mutations(2).map((edits) => applyMutations(BASE_CONFIG, edits)) }, { weight: 1, arbitrary: anyJson }),
  }),
  async run(input, scratch) {
    linkMicroModel(scratch, ["tokenizer_config.json"]);
    unlinkSync(join(scratch, "tokenizer.model"));
    writeFileSync(join(scratch, "tokenizer.json"), JSON.stringify(input.tokenizer) ?? "");
    writeFileSync(join(scratch, "tokenizer_config.json"), JSON.stringify(input.config) ?? "");
    await readVocabulary(scratch, 300);
  },
};

function withSplit(pattern: string): unknown {
  const tokenizer = baseTokenizer();
  const pre = tokenizer["pre_tokenizer"] as { pretokenizers: { pattern?: { Regex: string } }[] };
  pre.pretokenizers[0]!.pattern = { Regex: pattern };
  return tokenizer;
}
