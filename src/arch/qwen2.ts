import type { Architecture } from "./types.js";

/** Qwen2 / Qwen2.5: Llama with q/k/v biases and NeoX-style RoPE (rows stay as HF stores them). */
export const qwen2: Architecture = {
  gguf: "qwen2",
  hfArchitectures: ["Qwen2ForCausalLM"],
  tensors: [
    "token_embd", "output_norm", "output",
    "attn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
    "ffn_norm", "ffn_gate", "ffn_up", "ffn_down",
  ],
  interleaveRopeRows: false,
  is70B: ({ layers }) => layers === 80,
};
