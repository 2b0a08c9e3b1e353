// A JavaScript re-implementation of the Hugging Face tokenizer, standing in for the Python
// `transformers.AutoTokenizer` that llama.cpp's converter runs. It answers the two questions the
// converter asks the real tokenizer: how the check text encodes, and how added tokens round-trip.
// Kept behind this small interface so the library can be swapped in one place.

import { TokenizerLoader } from "@lenml/tokenizers";
import { UserError } from "../errors.js";
import { isObject, type JsonObject } from "./model-files.js";
import { knownPreNames, unrecognisedRegexes } from "./pre-fingerprint.js";

export interface ReferenceTokenizer {
  /** Like transformers' tokenizer.encode(text, add_special_tokens=...). */
  encode(text: string, addSpecialTokens: boolean): number[];
  /** Like transformers' tokenizer.decode(ids). */
  decode(ids: readonly number[]): string;
}

type LoaderInput = Parameters<typeof TokenizerLoader.fromPreTrained>[0];

/**
 * `tokenizerJsonText` is parsed afresh because the library keeps (and may adjust) what it is given.
 * The library runs the file's regexes, so they must be ones llama.cpp implements (see
 * unrecognisedRegexes); whatever else it cannot take is the file's problem, said as such.
 */
export function loadReferenceTokenizer(tokenizerJsonText: string, tokenizerConfig: JsonObject | undefined, file: string): ReferenceTokenizer {
  const json: unknown = JSON.parse(tokenizerJsonText);
  const unknownRegexes = unrecognisedRegexes(json);
  if (unknownRegexes.length > 0) {
    throw new UserError(
      `its pre-tokenizer regex ${JSON.stringify(unknownRegexes[0]!.slice(0, 200))} is not one llama.cpp implements, so llama.cpp would split text differently; ` +
        "edgequant does not run regexes it does not recognise (a file's regex can take exponential time). " +
        `llama.cpp knows: ${knownPreNames().join(", ")}`,
      { file },
    );
  }
  const library = <T>(step: () => T): T => {
    try {
      return step();
    } catch (error) {
      throw new UserError(`transformers' tokenizer (as transformers.js implements it) cannot use it: ${error instanceof Error ? error.message : String(error)}`, { file });
    }
  };
  const tokenizer = library(() => TokenizerLoader.fromPreTrained({ tokenizerJSON: json, tokenizerConfig: withPlainTokenNames(tokenizerConfig ?? {}) } as LoaderInput));
  return {
    encode: (text, addSpecialTokens) => library(() => tokenizer.encode(text, { add_special_tokens: addSpecialTokens })),
    decode: (ids) => library(() => tokenizer.decode([...ids])),
  };
}

/** The library wants special tokens named by string; configs may give AddedToken objects instead. */
function withPlainTokenNames(config: JsonObject): Record<string, unknown> {
  const plain = (value: unknown): unknown => (isObject(value) && typeof value["content"] === "string" ? value["content"] : value);
  return Object.fromEntries(Object.entries(config).map(([key, value]) => [key, Array.isArray(value) ? value.map(plain) : plain(value)]));
}
