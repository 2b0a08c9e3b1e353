import { longRopeFactors } from "./longrope.js";
import { UserError } from "../errors.js";
import { DECODER_ROLES } from "./tensor-names.js";
import { PLAIN_DECODER, type Architecture } from "./types.js";

/**
 * MiniCPM (and OpenBMB's ternary BitCPM): Llama whose embeddings, residual branches and
 * logits are scaled (muP); llama.cpp reads the three scales from metadata.
 */
export const minicpm: Architecture = {
  gguf: "minicpm",
  hfArchitectures: ["MiniCPMForCausalLM"],
  formats: ["gguf", "mlx"],
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
  // mlx_lm/models/minicpm.py:190-193 divides the logits by hidden_size / dim_model_base only on
  // its untied path (the tied one is `out @ embed_tokens.weight.T`, wrong twice when quantized);
  // its head_dim is hidden_size // num_attention_heads (line 54) whatever config.json says.
  mlx: {
    untieOutput: true,
    checkConfig: (config) => {
      const hparams = config.decoderHparams();
      if (hparams.headDim * hparams.heads !== hparams.hiddenSize) {
        throw new UserError(`head_dim ${hparams.headDim} is not hidden_size / num_attention_heads, which mlx-lm's minicpm model assumes`, { file: "config.json" });
      }
    },
  },
};
