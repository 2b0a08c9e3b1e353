import { MAX_WIDTH } from "../readers/source-tensor.js";
import { UserError } from "../errors.js";

/** config.json as Hugging Face writes it; read only through the accessors below. */
export type HfConfig = Readonly<Record<string, unknown>>;

/** RoPE scaling as llama.cpp can express it. */
export type RopeScaling =
  | { kind: "none" }
  | { kind: "linear"; factor: number }
  | { kind: "yarn"; factor: number; originalContext: number; extFactor?: number; attnFactor?: number; betaFast?: number; betaSlow?: number }
  | { kind: "llama3"; factor: number; lowFreqFactor: number; highFreqFactor: number; originalContext: number }
  | LongRope;

/**
 * LongRoPE (Phi-3, MiniCPM4): per-frequency divisors for contexts up to and beyond the original
 * one, and the cos/sin multiplier transformers' _compute_longrope_parameters derives.
 */
export interface LongRope {
  readonly kind: "longrope";
  readonly longFactor: readonly number[];
  readonly shortFactor: readonly number[];
  readonly originalContext: number;
  readonly attnFactor: number;
}

/** The hyperparameters every decoder-only transformer we convert shares. */
export interface DecoderHparams {
  readonly contextLength: number;
  readonly hiddenSize: number;
  readonly intermediateSize: number;
  readonly layers: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  /** Dimensions of each head that RoPE rotates (partial_rotary_factor), as llama.cpp's converter counts them. */
  readonly ropeDim: number;
  /** head_dim as written in config.json, which llama.cpp records only when present. */
  readonly explicitHeadDim: number | undefined;
  readonly ropeTheta: number;
  readonly ropeScaling: RopeScaling;
  readonly rmsNormEps: number;
  readonly vocabSize: number;
  readonly tieWordEmbeddings: boolean;
}

/** Far beyond any real model (the largest have ~130 layers, 128 heads, widths of ~50k): larger values are typos or attacks. */
const MAX_LAYERS = 4096;
const MAX_HEADS = 4096;


export class ConfigReader {
  /**
   * A multimodal model's text_config overrides the top level, as llama.cpp's converter merges
   * them; `defaults` (the text config class's, see Architecture.configDefaults) fill what both leave out.
   */
  readonly config: HfConfig;

  constructor(
    config: HfConfig,
    readonly file: string,
    defaults: HfConfig = {},
  ) {
    const text = config["text_config"];
    this.config = typeof text === "object" && text !== null && !Array.isArray(text) ? { ...config, ...defaults, ...(text as HfConfig) } : { ...defaults, ...config };
  }

  /** The first of `keys` that is present, as llama.cpp's find_hparam does. */
  optionalNumber(keys: readonly string[]): number | undefined {
    for (const key of keys) {
      const value = this.config[key];
      if (value === undefined || value === null) continue;
      if (typeof value !== "number" || !Number.isFinite(value)) {
        throw new UserError(`'${key}' must be a number, got ${JSON.stringify(value)}`, { file: this.file });
      }
      return value;
    }
    return undefined;
  }

  number(keys: readonly string[]): number {
    const value = this.optionalNumber(keys);
    if (value === undefined) throw new UserError(`missing '${keys[0]}'${keys.length > 1 ? ` (or ${keys.slice(1).join(", ")})` : ""}`, { file: this.file });
    return value;
  }

  /** `max` bounds sizes before anything is allocated by them; tensors are checked against them later. */
  integer(keys: readonly string[], max: number = 2 ** 31 - 1): number {
    const value = this.number(keys);
    if (!Number.isSafeInteger(value) || value <= 0 || value > max) throw new UserError(`'${keys[0]}' must be a positive integer up to ${max}, got ${value}`, { file: this.file });
    return value;
  }

  boolean(key: string, fallback: boolean): boolean {
    const value = this.config[key];
    if (value === undefined || value === null) return fallback;
    if (typeof value !== "boolean") throw new UserError(`'${key}' must be true or false, got ${JSON.stringify(value)}`, { file: this.file });
    return value;
  }

  /** A list of integers (e.g. a per-layer flag list), or undefined when absent. */
  integerList(key: string): number[] | undefined {
    const value = this.config[key];
    if (value === undefined || value === null) return undefined;
    if (!Array.isArray(value) || !value.every((v) => Number.isSafeInteger(v))) throw new UserError(`'${key}' must be a list of integers, got ${JSON.stringify(value)}`, { file: this.file });
    return value as number[];
  }

