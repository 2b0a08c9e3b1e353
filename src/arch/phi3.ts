import { UserError } from "../errors.js";
import { u32 } from "../writers/gguf/metadata.js";
import { longRopeFactors } from "./longrope.js";
import { PLAIN_DECODER, type Architecture } from "./types.js";

/**
 * Phi-3 / Phi-3.5 / Phi-4-mini (Phi3ForCausalLM): a Llama block with fused qkv_proj and
 * gate_up_proj (kept fused, as conversion/phi.py writes attn_qkv and a double-height ffn_up),
 * NeoX RoPE on the first rope_dim dimensions of each head (partial_rotary_factor) and LongRoPE
 * factor tensors. llama.cpp's graph is src/models/phi3.cpp; it ignores sliding_window (SWA off).
 */
export const phi3: Architecture = {
  gguf: "phi3",
  hfArchitectures: ["Phi3ForCausalLM"],
  formats: ["gguf", "onnx", "mlx"],
  tensors: ["token_embd", "output_norm", "output", "attn_norm", "attn_qkv", "attn_output", "ffn_norm", "ffn_gate_up", "ffn_down"],
  interleaveRopeRows: false,
  features: () => PLAIN_DECODER,
  // conversion/phi.py writes the window, 0 when unset (Phi-4 style), though llama.cpp then turns SWA off.
  extraMetadata: (_hparams, config) => [["phi3.attention.sliding_window", u32(config.optionalNumber(["sliding_window"]) ?? 0)]],
  generatedTensors: longRopeFactors,
  // src/models/phi3.cpp: Q scaled in its own node; ffn residual added as ggml_add(residual, cur).
  llamaCppGraph: { queryScale: true, residualFirst: true },
  // mlx_lm/models/phi3.py:36-39 requires rope_scaling's legacy "type" key (a "rope_type"-only config
  // fails to load); :58 takes head_dim as hidden_size // num_attention_heads whatever config.json says.
  mlx: {
    checkConfig: (config) => {
      const rope = config.object("rope_scaling");
      if (rope && (rope["type"] === undefined || rope["long_factor"] === undefined)) {
        throw new UserError("rope_scaling has no 'type' or 'long_factor' key, which mlx-lm's phi3 model requires", { file: "config.json" });
      }
      const hparams = config.decoderHparams();
      if (hparams.headDim * hparams.heads !== hparams.hiddenSize) {
        throw new UserError(`head_dim ${hparams.headDim} is not hidden_size / num_attention_heads, which mlx-lm's phi3 model assumes`, { file: "config.json" });
      }
    },
  },
};
