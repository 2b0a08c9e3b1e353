// The GGUF vocabulary edgequant writes: what llama.cpp needs to tokenize exactly like the
// Hugging Face tokenizer the checkpoint was trained with.

/** tokenizer.ggml.token_type values (gguf-py TokenType); llama.cpp treats each kind differently. */
export const TokenType = {
  NORMAL: 1,
  UNKNOWN: 2,
  CONTROL: 3,
  USER_DEFINED: 4,
  UNUSED: 5,
  BYTE: 6,
} as const;
export type TokenType = (typeof TokenType)[keyof typeof TokenType];

/** Special token roles llama.cpp reads from tokenizer.ggml.<role>_token_id. */
export type SpecialTokenRole = "bos" | "eos" | "unk" | "sep" | "pad" | "mask" | "eot" | "eom";

/** Roles llama.cpp can add around a prompt (tokenizer.ggml.add_<role>_token). */
export type AddedSpecialRole = "bos" | "eos" | "sep";

export interface NamedChatTemplate {
  readonly name: string;
  readonly template: string;
}

/** tokenizer_config.json's chat_template: one template, or several by name ("default" first-class). */
export type ChatTemplate = string | readonly NamedChatTemplate[];

/** How tokenizer.ggml.pre was chosen, so the CLI can tell the user how sure we are. */
export type PreTokenizerDecision =
  | {
      readonly name: string;
      /** The check-text hash is one llama.cpp's converter knows: the same answer it would give. */
      readonly decidedBy: "hash";
      readonly hash: string;
    }
  | {
      readonly name: string;
      /**
       * tokenizer.json's split regexes are the ones llama.cpp uses for `name`, and either the hash is
       * unknown or the name the hash gives contradicts tokenizer.json (see `hashPre`).
       */
      readonly decidedBy: "fingerprint";
      readonly hash: string;
      /** Every pre name whose llama.cpp pre-tokenization matched, best first; `name` is the first. */
      readonly candidates: readonly string[];
      /** ignore_merges differs between tokenizer.json and llama.cpp's `name` (possible when nothing closer exists). */
      readonly ignoreMergesDiffers: boolean;
      /** What llama.cpp's hash table says, when overruled: same splitting, but ignore_merges contradicts tokenizer.json. */
      readonly hashPre?: string;
    };

interface VocabularyCommon {
  /** Token texts by id, as GGUF stores them (byte-level tokens keep their GPT-2 byte characters). */
  readonly tokens: readonly string[];
  /** Same length as `tokens`. */
  readonly tokenTypes: readonly TokenType[];
  readonly specialTokenIds: Readonly<Partial<Record<SpecialTokenRole, number>>>;
  readonly addSpecialTokens: Readonly<Partial<Record<AddedSpecialRole, boolean>>>;
  /** Unset means llama.cpp's default for the model kind (true for SentencePiece, false for BPE). */
  readonly addSpacePrefix?: boolean;
  readonly chatTemplate?: ChatTemplate;
  readonly normalizer: { readonly lowercase?: boolean; readonly stripAccents?: boolean };
  /** Things the user should know that did not stop the conversion. */
  readonly warnings: readonly string[];
}

/** tokenizer.ggml.model = "llama": llama.cpp's SentencePiece tokenizer, which merges by token score. */
export interface SentencePieceVocabulary extends VocabularyCommon {
  readonly model: "llama";
  /** Same length as `tokens`. */
  readonly scores: readonly number[];
  /**
   * tokenizer.model: scores come from the SentencePiece model itself.
   * tokenizer.json: a BPE tokenizer with byte fallback; scores are derived from its merge order.
   */
  readonly source: "tokenizer.model" | "tokenizer.json";
}

/** tokenizer.ggml.model = "gpt2": llama.cpp's byte-level BPE, driven by merges and a pre-tokenizer. */
export interface BytePairVocabulary extends VocabularyCommon {
  readonly model: "gpt2";
  readonly pre: PreTokenizerDecision;
  /** "left right" pairs in rank order; spaces inside a part are written as U+0120 like llama.cpp does. */
  readonly merges: readonly string[];
}

export type Vocabulary = SentencePieceVocabulary | BytePairVocabulary;