  object(key: string): HfConfig | undefined {
    const value = this.config[key];
    return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as HfConfig) : undefined;
  }

  decoderHparams(): DecoderHparams {
    const hiddenSize = this.integer(["hidden_size", "n_embd", "dim"], MAX_WIDTH);
    const heads = this.integer(["num_attention_heads", "n_head", "n_heads"], MAX_HEADS);
    const explicitHeadDim = this.optionalNumber(["head_dim"]);
    const headDim = explicitHeadDim ?? hiddenSize / heads;
    if (!Number.isSafeInteger(headDim)) throw new UserError(`hidden_size ${hiddenSize} is not divisible by num_attention_heads ${heads}; set head_dim`, { file: this.file });
    return {
      contextLength: this.integer(["max_position_embeddings", "n_ctx", "n_positions", "max_length", "max_sequence_length", "model_max_length"]),
      hiddenSize,
      intermediateSize: this.integer(["intermediate_size", "n_inner", "hidden_dim"], MAX_WIDTH),
      layers: this.integer(["num_hidden_layers", "n_layer", "n_layers"], MAX_LAYERS),
      heads,
      kvHeads: this.optionalNumber(["num_key_value_heads", "n_kv_heads"]) === undefined ? heads : this.integer(["num_key_value_heads", "n_kv_heads"], heads),
      headDim,
      ropeDim: this.ropeDim(hiddenSize, heads, headDim),
      explicitHeadDim,
      ropeTheta: this.optionalNumber(["rope_theta"]) ?? (this.ropeParameters()?.["rope_theta"] as number | undefined) ?? 10000,
      ropeScaling: this.ropeScaling(hiddenSize, heads),
      rmsNormEps: this.number(["rms_norm_eps", "norm_eps"]),
      vocabSize: this.integer(["vocab_size"]),
      tieWordEmbeddings: this.boolean("tie_word_embeddings", false),
    };
  }

  /**
   * transformers >= 4.56 writes `rope_parameters`; older configs `rope_scaling`. Models with
   * per-layer-type RoPE (Gemma 3) nest them; the global layers' are the model's, as llama.cpp's converter reads them.
   */
  ropeParameters(): HfConfig | undefined {
    const rope = this.object("rope_parameters") ?? this.object("rope_scaling");
    const full = rope?.["full_attention"];
    return typeof full === "object" && full !== null && !Array.isArray(full) ? (full as HfConfig) : rope;
  }

  /** int(partial_rotary_factor * hidden_size) // heads, as conversion/phi.py writes rope.dimension_count. */
  private ropeDim(hiddenSize: number, heads: number, headDim: number): number {
    const partial = this.optionalNumber(["partial_rotary_factor"]) ?? (this.ropeParameters()?.["partial_rotary_factor"] as number | undefined);
    if (partial === undefined || partial === 1) return headDim;
    if (!(partial > 0 && partial <= 1)) throw new UserError(`'partial_rotary_factor' must be in (0, 1], got ${partial}`, { file: this.file });
    const dims = Math.floor(Math.floor(partial * hiddenSize) / heads);
    if (dims % 2 !== 0) throw new UserError(`partial_rotary_factor ${partial} rotates ${dims} dimensions per head, an odd number`, { file: this.file });
    return dims;
  }

  private ropeScaling(hiddenSize: number, heads: number): RopeScaling {
    const rope = this.ropeParameters();
    const type: unknown = rope?.["rope_type"] ?? rope?.["type"];
    if (type !== undefined && type !== null && typeof type !== "string") throw new UserError(`rope_scaling's rope_type must be a string, got ${JSON.stringify(type)}`, { file: this.file });
    const num = (key: string) => (typeof rope?.[key] === "number" ? (rope[key] as number) : undefined);
    const factor = num("factor");
    switch (typeof type === "string" ? type.toLowerCase() : undefined) {
      case undefined:
      case "default":
        return { kind: "none" };
      case "linear":
        return factor === undefined ? { kind: "none" } : { kind: "linear", factor };
      case "yarn": {
        const originalContext = num("original_max_position_embeddings");
        if (factor === undefined || originalContext === undefined) throw new UserError("yarn rope scaling needs 'factor' and 'original_max_position_embeddings'", { file: this.file });
        return {
          kind: "yarn", factor, originalContext,
          extFactor: num("extrapolation_factor"), attnFactor: num("attention_factor") ?? num("attn_factor"),
          betaFast: num("beta_fast"), betaSlow: num("beta_slow"),
        };
      }
      case "llama3":
        return {
          kind: "llama3",
          factor: factor ?? 8,
          lowFreqFactor: num("low_freq_factor") ?? 1,
          highFreqFactor: num("high_freq_factor") ?? 4,
          originalContext: num("original_max_position_embeddings") ?? 8192,
        };
      case "longrope":
      case "su":
        return this.longRope(rope!, this.ropeDim(hiddenSize, heads, this.optionalNumber(["head_dim"]) ?? hiddenSize / heads));
      default:
        throw new UserError(`rope scaling type '${type}' is not supported (supported: linear, yarn, llama3, longrope)`, { file: this.file });
    }
  }

  /**
   * The original context is the top-level key (Phi-3) or rope_scaling's (MiniCPM4); the attention
   * factor is rope_scaling's, else sqrt(1 + ln(s) / ln(original)) for s = max / original > 1.
   */
  private longRope(rope: HfConfig, ropeDim: number): LongRope {
    const factors = (key: string): number[] => {
      const value = rope[key];
      if (!Array.isArray(value) || value.length !== ropeDim / 2 || !value.every((x) => typeof x === "number" && Number.isFinite(x) && x > 0)) {
        throw new UserError(`rope_scaling.${key} must list ${ropeDim / 2} positive numbers (half the rotary dimensions)`, { file: this.file });
      }
      return value as number[];
    };
    const maxPositions = this.integer(["max_position_embeddings", "n_positions"]);
    const top = this.optionalNumber(["original_max_position_embeddings"]);
    const nested = typeof rope["original_max_position_embeddings"] === "number" ? (rope["original_max_position_embeddings"] as number) : undefined;
    const originalContext = top ?? nested ?? maxPositions;
    const scale = maxPositions / originalContext;
    const given = rope["attention_factor"];
    const attnFactor = typeof given === "number" ? given : scale > 1 ? Math.sqrt(1 + Math.log(scale) / Math.log(originalContext)) : 1;
    return { kind: "longrope", longFactor: factors("long_factor"), shortFactor: factors("short_factor"), originalContext, attnFactor };
  }
}
