import { UserError } from "../errors.js";
import { f32, str } from "../writers/gguf/metadata.js";
import { DECODER_ROLES } from "./tensor-names.js";
import { PLAIN_DECODER, type Architecture } from "./types.js";

/**
 * BitNet b1.58: Llama with RMS sub-norms before the attention output and FFN down
 * projections, ternary linear weights and the output tied to the token embedding.
 * llama.cpp's graph uses NeoX RoPE (rows stay as HF stores them) and a SiLU-gated FFN.
 */
export const bitnet: Architecture = {
  gguf: "bitnet",
  hfArchitectures: ["BitNetForCausalLM", "BitnetForCausalLM"],
  formats: ["gguf", "mlx"],
  tensors: [...DECODER_ROLES.filter((role) => role !== "output"), "attn_sub_norm", "ffn_sub_norm"],
  interleaveRopeRows: false,
  features: () => ({ ...PLAIN_DECODER, subNorms: true }),
  ternarisesLinearWeights: true,
  // As llama.cpp's converter writes it: linear RoPE scaling of factor 1.0.
  extraMetadata: () => [
    ["bitnet.rope.scaling.type", str("linear")],
    ["bitnet.rope.scaling.factor", f32(1)],
  ],
  checkConfig: (config) => {
    const activation = config.config["hidden_act"];
    if (activation !== undefined && activation !== "silu") {
      throw new UserError(
        `hidden_act '${String(activation)}' is not what llama.cpp's bitnet graph computes (a SiLU-gated FFN): the GGUF would load but produce wrong text. ` +
          "Models such as microsoft/bitnet-b1.58-2B-4T (relu²) need bitnet.cpp's fork of llama.cpp",
        { file: "config.json" },
      );
    }
  },
  // mlx_lm/models/bitnet.py: BitLinear projections (lines 48-51, 107-109), relu² gate (line 114),
  // and the sub-norms under the names of microsoft/bitnet-b1.58-2B-4T (lines 60, 111).
  // Its BitLinear layers are built with invert_weight_scales False, and bitnet_quantize replaces only
  // nn.Linear modules (line 19), of which a tied BitNet has none; so the config below (transformers'
  // AutoBitLinear, which also multiplies by weight_scale, offline) never inverts a projection.
  mlx: {
    bitLinear: { quantizationConfig: { quant_method: "bitnet", linear_class: "autobitlinear", quantization_mode: "offline" } },
    names: { attn_sub_norm: "model.layers.{bid}.self_attn.attn_sub_norm", ffn_sub_norm: "model.layers.{bid}.mlp.ffn_sub_norm" },
    checkConfig: (config) => {
      const activation = config.config["hidden_act"];
      if (activation !== "relu2") {
        throw new UserError(
          `hidden_act '${String(activation ?? "silu")}' is not what mlx-lm's bitnet model computes (relu², mlx_lm/models/bitnet.py): the MLX model would load but produce wrong text. ` +
            "Convert this model to GGUF instead; mlx-lm runs BitNet b1.58 models such as microsoft/bitnet-b1.58-2B-4T",
          { file: "config.json" },
        );
      }
    },
  },
};
