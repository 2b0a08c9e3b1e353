// Choosing tokenizer.ggml.pre for a byte-level BPE vocabulary: llama.cpp's converter hashes the
// tokenization of a fixed check text and looks the hash up; we do the same, and when the hash is
// unknown we recognise the pre-tokenizer from tokenizer.json before giving up.

import { createHash } from "node:crypto";
import { UserError } from "../errors.js";
import knownHashes from "./known-pre-hashes.json" with { type: "json" };
import type { JsonObject, TokenizerJson } from "./model-files.js";
import { fingerprintOf, knownPreNames, matchPreTokenizers, type PreTokenizerFingerprint } from "./pre-fingerprint.js";
import type { ReferenceTokenizer } from "./reference-tokenizer.js";
import type { PreTokenizerDecision } from "./vocabulary.js";

const PRE_BY_HASH: Readonly<Record<string, { pre: string }>> = knownHashes.hashes;
/** Names llama.cpp's converter actually writes; preferred among synonyms (e.g. "llama-bpe" over "llama3"). */
const CONVERTER_NAMES = new Set(Object.values(PRE_BY_HASH).map(({ pre }) => pre));

/** The text llama.cpp's converter tokenizes to identify a pre-tokenizer. */
export const CHECK_TEXT: string = knownHashes.checkText;

/**
 * sha256 of Python's str() of the token id list, e.g. "[128000, 198, 4815]": what
 * get_vocab_base_pre() hashes. encode() adds special tokens as transformers does by default.
 */
function checkTextHash(tokenizer: ReferenceTokenizer): string {
  const ids = tokenizer.encode(CHECK_TEXT, true);
  return createHash("sha256").update(`[${ids.join(", ")}]`).digest("hex");
}

function preForHash(hash: string): string | undefined {
  return PRE_BY_HASH[hash]?.pre;
}

/**
 * The hash decides, as in llama.cpp's converter, unless tokenizer.json contradicts the answer: a
 * hash only identifies how the check text splits, and a tokenizer that splits like one model but
 * sets ignore_merges like another (e.g. Llama 3's tokenizer.json before it gained a BOS template
 * hashes as "smaug-bpe", whose llama.cpp tokenizer does not ignore merges) is better served by the
 * pre-tokenizer that matches it in both. An unknown hash falls back to tokenizer.json's split rules.
 */
export function decidePreTokenizer(
  tokenizerJson: TokenizerJson,
  tokenizerConfig: JsonObject | undefined,
  reference: ReferenceTokenizer,
  file: string,
): PreTokenizerDecision {
  const hash = checkTextHash(reference);
  const known = preForHash(hash);
  const fingerprint = fingerprintOf(tokenizerJson, tokenizerConfig);
  const { exact, splitOnly } = matchPreTokenizers(fingerprint, CONVERTER_NAMES);
  if (known !== undefined) {
    const [name] = exact;
    if (name !== undefined && splitOnly.includes(known)) {
      return { name, decidedBy: "fingerprint", hash, candidates: exact, ignoreMergesDiffers: false, hashPre: known };
    }
    return { name: known, decidedBy: "hash", hash };
  }
  const candidates = [...exact, ...splitOnly];
  const [name] = candidates;
  if (name !== undefined) return { name, decidedBy: "fingerprint", hash, candidates, ignoreMergesDiffers: exact.length === 0 };
  throw new UserError(unknownPreTokenizerMessage(hash, fingerprint), { file });
}

function unknownPreTokenizerMessage(hash: string, fingerprint: PreTokenizerFingerprint): string {
  const found = [
    ...fingerprint.regexes.map((regex) => `split ${JSON.stringify(regex)}`),
    ...fingerprint.unsupported.map((what) => `${what} (no llama.cpp equivalent)`),
    `ignore_merges ${fingerprint.ignoreMerges}`,
  ];
  return [
    "llama.cpp does not know this tokenizer's pre-tokenizer, so its GGUF would tokenize text differently from the original model.",
    `Its check-text hash ${hash} is not one of the ${Object.keys(PRE_BY_HASH).length} llama.cpp's converter knows,`,
    "and its pre-tokenization matches none of llama.cpp's pre-tokenizers. tokenizer.json has:",
    ...found.map((line) => `  - ${line}`),
    `llama.cpp knows: ${knownPreNames().join(", ")}.`,
  ].join("\n");
}

/** One line for the CLI: how tokenizer.ggml.pre was chosen. */
export function explainPreTokenizer(decision: PreTokenizerDecision): string {
  if (decision.decidedBy === "hash") return `pre-tokenizer '${decision.name}' (check-text hash known to llama.cpp)`;
  const others = decision.candidates.filter((name) => name !== decision.name);
  const why =
    decision.hashPre !== undefined
      ? `llama.cpp's hash table says '${decision.hashPre}', which splits the same way but contradicts tokenizer.json's ignore_merges`
      : `its check-text hash ${decision.hash} is not one llama.cpp knows`;
  return (
    `pre-tokenizer '${decision.name}' recognised from tokenizer.json's split rules; ${why}` +
    (decision.ignoreMergesDiffers ? "; no llama.cpp pre-tokenizer also matches its ignore_merges, so a few words may split differently" : "") +
    (others.length > 0 ? ` (same rules: ${others.join(", ")})` : "")
  );
}
