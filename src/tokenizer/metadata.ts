// Vocabulary -> GGUF tokenizer.* keys, in the order and with the value types llama.cpp's
// gguf writer uses (llama.cpp rejects e.g. token ids stored as i32 instead of u32).

import { bool, f32s, i32s, str, strings, u32, type GgufValue } from "../writers/gguf/metadata.js";
import type { AddedSpecialRole, ChatTemplate, SpecialTokenRole, Vocabulary } from "./vocabulary.js";

/** gguf-py's key names; "seperator" is spelled as llama.cpp spells it. */
const SPECIAL_TOKEN_KEYS: Record<SpecialTokenRole, string> = {
  bos: "tokenizer.ggml.bos_token_id",
  eos: "tokenizer.ggml.eos_token_id",
  unk: "tokenizer.ggml.unknown_token_id",
  sep: "tokenizer.ggml.seperator_token_id",
  pad: "tokenizer.ggml.padding_token_id",
  mask: "tokenizer.ggml.mask_token_id",
  eot: "tokenizer.ggml.eot_token_id",
  eom: "tokenizer.ggml.eom_token_id",
};

const ADD_SPECIAL_KEYS: Record<AddedSpecialRole, string> = {
  bos: "tokenizer.ggml.add_bos_token",
  eos: "tokenizer.ggml.add_eos_token",
  sep: "tokenizer.ggml.add_sep_token",
};

export function vocabularyMetadata(vocab: Vocabulary): Map<string, GgufValue> {
  const metadata = new Map<string, GgufValue>();
  metadata.set("tokenizer.ggml.model", str(vocab.model));
  // SentencePiece vocabularies have no pre-tokenizer; llama.cpp's converter writes "default".
  metadata.set("tokenizer.ggml.pre", str(vocab.model === "gpt2" ? vocab.pre.name : "default"));
  metadata.set("tokenizer.ggml.tokens", strings(vocab.tokens));
  if (vocab.model === "llama") metadata.set("tokenizer.ggml.scores", f32s(vocab.scores));
  metadata.set("tokenizer.ggml.token_type", i32s(vocab.tokenTypes));
  if (vocab.model === "gpt2") metadata.set("tokenizer.ggml.merges", strings(vocab.merges));
  for (const [role, key] of Object.entries(SPECIAL_TOKEN_KEYS) as [SpecialTokenRole, string][]) {
    const id = vocab.specialTokenIds[role];
    if (id !== undefined) metadata.set(key, u32(id));
  }
  for (const [role, key] of Object.entries(ADD_SPECIAL_KEYS) as [AddedSpecialRole, string][]) {
    const add = vocab.addSpecialTokens[role];
    if (add !== undefined) metadata.set(key, bool(add));
  }
  if (vocab.addSpacePrefix !== undefined) metadata.set("tokenizer.ggml.add_space_prefix", bool(vocab.addSpacePrefix));
  if (vocab.chatTemplate !== undefined) for (const [key, value] of chatTemplateEntries(vocab.chatTemplate)) metadata.set(key, value);
  if (vocab.normalizer.lowercase !== undefined) metadata.set("tokenizer.ggml.normalizer.lowercase", bool(vocab.normalizer.lowercase));
  if (vocab.normalizer.stripAccents !== undefined) metadata.set("tokenizer.ggml.normalizer.strip_accents", bool(vocab.normalizer.stripAccents));
  return metadata;
}

/**
 * A single template is tokenizer.chat_template. Named templates: "default" is
 * tokenizer.chat_template, every other one tokenizer.chat_template.<name>, and their names are
 * listed in tokenizer.chat_templates (names reduced to [A-Za-z0-9_], as llama.cpp's writer does).
 */
function chatTemplateEntries(template: ChatTemplate): [string, GgufValue][] {
  if (typeof template === "string") return [["tokenizer.chat_template", str(template)]];
  const entries: [string, GgufValue][] = [];
  const names = new Set<string>();
  let fallback: string | undefined;
  for (const { name, template: text } of template) {
    const key = name.replace(/[^A-Za-z0-9]/g, "_");
    if (key === "") continue;
    if (key === "default") fallback = text;
    else {
      names.add(key);
      entries.push([`tokenizer.chat_template.${key}`, str(text)]);
    }
  }
  if (names.size > 0) entries.push(["tokenizer.chat_templates", strings([...names])]);
  if (fallback !== undefined) entries.push(["tokenizer.chat_template", str(fallback)]);
  return entries;
}
