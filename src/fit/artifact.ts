/**
 * What the fit model knows about a converted model, whatever its format. A reader per format
 * (./gguf-artifact.ts, ./onnx-artifact.ts, ./mlx-artifact.ts) fills one in; the runtime models
 * (./llama-cpp.ts, ./onnxruntime.ts, ./mlx.ts) turn it into memory figures.
 */

export type ArtifactFormat = "gguf" | "onnx" | "mlx";

/** Decoder hyperparameters, per layer where models vary them. */
export interface DecoderHparams {
  readonly architecture: string;
  readonly nLayer: number;
  readonly nEmbd: number;
  readonly nVocab: number;
  readonly nHead: readonly number[];
  readonly nHeadKv: readonly number[];
  readonly headDimK: number;
  readonly headDimV: number;
  readonly nFf: readonly number[];
  /** The context the model was trained for (its maximum). */
  readonly contextLength: number;
  /** 0 when no layer uses sliding-window attention. */
  readonly slidingWindow: number;
  readonly swaLayers: readonly boolean[];
  readonly tiedEmbeddings: boolean;
  /**
   * Hybrid models: F32 elements of recurrent state per sequence in each layer (llama.cpp's
   * n_embd_r + n_embd_s for its recurrent layers, 0 for attention layers); absent otherwise.
   */
  readonly recurrentState?: readonly number[];
}

export interface ArtifactTensor {
  readonly name: string;
  /** ggml type name for GGUF, ONNX / safetensors dtype otherwise. */
  readonly type: string;
  /** Dimensions innermost first (ggml order). */
  readonly ne: readonly number[];
  /** Exact bytes of the tensor's data in the artifact's files. */
  readonly bytes: number;
  readonly file: string;
  /** Absolute offset of the data in `file` (GGUF only). */
  readonly offset?: number;
  /** ggml type id (GGUF only). */
  readonly ggmlType?: number;
}

export interface Artifact {
  readonly path: string;
  readonly format: ArtifactFormat;
  readonly name: string;
  /** How the weights are stored: "Q4_K_M", "int4 MatMulNBits (block 32)", "4-bit affine, group 64", ... */
  readonly quantization: string;
  readonly hparams: DecoderHparams;
  readonly tensors: readonly ArtifactTensor[];
  /** Sum of the tensors' data bytes: the weights, exactly as stored. */
  readonly weightBytes: number;
  readonly files: readonly { readonly path: string; readonly bytes: number }[];
  readonly parameters: number;
  /** Format-specific facts the runtime models use. */
  readonly details: GgufDetails | OnnxDetails | MlxDetails;
}

interface GgufDetails {
  readonly kind: "gguf";
  readonly embeddingScale: boolean;
  readonly residualScale: boolean;
  readonly logitScale: boolean;
  readonly attnSoftcap: boolean;
  readonly queryScale?: boolean;
  readonly residualFirst?: boolean;
  /** llama.cpp's n_no_rope_layer_step (0: every layer applies RoPE). */
  readonly noRopeLayerStep: number;
  readonly shortConv?: boolean;
  readonly outputNorm?: string;
  /** Token strings' total length: llama.cpp keeps the vocabulary in host memory. */
  readonly vocabTextBytes: number;
}

interface OnnxDetails {
  readonly kind: "onnx";
  readonly modelFile: string;
  /** Element type of past_key_values inputs ("float16" / "float32"). */
  readonly kvDtype: string;
  readonly kvBytesPerElement: number;
  /** "genai" or "transformersjs". */
  readonly layout: string;
}

interface MlxDetails {
  readonly kind: "mlx";
  /** Activation / KV dtype: the model's float dtype ("float16", "bfloat16", "float32"). */
  readonly dtype: string;
  readonly dtypeBytes: number;
  readonly bits?: number;
  readonly groupSize?: number;
}

export function headCounts(value: unknown, layers: number, fallback?: number): number[] {
  if (Array.isArray(value)) return value.map(Number);
  const n = value === undefined ? fallback : Number(value);
  if (n === undefined || !Number.isFinite(n)) throw new Error("head count missing");
  return Array.from({ length: layers }, () => n);
}
