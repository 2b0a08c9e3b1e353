// The shape of tokenizer.json and tokenizer_config.json / special_tokens_map.json, checked before
// any of them is used: the vocabulary, merges, added and special tokens that edgequant reads, and
// the components transformers' tokenizer is built from. A file that breaks it is refused with the
// JSON path of the first problem.

import { UserError } from "../errors.js";

/** Token ids are int32 in GGUF and llama.cpp. */
const MAX_TOKEN_ID = 2 ** 31 - 1;

type Json = unknown;

function describe(value: Json): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 60)}...` : text;
}

class ShapeChecker {
  constructor(private readonly file: string) {}

  fail(path: string, expected: string, value: Json): never {
    throw new UserError(`${path} must be ${expected}, got ${describe(value)}`, { file: this.file });
  }

  object(value: Json, path: string): Record<string, Json> {
    if (typeof value !== "object" || value === null || Array.isArray(value)) this.fail(path, "an object", value);
    return value as Record<string, Json>;
  }

  array(value: Json, path: string): Json[] {
    if (!Array.isArray(value)) this.fail(path, "a list", value);
    return value;
  }

  optional(value: Json, path: string, check: (value: Json, path: string) => void): void {
    if (value !== undefined && value !== null) check(value, path);
  }

  tokenId(value: Json, path: string): void {
    if (!Number.isSafeInteger(value) || (value as number) < 0 || (value as number) > MAX_TOKEN_ID) this.fail(path, `a token id (an integer from 0 to ${MAX_TOKEN_ID})`, value);
  }

  string(value: Json, path: string): void {
    if (typeof value !== "string") this.fail(path, "a string", value);
  }

  boolean(value: Json, path: string): void {
    if (typeof value !== "boolean") this.fail(path, "true or false", value);
  }

  /** A normalizer, pre-tokenizer, post-processor or decoder, and the components nested in a Sequence. */
  component(value: Json, path: string, depth = 0): void {
    const node = this.object(value, path);
    this.string(node["type"], `${path}.type`);
    if (depth > 16) this.fail(path, "nested at most 16 deep", "...");
    for (const key of ["normalizers", "pretokenizers", "processors", "decoders"]) {
      if (node[key] === undefined) continue;
      this.array(node[key], `${path}.${key}`).forEach((child, i) => this.component(child, `${path}.${key}[${i}]`, depth + 1));
    }
    if (node["pattern"] !== undefined) {
      const pattern = this.object(node["pattern"], `${path}.pattern`);
      for (const [kind, text] of Object.entries(pattern)) this.string(text, `${path}.pattern.${kind}`);
    }
  }
}

/** Checks the parts of a parsed tokenizer.json that edgequant or the reference tokenizer read. */
export function checkTokenizerJsonShape(value: Json, file: string): void {
  const check = new ShapeChecker(file);
  const root = check.object(value, "tokenizer.json");
  const model = check.object(root["model"], "model");
  check.optional(model["type"], "model.type", (v, p) => check.string(v, p));
  for (const flag of ["byte_fallback", "ignore_merges", "fuse_unk"]) check.optional(model[flag], `model.${flag}`, (v, p) => check.boolean(v, p));
  check.optional(model["vocab"], "model.vocab", (vocab, path) => {
    // BPE and WordPiece: token -> id; Unigram: [piece, score] pairs.
    if (Array.isArray(vocab)) {
      vocab.forEach((entry, i) => {
        const pair = check.array(entry, `${path}[${i}]`);
        check.string(pair[0], `${path}[${i}][0]`);
        if (typeof pair[1] !== "number") check.fail(`${path}[${i}][1]`, "a score", pair[1]);
      });
    } else for (const [token, id] of Object.entries(check.object(vocab, path))) check.tokenId(id, `${path}[${JSON.stringify(token)}]`);
  });
  check.optional(model["merges"], "model.merges", (merges, path) =>
    check.array(merges, path).forEach((merge, i) => {
      if (typeof merge === "string") return;
      const pair = check.array(merge, `${path}[${i}]`);
      if (pair.length !== 2) check.fail(`${path}[${i}]`, "a string or a pair of strings", merge);
      pair.forEach((part, j) => check.string(part, `${path}[${i}][${j}]`));
    }),
  );
  check.optional(root["added_tokens"], "added_tokens", (tokens, path) =>
    check.array(tokens, path).forEach((token, i) => {
      const entry = check.object(token, `${path}[${i}]`);
      check.tokenId(entry["id"], `${path}[${i}].id`);
      check.string(entry["content"], `${path}[${i}].content`);
      for (const flag of ["special", "normalized", "lstrip", "rstrip", "single_word"]) check.optional(entry[flag], `${path}[${i}].${flag}`, (v, p) => check.boolean(v, p));
    }),
  );
  for (const key of ["normalizer", "pre_tokenizer", "post_processor", "decoder"]) check.optional(root[key], key, (v, p) => check.component(v, p));
}

/** The special-token names tokenizer_config.json and special_tokens_map.json may give. */
const SPECIAL_TOKEN_KEYS = ["bos", "eos", "unk", "sep", "pad", "cls", "mask", "eot", "eom"].map((role) => `${role}_token`);

/**
 * Checks what edgequant reads of tokenizer_config.json or special_tokens_map.json: each special
 * token is a name or an AddedToken object with a string content (anything else would name no
 * token, or a garbage one), the add_*_token flags are booleans, and added_tokens_decoder maps
 * token ids to AddedToken objects.
 */
export function checkTokenizerConfigShape(value: Record<string, Json>, file: string): void {
  const check = new ShapeChecker(file);
  const addedToken = (token: Json, path: string) => {
    const entry = check.object(token, path);
    check.string(entry["content"], `${path}.content`);
    check.optional(entry["special"], `${path}.special`, (v, p) => check.boolean(v, p));
  };
  for (const key of SPECIAL_TOKEN_KEYS) {
    check.optional(value[key], key, (token, path) => {
      if (typeof token !== "string") addedToken(token, path);
    });
    const flag = `add_${key}`;
    check.optional(value[flag], flag, (v, p) => check.boolean(v, p));
  }
  check.optional(value["added_tokens_decoder"], "added_tokens_decoder", (decoder, path) => {
    for (const [id, token] of Object.entries(check.object(decoder, path))) {
      if (!/^\d{1,10}$/.test(id)) check.fail(`${path} key`, "a token id", id);
      check.tokenId(Number(id), `${path}[${JSON.stringify(id)}]`);
      addedToken(token, `${path}[${JSON.stringify(id)}]`);
    }
  });
}
