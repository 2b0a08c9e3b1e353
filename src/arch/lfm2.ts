import { UserError } from "../errors.js";
import { u32 } from "../writers/gguf/metadata.js";
import type { ConfigReader } from "./config.js";
import { TENSOR_ROLES, type TensorRole } from "./tensor-names.js";
import { PLAIN_DECODER, type Architecture } from "./types.js";

/** Roles every LFM2 block holds: the operator norm and the SwiGLU feed-forward. */
const SHARED_BLOCK: readonly TensorRole[] = ["attn_norm", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"];
const ATTENTION_BLOCK: readonly TensorRole[] = [...SHARED_BLOCK, "attn_q", "attn_k", "attn_v", "attn_output", "attn_q_norm", "attn_k_norm"];
const CONV_BLOCK: readonly TensorRole[] = [...SHARED_BLOCK, "shortconv_conv", "shortconv_in_proj", "shortconv_out_proj"];

/**
 * Which layers attend, as transformers' Lfm2Config decides: `layer_types` when given, else
 * `full_attn_idxs`, else every layer (configuration_lfm2.py).
 */
function attentionLayers(config: ConfigReader): boolean[] {
  const layers = config.integer(["num_hidden_layers"]);
  const types = config.config["layer_types"];
  if (Array.isArray(types)) {
    if (types.length !== layers) throw new UserError(`'layer_types' lists ${types.length} layers, num_hidden_layers is ${layers}`, { file: "config.json" });
    return types.map((type, i) => {
      if (type !== "full_attention" && type !== "conv") throw new UserError(`layer_types[${i}] is '${String(type)}'; LFM2 layers are 'conv' or 'full_attention'`, { file: "config.json" });
      return type === "full_attention";
    });
  }
  const indices = config.config["full_attn_idxs"];
  if (Array.isArray(indices)) return Array.from({ length: layers }, (_, i) => indices.includes(i));
  return Array.from({ length: layers }, () => true);
}

/**
 * The MLP width: `block_ff_dim`, shrunk to 2/3, scaled by `block_ffn_dim_multiplier` and rounded up
 * to `block_multiple_of` when `block_auto_adjust_ff_dim` (transformers' Lfm2MLP, llama.cpp's
 * LFM2Model._add_feed_forward_length; both truncate with int()).
 */
function feedForwardWidth(config: ConfigReader): number {
  let width = config.integer(["block_ff_dim", "intermediate_size"]);
  if (!config.boolean("block_auto_adjust_ff_dim", true)) return width;
  width = Math.trunc((2 * width) / 3);
  const multiplier = config.optionalNumber(["block_ffn_dim_multiplier"]);
  if (multiplier !== undefined) width = Math.trunc(multiplier * width);
  const multiple = config.optionalNumber(["block_multiple_of"]) ?? 256;
  return multiple * Math.ceil(width / multiple);
}

/**
 * Liquid AI's LFM2 (Lfm2ForCausalLM): blocks are either grouped-query attention with per-head
 * q/k RMSNorm, or a gated short convolution (in_proj -> B, C, x; conv over the last
 * conv_L_cache positions of B*x; C times that; out_proj). llama.cpp: conversion/lfm2.py,
 * src/models/lfm2.cpp (NeoX RoPE: rows stay as HF stores them); the conv state is its recurrent memory.
 */
export const lfm2: Architecture = {
  gguf: "lfm2",
  hfArchitectures: ["Lfm2ForCausalLM", "LFM2ForCausalLM"],
  formats: ["gguf", "mlx"],
  unsupportedBecause: {
    onnx: "onnxruntime-genai's model builder has no LFM2 (no layout for its short-convolution state), and edgequant's ONNX decoder graph has no short convolution",
  },
  tensors: ["token_embd", "token_embd_norm", "output", ...new Set([...ATTENTION_BLOCK, ...CONV_BLOCK])],
  hfNames: {
    attn_norm: ["model.layers.{bid}.operator_norm"],
    attn_output: ["model.layers.{bid}.self_attn.out_proj"],
    attn_q_norm: ["model.layers.{bid}.self_attn.q_layernorm"],
    attn_k_norm: ["model.layers.{bid}.self_attn.k_layernorm"],
    ffn_norm: ["model.layers.{bid}.ffn_norm"],
    ffn_gate: ["model.layers.{bid}.feed_forward.w1"],
    ffn_up: ["model.layers.{bid}.feed_forward.w3"],
    ffn_down: ["model.layers.{bid}.feed_forward.w2"],
  },
  interleaveRopeRows: false,
  features: () => ({ ...PLAIN_DECODER, qkNorm: true }),
  blockRoles: (config) => {
    const attention = attentionLayers(config);
    return (block) => (attention[block] ? ATTENTION_BLOCK : CONV_BLOCK);
  },
  hparams: (hparams, config) => ({ ...hparams, intermediateSize: feedForwardWidth(config) }),
  extraMetadata: (_hparams, config) => [["lfm2.shortconv.l_cache", u32(config.integer(["conv_L_cache"]))]],
  llamaCppGraph: { shortConv: true, outputNorm: `${TENSOR_ROLES.token_embd_norm.gguf}.weight` },
  checkConfig: (config) => {
    // llama.cpp's lfm2 graph has no convolution biases; a checkpoint with them would not load.
    if (config.boolean("conv_bias", false)) throw new UserError("conv_bias is true; llama.cpp's LFM2 graph has no convolution biases", { file: "config.json" });
    if (config.integer(["conv_L_cache"]) < 2) throw new UserError("'conv_L_cache' must be at least 2 (llama.cpp keeps conv_L_cache - 1 past positions)", { file: "config.json" });
    attentionLayers(config);
  },
};
