// tokenizer.model -> GGUF "llama" vocabulary, following llama.cpp's _create_vocab_sentencepiece.

import { join } from "node:path";
import { isObject, type ModelFiles } from "./model-files.js";
import { parseSentencePieceModel, type SentencePieceType } from "./sentencepiece-model.js";
import { readSpecialTokenSettings } from "./special-tokens.js";
import { looksSpecial, paddingToken, userDefinedTokenText } from "./token-classes.js";
import { TokenType, type SentencePieceVocabulary } from "./vocabulary.js";

/** Ids the embedding has but the tokenizer does not define; llama.cpp's filler score. */
const PADDING_SCORE = -10000;
/** llama.cpp's score for added tokens; they are matched whole before SentencePiece runs. */
const ADDED_TOKEN_SCORE = -1000;

/** USER_DEFINED pieces stay NORMAL: llama.cpp's converter only asks SentencePiece about these four. */
const GGUF_TYPE: Record<SentencePieceType, TokenType> = {
  NORMAL: TokenType.NORMAL,
  USER_DEFINED: TokenType.NORMAL,
  UNKNOWN: TokenType.UNKNOWN,
  CONTROL: TokenType.CONTROL,
  UNUSED: TokenType.UNUSED,
  BYTE: TokenType.BYTE,
};

export function sentencePieceVocabulary(files: ModelFiles & { tokenizerModel: Uint8Array }, vocabSizeFromConfig: number | undefined): SentencePieceVocabulary {
  const model = parseSentencePieceModel(files.tokenizerModel, join(files.directory, "tokenizer.model"));
  const vocabSize = vocabSizeFromConfig ?? model.pieces.length;
  const warnings: string[] = [];
  if (model.modelType !== "BPE") {
    warnings.push(`tokenizer.model is a SentencePiece ${model.modelType} model; llama.cpp tokenizes it by merging the highest-scoring pieces, as for BPE, so some texts may tokenize differently`);
  }

  const tokens = Array.from({ length: vocabSize }, (_, id) => paddingToken(id));
  const scores = new Array<number>(vocabSize).fill(PADDING_SCORE);
  const tokenTypes = new Array<TokenType>(vocabSize).fill(TokenType.UNUSED);
  const outOfRange = (what: string, id: number) => warnings.push(`${what} ${id} ignored: the model's vocabulary has ${vocabSize} tokens`);

  for (const [id, { piece, score, type }] of model.pieces.entries()) {
    if (id >= vocabSize) {
      outOfRange("tokenizer.model pieces from", id);
      break;
    }
    tokens[id] = piece;
    scores[id] = score;
    tokenTypes[id] = GGUF_TYPE[type];
  }

  for (const [text, id] of Object.entries(files.addedTokens ?? {})) {
    if (id >= vocabSize) {
      outOfRange("added_tokens.json token", id);
      continue;
    }
    tokens[id] = text;
    scores[id] = ADDED_TOKEN_SCORE;
    tokenTypes[id] = TokenType.USER_DEFINED;
  }

  const addToken = (id: number, content: string, special: boolean, source: string) => {
    if (id >= vocabSize) {
      outOfRange(`${source} added token`, id);
      return;
    }
    const control = special || looksSpecial(content);
    tokens[id] = control ? content : userDefinedTokenText(content);
    scores[id] = ADDED_TOKEN_SCORE;
    tokenTypes[id] = control ? TokenType.CONTROL : TokenType.USER_DEFINED;
  };
  // Not read by llama.cpp's converter, but older folders list tokens beyond the model only here.
  for (const { id, content, special } of files.tokenizerJson?.value.added_tokens ?? []) {
    if (id >= model.pieces.length) addToken(id, content, special === true, "tokenizer.json");
  }
  // tokenizer_config.json's added_tokens_decoder has the final say on added tokens' kind.
  const decoder = files.tokenizerConfig?.["added_tokens_decoder"];
  for (const [key, entry] of Object.entries(isObject(decoder) ? decoder : {})) {
    const id = Number(key);
    const content = isObject(entry) ? entry["content"] : undefined;
    if (Number.isInteger(id) && id >= 0 && typeof content === "string") addToken(id, content, isObject(entry) && entry["special"] === true, "tokenizer_config.json");
  }

  const settings = readSpecialTokenSettings(files, tokens, tokens.length);
  const addPrefixSpace = files.tokenizerConfig?.["add_prefix_space"];
  return {
    model: "llama",
    source: "tokenizer.model",
    tokens,
    scores,
    tokenTypes,
    specialTokenIds: settings.specialTokenIds,
    addSpecialTokens: settings.addSpecialTokens,
    addSpacePrefix: typeof addPrefixSpace === "boolean" ? addPrefixSpace : model.addDummyPrefix,
    ...(settings.chatTemplate === undefined ? {} : { chatTemplate: settings.chatTemplate }),
    normalizer: settings.normalizer,
    warnings: [...warnings, ...settings.warnings],
  };
}
