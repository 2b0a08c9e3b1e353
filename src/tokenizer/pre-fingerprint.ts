// Recognising a BPE pre-tokenizer from tokenizer.json itself, for when its check-text hash is
// unknown (often only because the vocabulary changed, e.g. a fine-tune added tokens) or names a
// pre-tokenizer that contradicts tokenizer.json: describe its splitting in llama.cpp's terms and
// look for the llama.cpp pre-tokenizers that split the same way.

import type { JsonComponent, JsonObject, TokenizerJson } from "./model-files.js";
import { isObject } from "./model-files.js";
import table from "./llama-pre-tokenizers.json" with { type: "json" };

const REGEXES: Readonly<Record<string, readonly string[]>> = table.regexes;

/** llama.cpp's regex for the GPT-2 split that a ByteLevel pre-tokenizer with use_regex applies. */
const GPT2_REGEX = REGEXES["GPT2"]![0]!;
/** The same split as tokenizers' ByteLevel writes it; llama.cpp implements it by hand as GPT2_REGEX. */
const BYTE_LEVEL_REGEX = String.raw`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`;

/** Normalizers llama.cpp does without: NFC ships with the Qwen2 family llama.cpp supports; the rest map to GGUF flags. */
const HARMLESS_NORMALIZERS = new Set(["NFC", "Lowercase", "StripAccents", "BertNormalizer"]);

/** How tokenizer.json pre-tokenizes, in llama.cpp's terms. */
export interface PreTokenizerFingerprint {
  /** Split regexes applied in order, each keeping matches and the text between them as pieces. */
  readonly regexes: readonly string[];
  /** Components that have no llama.cpp counterpart; any of them rules out a match. */
  readonly unsupported: readonly string[];
  /** BPE ignore_merges: a word that is a whole token is not split by merges. */
  readonly ignoreMerges: boolean;
  /** tokenizer_config.json's clean_up_tokenization_spaces (detokenization only), when given. */
  readonly cleanSpaces?: boolean;
}

export function fingerprintOf(tokenizer: TokenizerJson, tokenizerConfig: JsonObject | undefined): PreTokenizerFingerprint {
  const regexes: string[] = [];
  const unsupported: string[] = [];
  visitNormalizer(tokenizer.normalizer, unsupported);
  visitPreTokenizer(tokenizer.pre_tokenizer, regexes, unsupported);
  const cleanSpaces = tokenizerConfig?.["clean_up_tokenization_spaces"];
  return { regexes, unsupported, ignoreMerges: tokenizer.model.ignore_merges === true, ...(typeof cleanSpaces === "boolean" ? { cleanSpaces } : {}) };
}

interface PreTokenizerMatches {
  /** Same split regexes and same ignore_merges: llama.cpp tokenizes exactly like tokenizer.json. */
  readonly exact: readonly string[];
  /** Same split regexes, other ignore_merges: words that are whole tokens may split differently. */
  readonly splitOnly: readonly string[];
}

/**
 * tokenizer.ggml.pre names whose llama.cpp pre-tokenization is tokenizer.json's. Those that also
 * clean up spaces when detokenizing as tokenizer_config.json asks come first, then llama.cpp's
 * order; among synonyms (names llama.cpp treats alike) the `preferred` ones come first.
 */
export function matchPreTokenizers(fingerprint: PreTokenizerFingerprint, preferred: ReadonlySet<string> = new Set()): PreTokenizerMatches {
  if (fingerprint.unsupported.length > 0 || fingerprint.regexes.length === 0) return { exact: [], splitOnly: [] };
  const wanted = fingerprint.regexes.map(canonicalRegex);
  const sameSplit = table.names.filter(({ type }) => sameList((REGEXES[type] ?? []).map(canonicalRegex), wanted));
  // Flags absent from a branch keep llama.cpp's BPE defaults: ignore_merges false, clean_spaces true.
  const mergesAgree = (flags: PreFlags) => (flags.ignore_merges ?? false) === fingerprint.ignoreMerges;
  const spacesAgree = (flags: PreFlags) => fingerprint.cleanSpaces === undefined || (flags.clean_spaces ?? true) === fingerprint.cleanSpaces;
  const ranked = [...sameSplit.filter(({ flags }) => spacesAgree(flags)), ...sameSplit.filter(({ flags }) => !spacesAgree(flags))];
  const synonyms = ({ names }: { names: readonly string[] }) => [...names.filter((name) => preferred.has(name)), ...names.filter((name) => !preferred.has(name))];
  return {
    exact: ranked.filter(({ flags }) => mergesAgree(flags)).flatMap(synonyms),
    splitOnly: ranked.filter(({ flags }) => !mergesAgree(flags)).flatMap(synonyms),
  };
}

