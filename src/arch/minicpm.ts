import { longRopeFactors } from "./longrope.js";
import { DECODER_ROLES } from "./tensor-names.js";
import { PLAIN_DECODER, type Architecture } from "./types.js";

/**
 * MiniCPM (and OpenBMB's ternary BitCPM): Llama whose embeddings, residual branches and
 * logits are scaled (muP); llama.cpp reads the three scales from metadata.
 */
export const minicpm: Architecture = {
  gguf: "minicpm",
  hfArchitectures: ["MiniCPMForCausalLM"],
  formats: ["gguf"],
  tensors: DECODER_ROLES,
  interleaveRopeRows: true,
  features: (config, hparams) => ({
    ...PLAIN_DECODER,
    embeddingScale: config.number(["scale_emb"]),
    residualScale: config.number(["scale_depth"]) / Math.sqrt(hparams.layers),
    logitDivisor: hparams.hiddenSize / config.number(["dim_model_base"]),
  }),
  // MiniCPM4 / BitCPM4 use LongRoPE (conversion/minicpm.py writes the two factor tensors).
  generatedTensors: longRopeFactors,
  llamaCppGraph: { embeddingScale: true, residualScale: true, logitScale: true },
};
