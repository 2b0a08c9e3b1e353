import { llama3RopeFactors } from "./llama.js";
import { DECODER_ROLES } from "./tensor-names.js";
import { PLAIN_DECODER, type Architecture } from "./types.js";

/**
 * IBM Granite 3.x (GraniteForCausalLM): Llama with muP multipliers on the embeddings, the
 * attention scores (instead of 1/sqrt(head_dim)) and the residual branches, and logits divided
 * by `logits_scaling`. llama.cpp's converter is its Llama one (Q/K rows permuted) plus the four
 * scales as metadata (conversion/granite.py); its graph is src/models/granite.cpp.
 */
export const granite: Architecture = {
  gguf: "granite",
  hfArchitectures: ["GraniteForCausalLM"],
  formats: ["gguf", "onnx", "mlx"],
  tensors: DECODER_ROLES,
  interleaveRopeRows: true,
  features: (config) => ({
    ...PLAIN_DECODER,
    attentionScale: config.number(["attention_multiplier"]),
    embeddingScale: config.number(["embedding_multiplier"]),
    residualScale: config.number(["residual_multiplier"]),
    logitDivisor: config.number(["logits_scaling"]),
  }),
  generatedTensors: llama3RopeFactors,
  llamaCppGraph: { embeddingScale: true, residualScale: true, logitScale: true },
};
