// The Hugging Face tokenizer of a model folder (tokenizer.json + tokenizer_config.json), through
// @lenml/tokenizers, the JavaScript port of transformers' tokenizers, loaded here directly so the
// expected ids never pass through src/'s own wrapper of the same library.

import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { TokenizerLoader } from "@lenml/tokenizers";

export interface HfTokenizer {
  /** tokenizer.encode(text, add_special_tokens=addSpecialTokens) */
  encode(text: string, addSpecialTokens: boolean): number[];
}

type LoaderInput = Parameters<typeof TokenizerLoader.fromPreTrained>[0];

/** Special tokens in tokenizer_config.json may be AddedToken objects; the library takes their content strings. */
function plainTokens(config: Record<string, unknown>): Record<string, unknown> {
  const plain = (value: unknown) => (typeof value === "object" && value !== null && typeof (value as { content?: unknown }).content === "string" ? (value as { content: string }).content : value);
  return Object.fromEntries(Object.entries(config).map(([key, value]) => [key, Array.isArray(value) ? value.map(plain) : plain(value)]));
}

export function loadHfTokenizer(dir: string): HfTokenizer {
  const configPath = join(dir, "tokenizer_config.json");
  const config = existsSync(configPath) ? (JSON.parse(readFileSync(configPath, "utf8")) as Record<string, unknown>) : {};
  const tokenizer = TokenizerLoader.fromPreTrained({ tokenizerJSON: JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8")), tokenizerConfig: plainTokens(config) } as LoaderInput);
  return { encode: (text, addSpecialTokens) => tokenizer.encode(text, { add_special_tokens: addSpecialTokens }) };
}
