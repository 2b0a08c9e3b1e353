// Deterministic random Hugging Face checkpoints for llama / qwen2 / qwen3, used to test the
// converter on architectures for which we have no trained fixture.
//
// Weights are scaled by fan-in so activations stay O(1) through the network and the final
// logits have a standard deviation of roughly 3 (a clear top-1 at most positions rather
// than a flat distribution). Tokenizer files are copied from test/fixtures/tiny-llama so
// llama.cpp gets a real 4096-piece SentencePiece vocabulary.

import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { smollm3Config } from "./synthetic-smollm3.js";
import { writeSafetensors, type FloatTensorToWrite, type SafetensorsDtype, type TensorToWrite } from "./safetensors.js";
import { gemma3Config, gemma3Tensors } from "./synthetic-gemma3.js";
import { fusePhi3Projections, miniCpm4Config, phi35Config, phi4MiniConfig, ternariseLinears } from "./synthetic-phi3.js";

export type SyntheticModelType = "llama" | "qwen2" | "qwen3" | "bitnet" | "minicpm" | "granite" | "smollm3" | "phi3.5" | "phi4-mini" | "minicpm4" | "bitcpm4" | "gemma3";

export interface SyntheticSpec {
  modelType: SyntheticModelType;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  intermediate: number;
  vocab: number;
  seed: number;
  dtype: "F32" | "BF16" | "F16";
  tieEmbeddings?: boolean;
  /** LongRoPE models: original_max_position_embeddings, shrunk so that a short test context uses the long factors. */
  originalContext?: number;
}

export const TOKENIZER_SOURCE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "../fixtures/tiny-llama");
export const TOKENIZER_FILES = ["tokenizer.model", "tokenizer_config.json", "special_tokens_map.json"] as const;
/** Vocabulary size of the copied SentencePiece tokenizer; synthetic checkpoints must match it. */
export const SYNTHETIC_VOCAB = 4096;
const BOS_ID = 1;
const EOS_ID = 2;

const ARCHITECTURE_NAME: Record<SyntheticModelType, string> = {
  llama: "LlamaForCausalLM",
  qwen2: "Qwen2ForCausalLM",
  qwen3: "Qwen3ForCausalLM",
  bitnet: "BitnetForCausalLM",
  minicpm: "MiniCPMForCausalLM",
  granite: "GraniteForCausalLM",
  smollm3: "SmolLM3ForCausalLM",
  "phi3.5": "Phi3ForCausalLM",
  "phi4-mini": "Phi3ForCausalLM",
  minicpm4: "MiniCPMForCausalLM",
  bitcpm4: "MiniCPMForCausalLM",
  gemma3: "Gemma3ForCausalLM",
};

const TORCH_DTYPE: Record<SafetensorsDtype, string> = { F32: "float32", BF16: "bfloat16", F16: "float16" };

// ---------------------------------------------------------------------------
// Seeded randomness

