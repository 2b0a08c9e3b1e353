// A tokenizer.json that is a SentencePiece model in BPE clothing (Llama 2 / Mistral style: BPE with
// byte fallback, spaces written as "▁") -> GGUF "llama" vocabulary.
//
// llama.cpp's own converter (LlamaHfVocab) gives every token the score -1000 here, which leaves its
// score-driven tokenizer merging leftmost-first instead of in merge order. We derive scores from the
// merge ranks instead (see merge-scores.ts) so that llama.cpp tokenizes like the original.

import { join } from "node:path";
import { UserError } from "../errors.js";
import { mergeOrderScores } from "./merge-scores.js";
import { mergePairs } from "./merges.js";
import { isObject, type JsonComponent, type ModelFiles, type TokenizerJson } from "./model-files.js";
import { readSpecialTokenSettings } from "./special-tokens.js";
import { isByteToken, looksSpecial, paddingToken, userDefinedTokenText } from "./token-classes.js";
import { TokenType, type SentencePieceVocabulary } from "./vocabulary.js";

const PADDING_SCORE = -10000;
/** llama.cpp's score for added tokens; they are matched whole before SentencePiece runs. */
const ADDED_TOKEN_SCORE = -1000;
/** SentencePiece's score for byte pieces, which are never merged. */
const UNMERGED_SCORE = 0;

export function sentencePieceVocabularyFromJson(files: ModelFiles & { tokenizerJson: { value: TokenizerJson } }, vocabSizeFromConfig: number | undefined): SentencePieceVocabulary {
  const file = join(files.directory, "tokenizer.json");
  const json = files.tokenizerJson.value;
  const prefixFromJson = sentencePieceSpacePrefix(json, file);

  const base: string[] = [];
  for (const [token, id] of Object.entries(json.model.vocab ?? {})) {
    if (!Number.isInteger(id) || id < 0) throw new UserError(`vocab token ${JSON.stringify(token)} has id ${id}`, { file });
    base[id] = token;
  }
  const added = json.added_tokens ?? [];
  const size = added.reduce((max, { id }) => Math.max(max, id + 1), base.length);
  const vocabSize = vocabSizeFromConfig ?? size;
  const warnings = size > vocabSize ? [`tokenizer.json ids from ${vocabSize} ignored: the model's vocabulary has ${vocabSize} tokens`] : [];

  const tokens = Array.from({ length: vocabSize }, (_, id) => paddingToken(id));
  const scores = new Array<number>(vocabSize).fill(PADDING_SCORE);
  const tokenTypes = new Array<TokenType>(vocabSize).fill(TokenType.UNUSED);

  const mergeScores = mergeOrderScores(base, mergePairs(json.model.merges ?? [], file));
  base.forEach((token, id) => {
    if (id >= vocabSize) return;
    const byte = isByteToken(token);
    tokens[id] = token;
    scores[id] = byte ? UNMERGED_SCORE : mergeScores[id]!;
    tokenTypes[id] = byte ? TokenType.BYTE : TokenType.NORMAL;
  });
  for (const { id, content, special } of added) {
    if (id >= vocabSize) continue;
    const control = special === true || looksSpecial(content);
    tokens[id] = control ? content : userDefinedTokenText(content);
    scores[id] = ADDED_TOKEN_SCORE;
    tokenTypes[id] = control ? TokenType.CONTROL : TokenType.USER_DEFINED;
  }

  const settings = readSpecialTokenSettings(files, tokens, tokens.length);
  const addPrefixSpace = files.tokenizerConfig?.["add_prefix_space"];
  return {
    model: "llama",
    source: "tokenizer.json",
    tokens,
    scores,
    tokenTypes,
    specialTokenIds: settings.specialTokenIds,
    addSpecialTokens: settings.addSpecialTokens,
    addSpacePrefix: typeof addPrefixSpace === "boolean" ? addPrefixSpace : prefixFromJson,
    ...(settings.chatTemplate === undefined ? {} : { chatTemplate: settings.chatTemplate }),
    normalizer: settings.normalizer,
    warnings: [...warnings, ...settings.warnings],
  };
}

/**
 * Checks that the tokenizer does only what llama.cpp's SentencePiece tokenizer does (spaces become
 * "▁", optionally one "▁" in front, no word splitting) and says whether it adds that "▁" in front.
 */
function sentencePieceSpacePrefix(json: TokenizerJson, file: string): boolean {
  const unsupported = (what: string) =>
    new UserError(`a BPE tokenizer with byte fallback, but ${what}: llama.cpp's SentencePiece tokenizer cannot reproduce it`, { file });
  let spacesEscaped = false;
  let prefix = false;

  const normalizers = componentsOf(json.normalizer, "normalizers");
  for (const node of normalizers) {
    if (node.type === "Prepend" && node["prepend"] === "▁") prefix = true;
    else if (node.type === "Replace" && isObject(node["pattern"]) && node["pattern"]["String"] === " " && node["content"] === "▁") spacesEscaped = true;
    else throw unsupported(`its normalizer has ${JSON.stringify(node)}`);
  }
  for (const node of componentsOf(json.pre_tokenizer, "pretokenizers")) {
    // Gemma's split at " " finds none: the normalizer has already written every space as "▁".
    if (node.type === "Split" && spacesEscaped && isObject(node["pattern"]) && node["pattern"]["String"] === " ") continue;
    if (node.type !== "Metaspace" || node["replacement"] !== "▁") throw unsupported(`its pre-tokenizer has ${JSON.stringify(node)}`);
    spacesEscaped = true;
    const scheme = node["prepend_scheme"];
    prefix ||= scheme === "always" || scheme === "first" || (scheme === undefined && node["add_prefix_space"] === true);
  }
  if (!spacesEscaped) throw unsupported("it does not write spaces as \"▁\"");
  return prefix;
}

/** A normalizer or pre-tokenizer as a flat list, looking through Sequence nodes. */
function componentsOf(node: JsonComponent | null | undefined, listKey: string): JsonComponent[] {
  if (!node) return [];
  if (node.type !== "Sequence") return [node];
  const list = node[listKey];
  return (Array.isArray(list) ? list : []).filter(isObject).flatMap((child) => componentsOf(child, listKey));
}
