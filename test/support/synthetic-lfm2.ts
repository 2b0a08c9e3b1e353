// Deterministic random LFM2 (Lfm2ForCausalLM) checkpoints: short-convolution blocks beside
// grouped-query attention blocks, the tensors transformers' modeling_lfm2.py declares.

import { Gaussian, SYNTHETIC_VOCAB, writeHfFolder } from "./synthetic-checkpoint.js";
import type { FloatTensorToWrite, SafetensorsDtype } from "./safetensors.js";

export interface Lfm2Spec {
  hidden: number;
  heads: number;
  kvHeads: number;
  /** One entry per layer, as config.json's layer_types. */
  layerTypes: ("conv" | "full_attention")[];
  /** block_ff_dim; the MLP width is derived from it (block_auto_adjust_ff_dim). */
  blockFfDim: number;
  blockMultipleOf: number;
  convLCache: number;
  seed: number;
  dtype: SafetensorsDtype;
}

/** A small LFM2 with the real model's first six layer types (conv, conv, attention, ...). */
export const TINY_LFM2: Lfm2Spec = {
  hidden: 128, heads: 4, kvHeads: 2,
  layerTypes: ["conv", "conv", "full_attention", "conv", "conv", "full_attention"],
  // 500 -> int(2 * 500 / 3) = 333 -> rounded up to a multiple of 64 = 384: the rounding matters.
  blockFfDim: 500, blockMultipleOf: 64, convLCache: 3, seed: 11, dtype: "BF16",
};

/** Lfm2MLP's width (transformers modeling_lfm2.py), written out independently of src/. */
export function lfm2FeedForwardWidth(spec: Lfm2Spec): number {
  const shrunk = Math.floor((2 * spec.blockFfDim) / 3);
  return spec.blockMultipleOf * Math.ceil(shrunk / spec.blockMultipleOf);
}

/**
 * LiquidAI/LFM2-350M's config.json (huggingface.co/LiquidAI/LFM2-350M/blob/main/config.json; found
 * through public transcriptions of it, LFM2-1.2B's checked to carry the same keys), every key kept;
 * the sizes, layer count, vocabulary, block_multiple_of and token ids are the spec's (LFM2's eos 7 is
 * the copied SentencePiece tokenizer's 2). intermediate_size equals block_ff_dim there, as here.
 */
export function lfm2Config(spec: Lfm2Spec): Record<string, unknown> {
  return {
    architectures: ["Lfm2ForCausalLM"],
    block_auto_adjust_ff_dim: true,
    block_dim: spec.hidden,
    block_ff_dim: spec.blockFfDim,
    block_ffn_dim_multiplier: 1.0,
    block_mlp_init_scale: 1.0,
    block_multiple_of: spec.blockMultipleOf,
    block_norm_eps: 1e-5,
    block_out_init_scale: 1.0,
    block_use_swiglu: true,
    block_use_xavier_init: true,
    bos_token_id: 1,
    conv_L_cache: spec.convLCache,
    conv_bias: false,
    conv_dim: spec.hidden,
    conv_dim_out: spec.hidden,
    conv_use_xavier_init: true,
    eos_token_id: 2,
    full_attn_idxs: spec.layerTypes.flatMap((type, i) => (type === "full_attention" ? [i] : [])),
    hidden_size: spec.hidden,
    initializer_range: 0.02,
    intermediate_size: spec.blockFfDim,
    layer_types: spec.layerTypes,
    max_position_embeddings: 128000,
    model_type: "lfm2",
    norm_eps: 1e-5,
    num_attention_heads: spec.heads,
    num_heads: spec.heads,
    num_hidden_layers: spec.layerTypes.length,
    num_key_value_heads: spec.kvHeads,
    pad_token_id: 0,
    rope_theta: 1000000.0,
    torch_dtype: { F32: "float32", BF16: "bfloat16", F16: "float16" }[spec.dtype],
    transformers_version: "4.54.0.dev0",
    use_cache: true,
    use_pos_enc: true,
    vocab_size: SYNTHETIC_VOCAB,
  };
}

/** HF-named tensors; no lm_head: LFM2 ties its output to the embedding. */
export function lfm2Tensors(spec: Lfm2Spec): FloatTensorToWrite[] {
  const g = new Gaussian(spec.seed);
  const { hidden, heads, kvHeads, dtype } = spec;
  const headDim = hidden / heads;
  const ff = lfm2FeedForwardWidth(spec);
  const tensors: FloatTensorToWrite[] = [];
  const add = (name: string, shape: number[], data: Float32Array) => tensors.push({ name, shape, data, dtype });
  const matrix = (name: string, out: number, inp: number, gain: number) => add(name, [out, inp], g.fill(out * inp, 0, gain / Math.sqrt(inp)));
  const norm = (name: string, width: number) => add(name, [width], g.fill(width, 1, 0.1));
  // Tied: the embedding is also the output layer, scaled for logits of a few units.
  add("model.embed_tokens.weight", [SYNTHETIC_VOCAB, hidden], g.fill(SYNTHETIC_VOCAB * hidden, 0, 3 / Math.sqrt(hidden)));
  spec.layerTypes.forEach((type, l) => {
    const p = `model.layers.${l}`;
    norm(`${p}.operator_norm.weight`, hidden);
    if (type === "full_attention") {
      matrix(`${p}.self_attn.q_proj.weight`, heads * headDim, hidden, 1);
      matrix(`${p}.self_attn.k_proj.weight`, kvHeads * headDim, hidden, 1);
      matrix(`${p}.self_attn.v_proj.weight`, kvHeads * headDim, hidden, 1);
      norm(`${p}.self_attn.q_layernorm.weight`, headDim);
      norm(`${p}.self_attn.k_layernorm.weight`, headDim);
      matrix(`${p}.self_attn.out_proj.weight`, hidden, heads * headDim, 0.5);
    } else {
      // nn.Conv1d(groups=channels) weight: [channels, 1, kernel].
      add(`${p}.conv.conv.weight`, [hidden, 1, spec.convLCache], g.fill(hidden * spec.convLCache, 0, 0.6));
      matrix(`${p}.conv.in_proj.weight`, 3 * hidden, hidden, 1.5);
      matrix(`${p}.conv.out_proj.weight`, hidden, hidden, 0.5);
    }
    norm(`${p}.ffn_norm.weight`, hidden);
    matrix(`${p}.feed_forward.w1.weight`, ff, hidden, 1);
    matrix(`${p}.feed_forward.w3.weight`, ff, hidden, 1);
    matrix(`${p}.feed_forward.w2.weight`, hidden, ff, 0.5);
  });
  norm("model.embedding_norm.weight", hidden);
  return tensors;
}

export function writeLfm2Checkpoint(dir: string, spec: Lfm2Spec = TINY_LFM2): void {
  writeHfFolder(dir, lfm2Config(spec), lfm2Tensors(spec));
}
