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
  /** Layers (0-based) whose attention applies no RoPE (SmolLM3's NoPE layers). */
  readonly nopeLayers?: readonly number[];
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
  /** Queries are scaled by 1/sqrt(head_dim) in their own node before attention (phi3). */
  readonly queryScale?: boolean;
  /** The feed-forward residual add takes the residual as its first operand (phi3: ggml_add(residual, cur)). */
  readonly residualFirst?: boolean;
  /** llama.cpp's n_no_rope_layer_step: layer il skips RoPE when (il + 1) % step == 0. */
  readonly noRopeLayerStep?: number;
  /** LFM2's hybrid graph: short-convolution blocks (recurrent state) beside attention blocks. */
  readonly shortConv?: boolean;
  /** GGUF name of the final norm's weight when it is not output_norm.weight. */
  readonly outputNorm?: string;
}

/** How mlx-lm's model file for an architecture departs from the Llama layout the MLX writer starts from. */
export interface MlxTraits {
  /** Refuses configurations mlx-lm's model file would compute wrongly. */
  readonly checkConfig?: (config: ConfigReader) => void;
  /**
   * mlx-lm builds the decoder's linear layers as BitLinear: ternary codes + 1 packed four to a
   * uint8 along the output dimension, times one `weight_scale` (mlx_lm/models/bitlinear_layers.py);
   * config.json then carries this `quantization_config` instead of a `quantization` block.
   */
  readonly bitLinear?: { readonly quantizationConfig: Readonly<Record<string, unknown>> };
  /** mlx-lm's tied-embedding path computes something else than its untied one: always write the output layer. */
  readonly untieOutput?: boolean;
  /** Tensor names mlx-lm's model declares where the checkpoint's may differ, by role (`{bid}` the block). */
  readonly names?: Partial<Readonly<Record<TensorRole, string>>>;
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
  /** Why a format is not among `formats`, for the refusal message. */
  readonly unsupportedBecause?: Partial<Readonly<Record<OutputFormat, string>>>;
  /** Tensor roles the checkpoint may contain (see tensor-names.ts). */
  readonly tensors: readonly TensorRole[];
  /**
   * transformers' config class defaults for keys config.json leaves out (Gemma 3's multimodal
   * configs name only a few text keys; SmolLM3 ties embeddings by default); llama.cpp's converter
   * sees them through AutoConfig. Every ConfigReader of a checkpoint is built with them.
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
  readonly mlx?: MlxTraits;
  /**
   * Hybrid models: the roles block `block` holds (LFM2's convolution blocks have no attention
   * tensors). Without it every block holds every block role. A block without attn_k has no KV heads.
   */
  readonly blockRoles?: (config: ConfigReader) => (block: number) => readonly TensorRole[];
  /** Corrects the shared hyperparameters from this architecture's own keys (LFM2's feed-forward width). */
  readonly hparams?: (hparams: DecoderHparams, config: ConfigReader) => DecoderHparams;
}

/** `add` added to every value of the roles' weights, in float32 after decoding, as the converter's torch does. */
export interface ValueTransform {
  readonly roles: readonly TensorRole[];
  readonly add: number;
}

/** The decoder features of a plain Llama block. */
export const PLAIN_DECODER: DecoderFeatures = { qkNorm: false, subNorms: false };