/** mulberry32: small, fast, good enough for test weights. */
function uniformSource(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class Gaussian {
  private readonly uniform: () => number;
  private spare: number | null = null;

  constructor(seed: number) {
    this.uniform = uniformSource(seed);
  }

  /** Standard normal sample (Box-Muller). */
  next(): number {
    if (this.spare !== null) {
      const s = this.spare;
      this.spare = null;
      return s;
    }
    let u = 0;
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  fill(count: number, mean: number, std: number): Float32Array {
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) out[i] = mean + std * this.next();
    return out;
  }
}

// ---------------------------------------------------------------------------
// Config and tensors

function validate(spec: SyntheticSpec): void {
  const positive = ["hidden", "layers", "heads", "kvHeads", "headDim", "intermediate", "vocab"] as const;
  for (const key of positive) {
    if (!Number.isInteger(spec[key]) || spec[key] <= 0) throw new Error(`synthetic checkpoint: ${key} must be a positive integer`);
  }
  if (spec.heads % spec.kvHeads !== 0) throw new Error("synthetic checkpoint: heads must be a multiple of kvHeads");
  if (spec.headDim % 2 !== 0) throw new Error("synthetic checkpoint: headDim must be even (RoPE)");
  if (spec.vocab !== SYNTHETIC_VOCAB) {
    throw new Error(`synthetic checkpoint: vocab must be ${SYNTHETIC_VOCAB} to match the copied tokenizer.model (got ${spec.vocab})`);
  }
}

/** BitNet has no separate lm_head (llama.cpp's bitnet graph reuses the embedding); SmolLM3 ties by default. */
function tiedEmbeddings(spec: SyntheticSpec): boolean {
  return spec.tieEmbeddings ?? (spec.modelType === "bitnet" || spec.modelType === "smollm3" || spec.modelType === "phi4-mini" || spec.modelType === "gemma3");
}

/** config.json contents with the keys transformers writes for the given architecture. */
export function syntheticConfig(spec: SyntheticSpec): Record<string, unknown> {
  const common = {
    architectures: [ARCHITECTURE_NAME[spec.modelType]],
    model_type: spec.modelType,
    hidden_size: spec.hidden,
    intermediate_size: spec.intermediate,
    num_hidden_layers: spec.layers,
    num_attention_heads: spec.heads,
    num_key_value_heads: spec.kvHeads,
    head_dim: spec.headDim,
    hidden_act: "silu",
    max_position_embeddings: 2048,
    initializer_range: 0.02,
    rms_norm_eps: 1e-6,
    rope_theta: spec.modelType === "llama" ? 10000.0 : 1000000.0,
    rope_scaling: null,
    vocab_size: spec.vocab,
    tie_word_embeddings: tiedEmbeddings(spec),
    bos_token_id: BOS_ID,
    eos_token_id: EOS_ID,
    attention_dropout: 0.0,
    use_cache: true,
    torch_dtype: TORCH_DTYPE[spec.dtype],
    transformers_version: "4.51.0",
  };
  switch (spec.modelType) {
    case "llama":
      return { ...common, attention_bias: false, mlp_bias: false, pretraining_tp: 1 };
    case "qwen2":
      return { ...common, use_sliding_window: false, sliding_window: 4096, max_window_layers: spec.layers };
    case "qwen3":
      return { ...common, attention_bias: false, use_sliding_window: false, sliding_window: null, max_window_layers: spec.layers };
    // 1bitLLM/bitnet_b1_58's keys (SiLU gate, as llama.cpp's bitnet graph computes it).
    case "bitnet":
      return { ...common, rope_theta: 10000.0, attention_bias: false, pretraining_tp: 1 };
    // openbmb/MiniCPM-2B's muP keys; dim_model_base below hidden so the logit scale is not 1.
    case "minicpm":
      return { ...common, rope_theta: 10000.0, scale_emb: 12, scale_depth: 1.4, dim_model_base: spec.hidden / 2 };
    case "granite":
      return graniteConfig(spec, common);
    case "smollm3":
      return smollm3Config({ layers: spec.layers, tieEmbeddings: tiedEmbeddings(spec) }, common);
    case "phi3.5":
      return phi35Config(spec, common);
    case "phi4-mini":
      return phi4MiniConfig(spec, common);
    case "minicpm4":
    case "bitcpm4":
      return miniCpm4Config(spec, common);
    case "gemma3":
      return gemma3Config(spec, common);
  }
}

/**
 * ibm-granite/granite-3.3-2b-instruct's config.json (huggingface.co/ibm-granite/granite-3.3-2b-instruct,
 * config.json), every key and flag kept; only the sizes, layer count, vocabulary and token ids are
 * the synthetic spec's. Granite has no head_dim key (llama.cpp's converter ignores one).
 */
function graniteConfig(spec: SyntheticSpec, common: Record<string, unknown>): Record<string, unknown> {
  const { head_dim: _headDim, ...sized } = common;
  return {
    ...sized,
    attention_bias: false,
    attention_dropout: 0.0,
    attention_multiplier: 0.015625,
    embedding_multiplier: 12.0,
    hidden_act: "silu",
    initializer_range: 0.02,
    logits_scaling: 8.0,
    max_position_embeddings: 131072,
    mlp_bias: false,
    model_type: "granite",
    pad_token_id: 0,
    residual_multiplier: 0.22,
    rms_norm_eps: 1e-5,
    rope_scaling: null,
    rope_theta: 10000000.0,
    transformers_version: "4.49.0",
    use_cache: true,
  };
}

/**
 * The checkpoint's tensors (HF names, [out, in] Linear layout) as float32 values, before
 * encoding to spec.dtype. Exposed so tests can edit weights before writing.
 */
export function syntheticTensors(spec: SyntheticSpec): FloatTensorToWrite[] {
  validate(spec);
  const g = new Gaussian(spec.seed);
  const { hidden, heads, kvHeads, headDim, intermediate, vocab, dtype } = spec;
  const tied = tiedEmbeddings(spec);
  const tensors: FloatTensorToWrite[] = [];
  const add = (name: string, shape: number[], data: Float32Array): void => {
    tensors.push({ name, shape, data, dtype });
  };
  const matrix = (name: string, out: number, inp: number, gain: number): void => add(name, [out, inp], g.fill(out * inp, 0, gain / Math.sqrt(inp)));
  const norm = (name: string, width: number): void => add(name, [width], g.fill(width, 1, 0.1));
  const bias = (name: string, width: number): void => add(name, [width], g.fill(width, 0, 0.1));
  if (spec.modelType === "gemma3") {
    gemma3Tensors(spec, add, (count, mean, std) => g.fill(count, mean, std));
    return tensors;
  }

  // When tied, the embedding doubles as lm_head, so scale it for ~3-sigma logits; otherwise unit scale.
  add("model.embed_tokens.weight", [vocab, hidden], g.fill(vocab * hidden, 0, tied ? 3 / Math.sqrt(hidden) : 1));
  for (let l = 0; l < spec.layers; l++) {
    const p = `model.layers.${l}`;
    norm(`${p}.input_layernorm.weight`, hidden);
    matrix(`${p}.self_attn.q_proj.weight`, heads * headDim, hidden, 1);
    matrix(`${p}.self_attn.k_proj.weight`, kvHeads * headDim, hidden, 1);
    matrix(`${p}.self_attn.v_proj.weight`, kvHeads * headDim, hidden, 1);
    if (spec.modelType === "qwen2") {
      bias(`${p}.self_attn.q_proj.bias`, heads * headDim);
      bias(`${p}.self_attn.k_proj.bias`, kvHeads * headDim);
      bias(`${p}.self_attn.v_proj.bias`, kvHeads * headDim);
    }
    if (spec.modelType === "qwen3") {
      norm(`${p}.self_attn.q_norm.weight`, headDim);
      norm(`${p}.self_attn.k_norm.weight`, headDim);
    }
    if (spec.modelType === "bitnet") norm(`${p}.self_attn.inner_attn_ln.weight`, heads * headDim);
    matrix(`${p}.self_attn.o_proj.weight`, hidden, heads * headDim, 0.5);
    norm(`${p}.post_attention_layernorm.weight`, hidden);
    matrix(`${p}.mlp.gate_proj.weight`, intermediate, hidden, 1);
    matrix(`${p}.mlp.up_proj.weight`, intermediate, hidden, 1);
    if (spec.modelType === "bitnet") norm(`${p}.mlp.ffn_layernorm.weight`, intermediate);
    matrix(`${p}.mlp.down_proj.weight`, hidden, intermediate, 0.5);
  }
  norm("model.norm.weight", hidden);
  if (!tied) matrix("lm_head.weight", vocab, hidden, 3);
  if (spec.modelType === "phi3.5" || spec.modelType === "phi4-mini") return fusePhi3Projections(tensors);
  return spec.modelType === "bitcpm4" ? ternariseLinears(tensors) : tensors;
}

/** Writes config.json, model.safetensors and the tokenizer files for an arbitrary tensor list. */
export function writeHfFolder(dir: string, config: Record<string, unknown>, tensors: TensorToWrite[]): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "config.json"), JSON.stringify(config, null, 2) + "\n");
  writeFileSync(join(dir, "generation_config.json"), JSON.stringify({ bos_token_id: BOS_ID, eos_token_id: EOS_ID }, null, 2) + "\n");
  writeSafetensors(join(dir, "model.safetensors"), tensors);
  for (const file of TOKENIZER_FILES) copyFileSync(join(TOKENIZER_SOURCE_DIR, file), join(dir, file));
}

/** Writes a complete HF-style model folder for `spec` into `dir` (created if needed). */
export function writeSyntheticCheckpoint(dir: string, spec: SyntheticSpec): void {
  writeHfFolder(dir, syntheticConfig(spec), syntheticTensors(spec));
}
