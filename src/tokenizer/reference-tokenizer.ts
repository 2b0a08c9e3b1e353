// A JavaScript re-implementation of the Hugging Face tokenizer, standing in for the Python
// `transformers.AutoTokenizer` that llama.cpp's converter runs. It answers the two questions the
// converter asks the real tokenizer: how the check text encodes, and how added tokens round-trip.
// Kept behind this small interface so the library can be swapped in one place.

import { TokenizerLoader } from "@lenml/tokenizers";
import { isObject, type JsonObject } from "./model-files.js";

export interface ReferenceTokenizer {
  /** Like transformers' tokenizer.encode(text, add_special_tokens=...). */
  encode(text: string, addSpecialTokens: boolean): number[];
  /** Like transformers' tokenizer.decode(ids). */
  decode(ids: readonly number[]): string;
}

type LoaderInput = Parameters<typeof TokenizerLoader.fromPreTrained>[0];

/** `tokenizerJsonText` is parsed afresh because the library keeps (and may adjust) what it is given. */
export function loadReferenceTokenizer(tokenizerJsonText: string, tokenizerConfig: JsonObject | undefined): ReferenceTokenizer {
  const tokenizer = TokenizerLoader.fromPreTrained({
    tokenizerJSON: JSON.parse(tokenizerJsonText),
    tokenizerConfig: withPlainTokenNames(tokenizerConfig ?? {}),
  } as LoaderInput);
  return {
    encode: (text, addSpecialTokens) => tokenizer.encode(text, { add_special_tokens: addSpecialTokens }),
    decode: (ids) => tokenizer.decode([...ids]),
  };
}

/** The library wants special tokens named by string; configs may give AddedToken objects instead. */
function withPlainTokenNames(config: JsonObject): Record<string, unknown> {
  const plain = (value: unknown): unknown => (isObject(value) && typeof value["content"] === "string" ? value["content"] : value);
  return Object.fromEntries(Object.entries(config).map(([key, value]) => [key, Array.isArray(value) ? value.map(plain) : plain(value)]));
}
