// Small classification rules shared by the vocabulary builders, as llama.cpp's converter applies them.

/** SentencePiece byte-fallback tokens: "<0x00>" .. "<0xFF>". */
export function isByteToken(text: string): boolean {
  return /^<0x[0-9A-Fa-f]{2}>$/.test(text);
}

/**
 * Added tokens that some models forget to flag as special but that are control tokens in
 * practice (llama.cpp's does_token_look_special: command-r, deepseek-coder, gemma).
 */
export function looksSpecial(text: string): boolean {
  return (
    text === "<pad>" ||
    text === "<mask>" ||
    text === "<2mass>" ||
    text === "[@BOS@]" ||
    (text.startsWith("<|") && text.endsWith("|>")) ||
    (text.startsWith("<｜") && text.endsWith("｜>")) ||
    (text.startsWith("<unused") && text.endsWith(">"))
  );
}

/**
 * llama.cpp matches user-defined tokens against the raw (unescaped) input text, so a "▁" meant
 * as a space must be stored as a space.
 */
export function userDefinedTokenText(text: string): string {
  return text.replaceAll("▁", " ");
}

/** "[PAD123]": llama.cpp's filler for ids the tokenizer does not define but the embedding has. */
export function paddingToken(id: number): string {
  return `[PAD${id}]`;
}
