import { DECODER_ROLES } from "./tensor-names.js";
import type { Architecture } from "./types.js";

/** Qwen2 / Qwen2.5: Llama with q/k/v biases and NeoX-style RoPE (rows stay as HF stores them). */
export const qwen2: Architecture = {
  gguf: "qwen2",
  hfArchitectures: ["Qwen2ForCausalLM"],
  tensors: DECODER_ROLES,
  interleaveRopeRows: false,
  is70B: ({ layers }) => layers === 80,
};
