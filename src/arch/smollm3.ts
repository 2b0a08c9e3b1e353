import { UserError } from "../errors.js";
import type { ConfigReader } from "./config.js";
import { llama3RopeFactors } from "./llama.js";
import { DECODER_ROLES } from "./tensor-names.js";
import { PLAIN_DECODER, type Architecture } from "./types.js";

/** llama.cpp's smollm3 graph skips RoPE on every 4th layer, whatever config.json says (src/models/smollm3.cpp). */
const LLAMA_CPP_NO_ROPE_STEP = 4;

/**
 * The layers without RoPE: transformers' `no_rope_layers` (1 = RoPE, 0 = NoPE), or when absent
 * every `no_rope_layer_interval`-th layer (configuration_smollm3.py's default).
 */
function nopeLayers(config: ConfigReader, layers: number): number[] {
  const flags = config.integerList("no_rope_layers");
  if (flags !== undefined) {
    if (flags.length !== layers) throw new UserError(`'no_rope_layers' has ${flags.length} entries for ${layers} layers`, { file: "config.json" });
    return flags.flatMap((flag, il) => (flag === 0 ? [il] : []));
  }
  return everyNth(layers, config.optionalNumber(["no_rope_layer_interval"]) ?? 4);
}

function everyNth(layers: number, step: number): number[] {
  return Array.from({ length: layers }, (_, il) => il).filter((il) => (il + 1) % step === 0);
}

/**
 * HuggingFace SmolLM3 (SmolLM3ForCausalLM): Llama with NoPE layers (no rotary embedding on
 * every 4th layer) and embeddings tied by default. llama.cpp converts it with its Llama
 * converter (Q/K rows permuted; conversion/llama.py SmolLM3Model) and hard-codes the NoPE step.
 */
export const smollm3: Architecture = {
  gguf: "smollm3",
  hfArchitectures: ["SmolLM3ForCausalLM"],
  formats: ["gguf", "onnx", "mlx"],
  tensors: DECODER_ROLES,
  interleaveRopeRows: true,
  // transformers' SmolLM3Config defaults tie_word_embeddings to true.
  configDefaults: { tie_word_embeddings: true },
  features: (config, hparams) => ({ ...PLAIN_DECODER, nopeLayers: nopeLayers(config, hparams.layers) }),
  generatedTensors: llama3RopeFactors,
  checkConfig: (config) => {
    const layers = config.integer(["num_hidden_layers"]);
    const ours = nopeLayers(config, layers).join(",");
    const llamaCpp = everyNth(layers, LLAMA_CPP_NO_ROPE_STEP).join(",");
    if (ours !== llamaCpp) {
      throw new UserError(`NoPE layers [${ours}] differ from llama.cpp's smollm3 graph, which skips RoPE on every ${LLAMA_CPP_NO_ROPE_STEP}th layer ([${llamaCpp}])`, { file: "config.json" });
    }
    if (config.boolean("use_sliding_window", false) && config.optionalNumber(["sliding_window"]) !== undefined) {
      throw new UserError("use_sliding_window is set, but llama.cpp's smollm3 graph has no sliding-window attention", { file: "config.json" });
    }
  },
  llamaCppGraph: { noRopeLayerStep: LLAMA_CPP_NO_ROPE_STEP },
};