interface PreFlags {
  readonly ignore_merges?: boolean;
  readonly clean_spaces?: boolean;
}

/** Every pre name llama.cpp accepts, for error messages. */
export function knownPreNames(): string[] {
  return table.names.flatMap(({ names }) => names);
}

function visitNormalizer(node: JsonComponent | null | undefined, unsupported: string[]): void {
  if (!node) return;
  if (node.type === "Sequence") {
    for (const child of Array.isArray(node["normalizers"]) ? node["normalizers"] : []) visitNormalizer(isObject(child) ? child : null, unsupported);
  } else if (!HARMLESS_NORMALIZERS.has(String(node.type))) unsupported.push(`normalizer ${String(node.type)}`);
}

function visitPreTokenizer(node: JsonComponent | null | undefined, regexes: string[], unsupported: string[]): void {
  if (!node) return;
  switch (node.type) {
    case "Sequence":
      for (const child of Array.isArray(node["pretokenizers"]) ? node["pretokenizers"] : []) visitPreTokenizer(isObject(child) ? child : null, regexes, unsupported);
      return;
    case "Split": {
      const pattern = isObject(node["pattern"]) ? node["pattern"] : {};
      const regex = typeof pattern["Regex"] === "string" ? pattern["Regex"] : typeof pattern["String"] === "string" ? escapeRegex(pattern["String"]) : undefined;
      // llama.cpp's splitter keeps both the matches and the text between them: tokenizers' "Isolated".
      if (regex === undefined || node["behavior"] !== "Isolated" || node["invert"] === true) unsupported.push(`Split ${JSON.stringify(node)}`);
      else regexes.push(regex);
      return;
    }
    case "ByteLevel":
      if (node["add_prefix_space"] === true) unsupported.push("ByteLevel with add_prefix_space");
      if (node["use_regex"] !== false) regexes.push(GPT2_REGEX);
      return;
    case "Digits":
      regexes.push(node["individual_digits"] === true ? String.raw`\p{N}` : String.raw`\p{N}+`);
      return;
    default:
      unsupported.push(`pre-tokenizer ${String(node.type)}`);
  }
}

/** Every regex llama.cpp implements, in the one spelling canonicalRegex gives. */
const RECOGNISED_REGEXES: ReadonlySet<string> = new Set([...Object.values(REGEXES).flat(), BYTE_LEVEL_REGEX].map((regex) => canonicalRegex(regex)));

/**
 * The regexes anywhere in tokenizer.json (Split and Replace patterns of any component) that are
 * not one llama.cpp implements. Only recognised regexes may be run: a file's own regex can
 * backtrack for minutes, and llama.cpp would not split text with it anyway.
 */
export function unrecognisedRegexes(tokenizer: unknown): string[] {
  const found: string[] = [];
  const visit = (node: unknown, depth: number) => {
    if (depth > 32 || typeof node !== "object" || node === null) return;
    if (Array.isArray(node)) return node.forEach((child) => visit(child, depth + 1));
    const pattern = (node as Record<string, unknown>)["pattern"];
    if (isObject(pattern) && "Regex" in pattern) {
      const regex = pattern["Regex"];
      if (typeof regex !== "string" || !RECOGNISED_REGEXES.has(canonicalRegex(regex))) found.push(typeof regex === "string" ? regex : JSON.stringify(regex));
    }
    for (const [key, child] of Object.entries(node)) if (key !== "model" && key !== "added_tokens") visit(child, depth + 1);
  };
  visit(tokenizer, 0);
  return found;
}

