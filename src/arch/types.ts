import type { GgufValue } from "../writers/gguf/metadata.js";
import type { ConfigReader, DecoderHparams, HfConfig } from "./config.js";
import type { TensorNaming, TensorRole } from "./tensor-names.js";

/** The formats edgequant writes; each architecture declares which of them it supports. */
export const OUTPUT_FORMATS = ["gguf", "onnx", "mlx"] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** A tensor an architecture adds that is not in the checkpoint (e.g. llama3 rope factors). */
export interface GeneratedTensor {
  readonly gguf: string;
  readonly values: Float32Array;
}

/**
 * What a decoder computes beyond the Llama block, read from config.json: every runtime's
 * writer (GGUF metadata, the ONNX graph, fit's graph model) reads the same record.
 */
export interface DecoderFeatures {
  /** Per-head RMSNorm on queries and keys, before RoPE. */
  readonly qkNorm: boolean;
  /** BitNet's RMS sub-norms before the attention output and the FFN down projections. */
  readonly subNorms: boolean;
  /**
   * Multipliers of muP-style models (MiniCPM, Granite): on the token embeddings, on each
   * sub-layer's output before the residual add, and the attention's q.k scale instead of
   * 1/sqrt(head_dim). `logitDivisor` divides the logits (llama.cpp's `logit_scale`).
   */
  readonly embeddingScale?: number;
  readonly residualScale?: number;
  readonly attentionScale?: number;
  readonly logitDivisor?: number;
  /** The multipliers above are fixed by the architecture: llama.cpp's graph applies them, no GGUF key carries them (Gemma). */
  readonly multipliersImplied?: boolean;
  /** RMSNorm weights act as (normWeightOffset + w): Gemma stores w - 1. */
  readonly normWeightOffset?: number;
  /** The FFN gate's activation; SiLU unless set. */
  readonly ffnActivation?: "silu" | "gelu_tanh";
  /** Sliding-window layers: which ones, how many positions each sees (its own included), and their RoPE base (unscaled). */
  readonly slidingWindow?: { readonly window: number; readonly layers: readonly boolean[]; readonly ropeTheta: number };
}

/** How llama.cpp's graph for an architecture differs in ways fit's memory model counts. */
export interface LlamaCppGraphTraits {
  /** Sliding-window layers when the GGUF has no explicit pattern: layer il uses the window when il % period < period - 1. */
  readonly swaPeriod?: number;
  readonly defaultWindow?: number;
  /** The graph scales embeddings, residual branches and logits (extra nodes in the compute graph). */
  readonly embeddingScale?: boolean;
  readonly residualScale?: boolean;
  readonly logitScale?: boolean;
  /** The GGUF key (without the arch prefix) whose positive value turns on attention logit softcapping. */
  readonly attnSoftcapKey?: string;
}

/**
 * Everything edgequant knows about one model architecture, for every format. Adding one
 * means adding one such file in src/arch/ and listing it in src/arch/index.ts.
 */
export interface Architecture extends TensorNaming {
  /** `general.architecture` in GGUF, the prefix of its hyperparameter keys. */
  readonly gguf: string;
  /** `architectures[0]` values in config.json that this converts. */
  readonly hfArchitectures: readonly string[];
  /** The formats this architecture converts to. */
  readonly formats: readonly OutputFormat[];
  /** Tensor roles the checkpoint may contain (see tensor-names.ts). */
  readonly tensors: readonly TensorRole[];
  /**
   * transformers' config class defaults for keys config.json leaves out (Gemma 3's multimodal
   * configs name only a few text keys); llama.cpp's converter sees them through AutoConfig.
   */
  readonly configDefaults?: HfConfig;
  /** Checkpoint tensors no output needs (a multimodal wrapper's vision tower, when only its text tower converts). */
  readonly ignoredHfTensors?: readonly RegExp[];
  /** Roles whose bias every checkpoint carries (mlx-lm's model class declares it unconditionally). */
  readonly requiredBiases?: readonly TensorRole[];
  /**
   * HF stores Q/K rows for rotate-half RoPE; llama.cpp's "normal" RoPE for this
   * architecture wants each head's two halves interleaved.
   */
  readonly interleaveRopeRows: boolean;
  readonly features: (config: ConfigReader, hparams: DecoderHparams) => DecoderFeatures;
  /** Keys beyond the shared decoder ones. */
  readonly extraMetadata?: (hparams: DecoderHparams, config: ConfigReader) => Iterable<[string, GgufValue]>;
  readonly generatedTensors?: (hparams: DecoderHparams) => Iterable<GeneratedTensor>;
  /**
   * BitNet checkpoints that store full-precision master weights: the model ternarises its linear
   * weights on the fly (absmean), so the converter must too. Packed checkpoints are already ternary.
   */
  readonly ternarisesLinearWeights?: boolean;
  /** Refuses configurations llama.cpp's graph for this architecture would compute wrongly. */
  readonly checkConfig?: (config: ConfigReader) => void;
  /** Whether llama.cpp classes the model as 70B, which gives attn_v more bits in k-quant mixtures. */
  readonly is70B?: (shape: { layers: number; heads: number; kvHeads: number }) => boolean;
  readonly llamaCppGraph?: LlamaCppGraphTraits;
  /**
   * Values llama.cpp's converter changes before writing (Gemma's norms compute x * (1 + w), and
   * the converter stores 1 + w). The GGUF planner applies them; other formats decide for themselves.
   */
  readonly ggufValueTransforms?: readonly ValueTransform[];
}

/** `add` added to every value of the roles' weights, in float32 after decoding, as the converter's torch does. */
export interface ValueTransform {
  readonly roles: readonly TensorRole[];
  readonly add: number;
}

/** The decoder features of a plain Llama block. */
export const PLAIN_DECODER: DecoderFeatures = { qkNorm: false, subNorms: false };
