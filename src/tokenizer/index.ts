// Tokenizer files of a Hugging Face model folder -> the GGUF vocabulary llama.cpp tokenizes with.

import { join } from "node:path";
import { UserError } from "../errors.js";
import { bytePairVocabulary } from "./byte-level-bpe-vocab.js";
import { readModelFiles, type JsonComponent } from "./model-files.js";
import { sentencePieceVocabularyFromJson } from "./sentencepiece-json-vocab.js";
import { sentencePieceVocabulary } from "./sentencepiece-vocab.js";
import type { Vocabulary } from "./vocabulary.js";

export { vocabularyMetadata } from "./metadata.js";
import { explainPreTokenizer } from "./pre-tokenizer.js";
export { explainPreTokenizer };
export * from "./vocabulary.js";

/**
 * Reads tokenizer.model (preferred, as llama.cpp's converter does) or tokenizer.json, plus
 * tokenizer_config.json, special_tokens_map.json, added_tokens.json, chat templates and config.json.
 * `vocabSizeFromConfig` is the model's embedding row count: the vocabulary is padded (or cut) to it.
 */
export async function readVocabulary(modelDir: string, vocabSizeFromConfig: number | undefined): Promise<Vocabulary> {
  const files = await readModelFiles(modelDir);
  const { tokenizerModel, tokenizerJson } = files;
  if (tokenizerModel) return sentencePieceVocabulary({ ...files, tokenizerModel }, vocabSizeFromConfig);
  if (!tokenizerJson) throw new UserError("no tokenizer: expected tokenizer.model or tokenizer.json", { file: modelDir });

  const json = tokenizerJson.value;
  if (json.model.type === "BPE" && json.model.byte_fallback === true) return sentencePieceVocabularyFromJson({ ...files, tokenizerJson }, vocabSizeFromConfig);
  if (json.model.type === "BPE" && (usesByteLevel(json.pre_tokenizer) || json.decoder?.type === "ByteLevel")) {
    return bytePairVocabulary({ ...files, tokenizerJson }, vocabSizeFromConfig);
  }
  throw new UserError(
    `unsupported tokenizer (model ${JSON.stringify(json.model.type)}): edgequant converts SentencePiece tokenizers (tokenizer.model, or BPE with byte fallback) and byte-level BPE tokenizers`,
    { file: join(modelDir, "tokenizer.json") },
  );
}

function usesByteLevel(node: JsonComponent | null | undefined): boolean {
  if (!node) return false;
  if (node.type === "ByteLevel") return true;
  const children = node["pretokenizers"];
  return Array.isArray(children) && children.some((child) => usesByteLevel(child as JsonComponent));
}

/** What a conversion report says of the vocabulary: its GGUF tokenizer model and, for BPE, the pre-tokenizer and why. */
export interface TokenizerSummary {
  readonly model: "llama" | "gpt2";
  readonly pre?: string;
  readonly preDecision?: string;
}

export function tokenizerSummary(vocabulary: Vocabulary): TokenizerSummary {
  if (vocabulary.model === "llama") return { model: "llama" };
  return { model: "gpt2", pre: vocabulary.pre.name, preDecision: explainPreTokenizer(vocabulary.pre) };
}
