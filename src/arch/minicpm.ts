import { f32 } from "../writers/gguf/metadata.js";
import { DECODER_ROLES } from "./tensor-names.js";
import type { Architecture } from "./types.js";

/**
 * MiniCPM (and OpenBMB's ternary BitCPM): Llama whose embeddings, residual branches and
 * logits are scaled (muP); llama.cpp reads the three scales from metadata.
 */
export const minicpm: Architecture = {
  gguf: "minicpm",
  hfArchitectures: ["MiniCPMForCausalLM"],
  tensors: DECODER_ROLES,
  interleaveRopeRows: true,
  extraMetadata: (hparams, config) => [
    ["minicpm.embedding_scale", f32(config.number(["scale_emb"]))],
    ["minicpm.residual_scale", f32(config.number(["scale_depth"]) / Math.sqrt(hparams.layers))],
    ["minicpm.logit_scale", f32(hparams.hiddenSize / config.number(["dim_model_base"]))],
  ],
};