/**
 * One spelling for regexes that llama.cpp rewrote but that split the same way: its regex engine
 * has no inline case-insensitive groups, possessive quantifiers, or \p{Lu}-style classes in some
 * positions, so llama-vocab.cpp spells those out (see its "original regex from tokenizer.json").
 */
export function canonicalRegex(regex: string): string {
  if (regex === BYTE_LEVEL_REGEX) return GPT2_REGEX;
  const escaped = regex.replaceAll("\r", String.raw`\r`).replaceAll("\n", String.raw`\n`).replaceAll("\t", String.raw`\t`);
  return withoutPossessiveQuantifiers(expandCaseInsensitiveGroups(escaped))
    .replaceAll(String.raw`[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]`, String.raw`((?=[\p{L}])([^a-z]))`)
    .replaceAll(String.raw`[\p{Ll}\p{Lm}\p{Lo}\p{M}]`, String.raw`((?=[\p{L}])([^A-Z]))`);
}

/** A regex as a list of atoms: escapes ("\p{L}", "\s"), whole character classes, or single characters. */
function atoms(regex: string): string[] {
  const result: string[] = [];
  for (let i = 0; i < regex.length; ) {
    const atom = regex[i] === "[" ? characterClassAt(regex, i) : escapeAt(regex, i);
    result.push(atom);
    i += atom.length;
  }
  return result;
}

function escapeAt(regex: string, i: number): string {
  if (regex[i] !== "\\") return regex[i]!;
  const property = /^\\[pP]\{[^}]*\}/.exec(regex.slice(i));
  return property ? property[0] : regex.slice(i, i + 2);
}

function characterClassAt(regex: string, open: number): string {
  let i = open + 1;
  if (regex[i] === "^") i++;
  if (regex[i] === "]") i++; // a leading "]" is literal
  while (i < regex.length && regex[i] !== "]") i += escapeAt(regex, i).length;
  return regex.slice(open, i + 1);
}

/** (?i:'s|'re) -> (?:'[sS]|'[rR][eE]); [sd] inside such a group -> [sSdD]. */
function expandCaseInsensitiveGroups(regex: string): string {
  let out = "";
  let inside = false; // within a (?i: ... ) group
  let depth = 0; // groups opened inside it and not yet closed
  for (const atom of atoms(regex)) {
    if (!inside) {
      out += atom;
      if (out.endsWith("(?i:")) {
        out = out.slice(0, -"(?i:".length) + "(?:";
        inside = true;
        depth = 0;
      }
      continue;
    }
    if (atom === "(") depth++;
    if (atom === ")" && depth-- === 0) inside = false;
    out += atom.startsWith("[") ? atom.replace(/[a-zA-Z]/g, (c) => bothCases(c)) : /^[a-zA-Z]$/.test(atom) ? `[${bothCases(atom)}]` : atom;
  }
  return out;
}

function bothCases(letter: string): string {
  return letter.toLowerCase() + letter.toUpperCase();
}

/** X?+ X++ X*+ X{n}+ -> greedy: possessive matching only differs after backtracking llama.cpp does not do. */
function withoutPossessiveQuantifiers(regex: string): string {
  let out = "";
  let afterQuantifier = false;
  const list = atoms(regex);
  for (let i = 0; i < list.length; i++) {
    const atom = list[i]!;
    if (atom === "+" && afterQuantifier) {
      afterQuantifier = false;
      continue;
    }
    if (atom === "{") {
      const close = list.indexOf("}", i);
      const body = list.slice(i, close + 1).join("");
      if (close > i && /^\{\d+(,\d*)?\}$/.test(body)) {
        out += body;
        i = close;
        afterQuantifier = true;
        continue;
      }
    }
    out += atom;
    afterQuantifier = atom === "?" || atom === "*" || atom === "+";
  }
  return out;
}

function escapeRegex(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|]/g, "\\$&");
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((value, i) => value === b[i]);
}
