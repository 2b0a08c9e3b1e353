// SmolLM3's config.json for synthetic checkpoints: HuggingFaceTB/SmolLM3-3B's, every key kept.

/** The synthetic spec's sizes this config needs. */
export interface SmolLM3Sizes {
  readonly layers: number;
  readonly tieEmbeddings: boolean;
}

/**
 * HuggingFaceTB/SmolLM3-3B's config.json (huggingface.co/HuggingFaceTB/SmolLM3-3B, config.json),
 * every key and flag kept; only the sizes, layer count (and with it the per-layer lists, keeping
 * the real 1,1,1,0 NoPE pattern), vocabulary and token ids are the synthetic spec's. Like the real
 * file it has no head_dim and no tie_word_embeddings (transformers' SmolLM3Config defaults to tied);
 * the key is written only for an untied variant.
 */
export function smollm3Config(sizes: SmolLM3Sizes, common: Record<string, unknown>): Record<string, unknown> {
  const { head_dim: _headDim, tie_word_embeddings: _tie, ...sized } = common;
  const layers = Array.from({ length: sizes.layers }, (_, il) => il);
  return {
    ...sized,
    attention_bias: false,
    attention_dropout: 0.0,
    hidden_act: "silu",
    initializer_range: 0.02,
    layer_types: layers.map(() => "full_attention"),
    max_position_embeddings: 65536,
    // as in the real file; transformers ignores it (use_sliding_window is false)
    max_window_layers: 28,
    mlp_bias: false,
    model_type: "smollm3",
    no_rope_layer_interval: 4,
    no_rope_layers: layers.map((il) => ((il + 1) % 4 === 0 ? 0 : 1)),
    pad_token_id: 0,
    pretraining_tp: 2,
    rms_norm_eps: 1e-6,
    rope_scaling: null,
    rope_theta: 5000000.0,
    sliding_window: null,
    transformers_version: "4.54.0.dev0",
    use_cache: false,
    use_sliding_window: false,
    ...(sizes.tieEmbeddings ? {} : { tie_word_embeddings: false }),
  };
}
