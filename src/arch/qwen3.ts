import type { Architecture } from "./types.js";

/** Qwen3 (dense): Qwen2 without biases, plus per-head RMSNorm on queries and keys. */
export const qwen3: Architecture = {
  gguf: "qwen3",
  hfArchitectures: ["Qwen3ForCausalLM"],
  tensors: [
    "token_embd", "output_norm", "output",
    "attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "attn_q_norm", "attn_k_norm",
    "ffn_norm", "ffn_gate", "ffn_up", "ffn_down",
  ],
  interleaveRopeRows: false,
};
