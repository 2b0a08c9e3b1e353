// SmolLM3 for the reference forward pass, from transformers' modeling_smollm3.py and
// configuration_smollm3.py: a Llama block whose attention skips RoPE where
// `no_rope_layers[layer_idx]` is 0 (SmolLM3Attention.use_rope); without the list, every
// `no_rope_layer_interval`-th layer (default 4) is NoPE. tie_word_embeddings defaults to true.

import type { ArchitectureOptions } from "./reference-forward.js";

type Config = Record<string, unknown>;

/** Whether each layer applies RoPE, as SmolLM3Config.__post_init__ fills it in. */
function ropeLayers(config: Config): boolean[] {
  const layers = config["num_hidden_layers"];
  if (typeof layers !== "number") throw new Error('config.json: missing numeric "num_hidden_layers"');
  const flags = config["no_rope_layers"];
  if (flags !== undefined && flags !== null) {
    if (!Array.isArray(flags) || flags.length !== layers) throw new Error(`config.json: "no_rope_layers" must list ${layers} flags`);
    return flags.map((flag) => flag !== 0);
  }
  const interval = typeof config["no_rope_layer_interval"] === "number" ? config["no_rope_layer_interval"] : 4;
  return Array.from({ length: layers }, (_, il) => (il + 1) % interval !== 0);
}

/** The SmolLM3 row of the oracle's architecture table, on top of its Llama row. */
export function smollm3Options(llamaLike: ArchitectureOptions): ArchitectureOptions {
  return { ...llamaLike, tieEmbeddingsDefault: true, ropeLayers };
}
