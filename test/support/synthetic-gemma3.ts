// Gemma 3's synthetic checkpoint: config.json transcribed from the real model and the extra
// tensors of its block (q/k norms, pre/post FFN norms), hooked into synthetic-checkpoint.ts.

/** What synthetic-checkpoint.ts passes in: the spec's sizes and its seeded normal source. */
export interface Gemma3Sizes {
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  intermediate: number;
}

/** Small enough that the test prompts (40-64 tokens) run past it on sliding layers. */
export const GEMMA3_TEST_WINDOW = 16;

/** transformers' Gemma3TextConfig: every 6th layer is global. */
function layerTypes(layers: number): string[] {
  return Array.from({ length: layers }, (_, i) => ((i + 1) % 6 === 0 ? "full_attention" : "sliding_attention"));
}

/**
 * google/gemma-3-270m's config.json (huggingface.co/google/gemma-3-270m, config.json; transformers
 * 4.55), every key kept; sizes, layer count, vocabulary, window and token ids are the synthetic spec's.
 * It has no hidden_act (hidden_activation instead) and no tie_word_embeddings (Gemma 3 ties by default).
 */
export function gemma3Config(spec: Gemma3Sizes, common: Record<string, unknown>): Record<string, unknown> {
  const { hidden_act: _act, tie_word_embeddings: _tie, rope_scaling: _rope, ...sized } = common;
  return {
    ...sized,
    _sliding_window_pattern: 6,
    architectures: ["Gemma3ForCausalLM"],
    attention_bias: false,
    attention_dropout: 0.0,
    attn_logit_softcapping: null,
    final_logit_softcapping: null,
    hidden_activation: "gelu_pytorch_tanh",
    initializer_range: 0.02,
    layer_types: layerTypes(spec.layers),
    max_position_embeddings: 32768,
    model_type: "gemma3_text",
    pad_token_id: 0,
    // Equal to head_dim, as in every Gemma 3 but the 27B.
    query_pre_attn_scalar: spec.headDim,
    rms_norm_eps: 1e-6,
    rope_local_base_freq: 10000.0,
    rope_scaling: null,
    rope_theta: 1000000.0,
    sliding_window: GEMMA3_TEST_WINDOW,
    transformers_version: "4.55.0.dev0",
    use_bidirectional_attention: false,
    use_cache: true,
  };
}

type Add = (name: string, shape: number[], data: Float32Array) => void;
type Fill = (count: number, mean: number, std: number) => Float32Array;

/**
 * The checkpoint's tensors in HF names. Norm weights are stored as w with the model computing
 * (1 + w), so they are drawn around 0: a converter that forgets the 1 is off by far.
 */
export function gemma3Tensors(spec: Gemma3Sizes & { vocab: number }, add: Add, fill: Fill): void {
  const { hidden, heads, kvHeads, headDim, intermediate, vocab } = spec;
  const matrix = (name: string, out: number, inp: number, gain: number) => add(name, [out, inp], fill(out * inp, 0, gain / Math.sqrt(inp)));
  const norm = (name: string, width: number) => add(name, [width], fill(width, 0, 0.1));
  add("model.embed_tokens.weight", [vocab, hidden], fill(vocab * hidden, 0, 3 / Math.sqrt(hidden)));
  for (let l = 0; l < spec.layers; l++) {
    const p = `model.layers.${l}`;
    norm(`${p}.input_layernorm.weight`, hidden);
    matrix(`${p}.self_attn.q_proj.weight`, heads * headDim, hidden, 1);
    matrix(`${p}.self_attn.k_proj.weight`, kvHeads * headDim, hidden, 1);
    matrix(`${p}.self_attn.v_proj.weight`, kvHeads * headDim, hidden, 1);
    norm(`${p}.self_attn.q_norm.weight`, headDim);
    norm(`${p}.self_attn.k_norm.weight`, headDim);
    matrix(`${p}.self_attn.o_proj.weight`, hidden, heads * headDim, 0.5);
    norm(`${p}.post_attention_layernorm.weight`, hidden);
    norm(`${p}.pre_feedforward_layernorm.weight`, hidden);
    matrix(`${p}.mlp.gate_proj.weight`, intermediate, hidden, 1);
    matrix(`${p}.mlp.up_proj.weight`, intermediate, hidden, 1);
    matrix(`${p}.mlp.down_proj.weight`, hidden, intermediate, 0.5);
    norm(`${p}.post_feedforward_layernorm.weight`, hidden);
  }
  norm("model.norm.weight", hidden);
}

/**
 * google/gemma-3-4b-it's config.json (huggingface.co/google/gemma-3-4b-it, config.json;
 * transformers 4.50), every key kept. Its text_config names only hidden/intermediate sizes, layer
 * count, rope_scaling (linear, factor 8, global layers only) and sliding_window, leaving the rest to
 * Gemma3TextConfig's defaults; to shrink the model, the defaults that are sizes (heads, KV heads,
 * head_dim, vocabulary, query_pre_attn_scalar = head_dim) are written out too.
 */
export function gemma3WrapperConfig(spec: Gemma3Sizes & { vocab: number }): Record<string, unknown> {
  return {
    architectures: ["Gemma3ForConditionalGeneration"],
    boi_token_index: 255999,
    eoi_token_index: 256000,
    eos_token_id: [1, 106],
    image_token_index: 262144,
    initializer_range: 0.02,
    mm_tokens_per_image: 256,
    model_type: "gemma3",
    text_config: {
      hidden_size: spec.hidden,
      intermediate_size: spec.intermediate,
      model_type: "gemma3_text",
      num_hidden_layers: spec.layers,
      rope_scaling: { factor: 8.0, rope_type: "linear" },
      sliding_window: GEMMA3_TEST_WINDOW,
      num_attention_heads: spec.heads,
      num_key_value_heads: spec.kvHeads,
      head_dim: spec.headDim,
      query_pre_attn_scalar: spec.headDim,
      vocab_size: spec.vocab,
    },
    torch_dtype: "bfloat16",
    transformers_version: "4.50.0.dev0",
    vision_config: {
      hidden_size: 1152,
      image_size: 896,
      intermediate_size: 4304,
      model_type: "siglip_vision_model",
      num_attention_heads: 16,
      num_hidden_layers: 27,
      patch_size: 14,
      vision_use_head: false,
    },
  };
}

/** transformers 4.50 saved the wrapper's text tower under language_model.model.* (later model.language_model.*). */
export function gemma3WrapperTensorName(name: string): string {
  return name.replace(/^model\./, "language_model.model.");
}

/** A few vision tower tensors (shapes of SigLIP's, shrunk) that only the multimodal projector file would use. */
export function gemma3VisionTensors(add: Add, fill: Fill): void {
  add("vision_tower.vision_model.embeddings.patch_embedding.bias", [8], fill(8, 0, 0.1));
  add("vision_tower.vision_model.post_layernorm.weight", [8], fill(8, 1, 0.1));
  add("multi_modal_projector.mm_soft_emb_norm.weight", [8], fill(8, 0, 0.1));
}
