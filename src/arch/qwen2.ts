import { DECODER_ROLES } from "./tensor-names.js";
import { PLAIN_DECODER, type Architecture } from "./types.js";

/** Qwen2 / Qwen2.5: Llama with q/k/v biases and NeoX-style RoPE (rows stay as HF stores them). */
export const qwen2: Architecture = {
  gguf: "qwen2",
  hfArchitectures: ["Qwen2ForCausalLM"],
  formats: ["gguf", "onnx", "mlx"],
  tensors: DECODER_ROLES,
  requiredBiases: ["attn_q", "attn_k", "attn_v"],
  interleaveRopeRows: false,
  features: () => PLAIN_DECODER,
  is70B: ({ layers }) => layers === 80,
};
