// Tokenizer files from strangers: tokenizer.json, tokenizer_config.json and special_tokens_map.json
// are checked against their shape before use, token ids are bounded by the vocabulary, special
// tokens must name a string, and a file's regex never runs unless llama.cpp implements it. Each is
// refused through the CLI with the file and key named, exit 2, and nothing written.
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "vitest";
import { TINY_LLAMA, copyFixture, expectRefused } from "./support/cli.js";
import { baseTokenizer } from "./fuzz/targets/tokenizer.js";
import { setPath } from "./fuzz/targets/values.js";

/** The tiny Llama with a byte-level tokenizer.json in place of its tokenizer.model, edited at `path`. */
function withTokenizerJson(path: readonly (string | number)[], value: unknown): string {
  const dir = copyFixture(TINY_LLAMA);
  rmSync(join(dir, "tokenizer.model"));
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(setPath(baseTokenizer(), path, value)));
  writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify({ bos_token: "<|begin|>", eos_token: "<|end|>" }));
  return dir;
}

/** The tiny Llama (its real tokenizer.model) with one JSON side file replaced. */
function withSideFile(name: string, content: unknown): string {
  const dir = copyFixture(TINY_LLAMA);
  writeFileSync(join(dir, name), JSON.stringify(content));
  return dir;
}

describe("tokenizer.json's structure is checked before use (a wrong type was a TypeError)", () => {
  it.each([
    [["added_tokens"], "x", /tokenizer\.json: added_tokens must be a list, got "x"/],
    [["added_tokens", 0], 7, /tokenizer\.json: added_tokens\[0\] must be an object, got 7/],
    [["model", "vocab", "h"], "one", /tokenizer\.json: model\.vocab\["h"\] must be a token id/],
    [["model", "merges", 0], 12, /tokenizer\.json: model\.merges\[0\] must be a list, got 12/],
    [["pre_tokenizer", "pretokenizers"], {}, /tokenizer\.json: pre_tokenizer\.pretokenizers must be a list/],
  ])("%j = %j", (path, value, message) => {
    expectRefused(withTokenizerJson(path, value), message);
  });
});

describe("token ids are bounded by the vocabulary (2^31 used to hang)", () => {
  it("an added token id of 2^31 is not a token id", () => {
    expectRefused(withTokenizerJson(["added_tokens", 1, "id"], 2 ** 31), /tokenizer\.json: added_tokens\[1\]\.id must be a token id \(an integer from 0 to 2147483647\)/);
  });

  it("an id of 2^30 is beyond config.json's 4096 tokens, refused before anything is sized by it", () => {
    expectRefused(withTokenizerJson(["added_tokens", 1, "id"], 2 ** 30), /tokenizer\.json: the tokenizer has token id 1073741824, but the model's vocabulary has only 4096 tokens/);
  });
});

describe("a special token must name a string (an array was written as a garbage token)", () => {
  it("tokenizer.json: an added token whose content is an array", () => {
    expectRefused(withTokenizerJson(["added_tokens", 1, "content"], ["A", "B"]), /tokenizer\.json: added_tokens\[1\]\.content must be a string, got \["A","B"\]/);
  });

  it("tokenizer_config.json: eos_token whose content is an array", () => {
    const config = { bos_token: "<s>", eos_token: { __type: "AddedToken", content: ["A", "B"] } };
    expectRefused(withSideFile("tokenizer_config.json", config), /tokenizer_config\.json: eos_token\.content must be a string, got \["A","B"\]/);
  });

  it("special_tokens_map.json: bos_token that is a number", () => {
    expectRefused(withSideFile("special_tokens_map.json", { bos_token: 1 }), /special_tokens_map\.json: bos_token must be an object, got 1/);
  });

  it("tokenizer_config.json: an added_tokens_decoder entry without string content", () => {
    expectRefused(withSideFile("tokenizer_config.json", { added_tokens_decoder: { "2": { content: 7 } } }), /tokenizer_config\.json: added_tokens_decoder\["2"\]\.content must be a string, got 7/);
  });

  it("tokenizer_config.json: add_bos_token that is not true or false", () => {
    expectRefused(withSideFile("tokenizer_config.json", { add_bos_token: "yes" }), /tokenizer_config\.json: add_bos_token must be true or false, got "yes"/);
  });
});

describe("a pre-tokenizer regex runs only if llama.cpp implements it (no catastrophic backtracking)", () => {
  it.each([["(.*.*)*X"], ["((a+)+)+b"]])("%s is refused before it runs", (pattern) => {
    expectRefused(withTokenizerJson(["pre_tokenizer", "pretokenizers", 0, "pattern"], { Regex: pattern }), /tokenizer\.json: its pre-tokenizer regex .* is not one llama\.cpp implements/);
  });
});
