import { DECODER_ROLES } from "./tensor-names.js";
import { PLAIN_DECODER, type Architecture } from "./types.js";

/** Qwen3 (dense): Qwen2 without biases, plus per-head RMSNorm on queries and keys. */
export const qwen3: Architecture = {
  gguf: "qwen3",
  hfArchitectures: ["Qwen3ForCausalLM"],
  formats: ["gguf", "onnx", "mlx"],
  tensors: [...DECODER_ROLES, "attn_q_norm", "attn_k_norm"],
  interleaveRopeRows: false,
  features: () => ({ ...PLAIN_DECODER, qkNorm: true }),
};
