// A byte-level BPE tokenizer.json (GPT-2, Llama 3, Qwen, ...) -> GGUF "gpt2" vocabulary, following
// llama.cpp's get_vocab_base() and SpecialVocab(load_merges=True).

import { join } from "node:path";
import { UserError } from "../errors.js";
import { ggufMerges } from "./merges.js";
import type { JsonFile, ModelFiles, TokenizerJson } from "./model-files.js";
import { decidePreTokenizer, explainPreTokenizer } from "./pre-tokenizer.js";
import { loadReferenceTokenizer } from "./reference-tokenizer.js";
import { readSpecialTokenSettings } from "./special-tokens.js";
import { looksSpecial, paddingToken, userDefinedTokenText } from "./token-classes.js";
import { TokenType, type BytePairVocabulary } from "./vocabulary.js";

export function bytePairVocabulary(files: ModelFiles & { tokenizerJson: JsonFile<TokenizerJson> }, vocabSizeFromConfig: number | undefined): BytePairVocabulary {
  const file = join(files.directory, "tokenizer.json");
  const json = files.tokenizerJson.value;
  if (!json.model.merges || json.model.merges.length === 0) throw new UserError("the BPE model has no merges; llama.cpp cannot load a BPE vocabulary without them", { file });

  // transformers' view of the vocabulary: the model's tokens plus the added ones.
  const textById = new Map<number, string>();
  for (const [token, id] of Object.entries(json.model.vocab ?? {})) textById.set(id, token);
  const addedById = new Map((json.added_tokens ?? []).map((token) => [token.id, token]));
  for (const [id, { content }] of addedById) textById.set(id, content);
  const vocabSize = vocabSizeFromConfig ?? textById.size;
  const maxId = [...textById.keys()].reduce((max, id) => Math.max(max, id), -1);
  if (maxId >= vocabSize) throw new UserError(`the tokenizer has token id ${maxId}, but the model's vocabulary has only ${vocabSize} tokens`, { file });

  const reference = loadReferenceTokenizer(files.tokenizerJson.text, files.tokenizerConfig, file);
  const pre = decidePreTokenizer(json, files.tokenizerConfig, reference, file);

  const tokens: string[] = [];
  const tokenTypes: TokenType[] = [];
  for (let id = 0; id < vocabSize; id++) {
    let text = textById.get(id);
    const added = addedById.get(id);
    let type: TokenType = TokenType.NORMAL;
    if (text === undefined) {
      text = paddingToken(id);
      type = TokenType.UNUSED;
    } else if (added) {
      // llama.cpp assumes added tokens are pre-normalized: store what encoding and decoding make of a raw one.
      if (!(added.normalized ?? !added.special)) text = reference.decode(reference.encode(text, false));
      if (added.special === true || looksSpecial(text)) type = TokenType.CONTROL;
      else {
        text = userDefinedTokenText(text);
        type = TokenType.USER_DEFINED;
      }
    }
    tokens.push(text);
    tokenTypes.push(type);
  }

  const settings = readSpecialTokenSettings(files, tokens, undefined);
  const addPrefixSpace = files.tokenizerConfig?.["add_prefix_space"];
  return {
    model: "gpt2",
    pre,
    tokens,
    tokenTypes,
    merges: ggufMerges(json.model.merges),
    specialTokenIds: settings.specialTokenIds,
    addSpecialTokens: settings.addSpecialTokens,
    ...(typeof addPrefixSpace === "boolean" ? { addSpacePrefix: addPrefixSpace } : {}),
    ...(settings.chatTemplate === undefined ? {} : { chatTemplate: settings.chatTemplate }),
    normalizer: settings.normalizer,
    warnings: [...(pre.decidedBy === "fingerprint" ? [explainPreTokenizer(pre)] : []), ...settings.warnings],
  };
}
