import type { GgufValue } from "../writers/gguf/metadata.js";
import type { ConfigReader, DecoderHparams } from "./config.js";
import type { TensorRole } from "./tensor-names.js";

/** A tensor an architecture adds that is not in the checkpoint (e.g. llama3 rope factors). */
export interface GeneratedTensor {
  readonly gguf: string;
  readonly values: Float32Array;
}

/**
 * Everything edgequant knows about one model architecture. Adding one means
 * adding one such file in src/arch/ and listing it in src/arch/index.ts.
 */
export interface Architecture {
  /** `general.architecture` in GGUF, the prefix of its hyperparameter keys. */
  readonly gguf: string;
  /** `architectures[0]` values in config.json that this converts. */
  readonly hfArchitectures: readonly string[];
  /** Tensor roles the checkpoint may contain (see tensor-names.ts). */
  readonly tensors: readonly TensorRole[];
  /**
   * HF stores Q/K rows for rotate-half RoPE; llama.cpp's "normal" RoPE for this
   * architecture wants each head's two halves interleaved.
   */
  readonly interleaveRopeRows: boolean;
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
}
