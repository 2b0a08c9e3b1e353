import { UserError } from "../errors.js";

/** config.json as Hugging Face writes it; read only through the accessors below. */
export type HfConfig = Readonly<Record<string, unknown>>;

/** RoPE scaling as llama.cpp can express it. */
export type RopeScaling =
  | { kind: "none" }
  | { kind: "linear"; factor: number }
  | { kind: "yarn"; factor: number; originalContext: number; extFactor?: number; attnFactor?: number; betaFast?: number; betaSlow?: number }
  | { kind: "llama3"; factor: number; lowFreqFactor: number; highFreqFactor: number; originalContext: number };

/** The hyperparameters every decoder-only transformer we convert shares. */
export interface DecoderHparams {
  readonly contextLength: number;
  readonly hiddenSize: number;
  readonly intermediateSize: number;
  readonly layers: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  /** head_dim as written in config.json, which llama.cpp records only when present. */
  readonly explicitHeadDim: number | undefined;
  readonly ropeTheta: number;
  readonly ropeScaling: RopeScaling;
  readonly rmsNormEps: number;
  readonly vocabSize: number;
  readonly tieWordEmbeddings: boolean;
}

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

  integer(keys: readonly string[]): number {
    const value = this.number(keys);
    if (!Number.isSafeInteger(value) || value <= 0) throw new UserError(`'${keys[0]}' must be a positive integer, got ${value}`, { file: this.file });
    return value;
  }

  boolean(key: string, fallback: boolean): boolean {
    const value = this.config[key];
    if (value === undefined || value === null) return fallback;
    if (typeof value !== "boolean") throw new UserError(`'${key}' must be true or false, got ${JSON.stringify(value)}`, { file: this.file });
    return value;
  }

  object(key: string): HfConfig | undefined {
    const value = this.config[key];
    return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as HfConfig) : undefined;
  }

  decoderHparams(): DecoderHparams {
    const hiddenSize = this.integer(["hidden_size", "n_embd", "dim"]);
    const heads = this.integer(["num_attention_heads", "n_head", "n_heads"]);
    const explicitHeadDim = this.optionalNumber(["head_dim"]);
    const headDim = explicitHeadDim ?? hiddenSize / heads;
    if (!Number.isSafeInteger(headDim)) throw new UserError(`hidden_size ${hiddenSize} is not divisible by num_attention_heads ${heads}; set head_dim`, { file: this.file });
    return {
      contextLength: this.integer(["max_position_embeddings", "n_ctx", "n_positions", "max_length", "max_sequence_length", "model_max_length"]),
      hiddenSize,
      intermediateSize: this.integer(["intermediate_size", "n_inner", "hidden_dim"]),
      layers: this.integer(["num_hidden_layers", "n_layer", "n_layers"]),
      heads,
      kvHeads: this.optionalNumber(["num_key_value_heads", "n_kv_heads"]) ?? heads,
      headDim,
      explicitHeadDim,
      ropeTheta: this.optionalNumber(["rope_theta"]) ?? (this.ropeParameters()?.["rope_theta"] as number | undefined) ?? 10000,
      ropeScaling: this.ropeScaling(),
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

  private ropeScaling(): RopeScaling {
    const rope = this.ropeParameters();
    const type = (rope?.["rope_type"] ?? rope?.["type"]) as string | undefined;
    const num = (key: string) => (typeof rope?.[key] === "number" ? (rope[key] as number) : undefined);
    const factor = num("factor");
    switch (type?.toLowerCase()) {
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
      default:
        throw new UserError(`rope scaling type '${type}' is not supported (supported: linear, yarn, llama3)`, { file: this.file });
    }
  }
}
