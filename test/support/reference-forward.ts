// Independent reference forward pass for Hugging Face decoder-only checkpoints.
//
// This is the test oracle: it reads the HF folder directly (config.json + safetensors)
// and follows the transformers modelling code, in plain TypeScript with float64
// activations. It must share no code with src/ so that a bug in the converter cannot
// be mirrored here.
//
// Conventions (all in the HF weight layout, i.e. *before* any GGUF permutation):
//   - nn.Linear weight is [out_features, in_features], row-major; y = W x + b.
//   - RMSNorm: x / sqrt(mean(x^2) + eps) * weight.
//   - RoPE for llama / mistral / qwen2 / qwen3 in transformers is `rotate_half`:
//     dimension i is paired with i + d/2 (llama.cpp reaches the same result with
//     "normal" RoPE on permuted q/k weights, or with NeoX RoPE on unpermuted ones).
//   - Attention: causal, softmax(q.k * scale), GQA by repeating kv heads.
//   - MLP: down(act(gate(x)) * up(x)).

import { existsSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { GEMMA3_MODEL_TYPES, gemma3ReferenceLogits } from "./reference-gemma3.js";
import { longRopeTables, type RopeTables } from "./reference-longrope.js";
import { splitRows } from "./reference-phi3.js";
import { smollm3Options } from "./reference-smollm3.js";
import { SafetensorsFile, type DecodedTensor } from "./safetensors.js";

// ---------------------------------------------------------------------------
// Per-architecture options. Adding an architecture should mostly mean adding a row.

type Config = Record<string, unknown>;

export interface ArchitectureOptions {
  /** How rotary embeddings pair dimensions within a head, on the HF weight layout. */
  rope: "rotate_half" | "interleaved";
  /** Per-head RMSNorm on q and k (weights self_attn.{q,k}_norm.weight, shape [head_dim]) before RoPE. */
  qkNorm: boolean;
  /** Whether q/k/v projections carry biases; a function may read it from the config. */
  qkvBias: boolean | ((config: Config) => boolean);
  /** Whether o_proj carries a bias. */
  oBias: boolean | ((config: Config) => boolean);
  /** Whether gate/up/down projections carry biases. */
  mlpBias: boolean | ((config: Config) => boolean);
  /** transformers' default for tie_word_embeddings when config.json omits it. */
  tieEmbeddingsDefault: boolean;
  /** Multiplier applied to the token embeddings (e.g. MiniCPM's scale_emb). */
  embeddingScale: (config: Config) => number;
  /** Multiplier on each sub-layer output before it is added to the residual stream (MiniCPM's scale_depth/sqrt(L)). */
  residualScale: (config: Config) => number;
  /** Multiplier on the final hidden state before lm_head (MiniCPM divides by hidden/dim_model_base). */
  logitInputScale: (config: Config) => number;
  /** The q.k scale; 1/sqrt(head_dim) unless the model sets its own (Granite's attention_multiplier). */
  attentionScale?: (config: Config) => number;
  /** Whether each layer applies RoPE (all do unless given; SmolLM3's NoPE layers do not). */
  ropeLayers?: (config: Config) => boolean[];
  /** BitNet: RMSNorm before o_proj (attn sub-norm) and before down_proj (ffn sub-norm). */
  subNorms: boolean;
  /** BitNet master weights: linear weights are ternarised (absmean) as the model does at inference. */
  ternariseLinears: boolean;
  /** Phi-3: q/k/v stored as one qkv_proj, gate/up as one gate_up_proj. */
  fusedProjections?: boolean;
}

const one = (): number => 1;
const fromConfigFlag =
  (key: string) =>
  (config: Config): boolean =>
    config[key] === true;

const LLAMA_LIKE: ArchitectureOptions = {
  rope: "rotate_half",
  qkNorm: false,
  qkvBias: fromConfigFlag("attention_bias"),
  oBias: fromConfigFlag("attention_bias"),
  mlpBias: fromConfigFlag("mlp_bias"),
  tieEmbeddingsDefault: false,
  embeddingScale: one,
  residualScale: one,
  logitInputScale: one,
  subNorms: false,
  ternariseLinears: false,
};

export const ARCHITECTURES: Readonly<Record<string, ArchitectureOptions>> = {
  llama: LLAMA_LIKE,
  // Mistral's sliding_window is not modelled: it only matters for prompts longer than the window.
  mistral: { ...LLAMA_LIKE, qkvBias: false, oBias: false, mlpBias: false },
  // Qwen2: q/k/v have biases, o_proj and MLP do not.
  qwen2: { ...LLAMA_LIKE, qkvBias: true, oBias: false, mlpBias: false },
  // Qwen3: no biases by default (attention_bias), per-head q/k RMSNorm before RoPE.
  qwen3: { ...LLAMA_LIKE, qkNorm: true, qkvBias: fromConfigFlag("attention_bias"), oBias: fromConfigFlag("attention_bias"), mlpBias: false },
  // BitNet b1.58 (1bitLLM layout, as llama.cpp's bitnet graph computes it): sub-norms, ternarised
  // master weights, SiLU gate, tied output; no activation quantisation (llama.cpp has none at F32).
  bitnet: { ...LLAMA_LIKE, qkvBias: false, oBias: false, mlpBias: false, tieEmbeddingsDefault: true, subNorms: true, ternariseLinears: true },
  // MiniCPM: muP scales on embeddings, residual branches and the lm_head input.
  minicpm: {
    ...LLAMA_LIKE,
    qkvBias: false,
    oBias: false,
    mlpBias: false,
    embeddingScale: (config) => num(config, "scale_emb"),
    residualScale: (config) => num(config, "scale_depth") / Math.sqrt(num(config, "num_hidden_layers")),
    logitInputScale: (config) => num(config, "dim_model_base") / num(config, "hidden_size"),
  },
  // Granite 3.x (transformers' modeling_granite.py): muP multipliers on the embeddings, the
  // attention scores and the residual branches; logits divided by logits_scaling.
  granite: {
    ...LLAMA_LIKE,
    embeddingScale: (config) => num(config, "embedding_multiplier"),
    residualScale: (config) => num(config, "residual_multiplier"),
    logitInputScale: (config) => 1 / num(config, "logits_scaling"),
    attentionScale: (config) => num(config, "attention_multiplier"),
  },
  // Phi-3 / Phi-4-mini (transformers' modeling_phi3.py): fused projections, no biases; partial
  // rotary and LongRoPE are read from the config like every model's RoPE.
  phi3: { ...LLAMA_LIKE, qkvBias: false, oBias: false, mlpBias: false, fusedProjections: true },
  smollm3: smollm3Options(LLAMA_LIKE),
};

/**
 * BitNet's weight_quant, as the model applies it to its master weights: s = max(mean|W|, 1e-5),
 * W' = clamp(round_half_even(W * (1/s)), -1, 1) / (1/s), each step in float32.
 */
export function bitnetWeightQuant(weight: Float32Array): Float32Array {
  let sum = 0;
  for (const w of weight) sum += Math.abs(w);
  const s = Math.fround(Math.max(Math.fround(sum / weight.length), 1e-5));
  const inv = Math.fround(1 / s);
  return weight.map((w) => {
    const scaled = Math.fround(w * inv);
    const rounded = Math.abs(scaled - Math.trunc(scaled)) === 0.5 ? 2 * Math.round(scaled / 2) : Math.round(scaled);
    return Math.min(1, Math.max(-1, rounded)) / inv;
  });
}

const ACTIVATIONS: Record<string, (x: number) => number> = {
  silu: (x) => x / (1 + Math.exp(-x)),
  swish: (x) => x / (1 + Math.exp(-x)),
  relu: (x) => (x > 0 ? x : 0),
  gelu_pytorch_tanh: (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x))),
};

function resolveFlag(flag: boolean | ((config: Config) => boolean), config: Config): boolean {
  return typeof flag === "function" ? flag(config) : flag;
}

// ---------------------------------------------------------------------------
// Hyper-parameters

interface Hyper {
  modelType: string;
  arch: ArchitectureOptions;
  hidden: number;
  intermediate: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  vocab: number;
  eps: number;
  tieEmbeddings: boolean;
  /** Leading dimensions of each head that RoPE rotates (partial_rotary_factor). */
  rotaryDim: number;
  /** RoPE tables for a sequence of the given length (LongRoPE switches factors on it). */
  rope: (seqLen: number) => RopeTables;
  activation: (x: number) => number;
  embeddingScale: number;
  residualScale: number;
  logitInputScale: number;
  attentionScale: number;
  ropeLayers: boolean[];
}

function num(config: Config, key: string, fallback?: number): number {
  const value = config[key];
  if (typeof value === "number" && Number.isFinite(value)) return value;
  if (value === undefined || value === null) {
    if (fallback !== undefined) return fallback;
    throw new Error(`config.json: missing numeric "${key}"`);
  }
  throw new Error(`config.json: "${key}" is not a finite number: ${JSON.stringify(value)}`);
}

function ropeTables(config: Config, rotaryDim: number): (seqLen: number) => RopeTables {
  const scaling = config["rope_scaling"] as Config | null | undefined;
  const type = scaling ? ((scaling["rope_type"] ?? scaling["type"]) as string | undefined) : undefined;
  if (scaling && (type === "longrope" || type === "su")) return longRopeTables(config, scaling, rotaryDim, num(config, "rope_theta", 10000));
  const tables = { invFreq: ropeInverseFrequencies(config, rotaryDim), scale: 1 };
  return () => tables;
}

function ropeInverseFrequencies(config: Config, headDim: number): Float64Array {
  const theta = num(config, "rope_theta", 10000);
  const half = headDim / 2;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / Math.pow(theta, (2 * i) / headDim);

  const scaling = config["rope_scaling"] as Config | null | undefined;
  if (scaling == null) return inv;
  const type = (scaling["rope_type"] ?? scaling["type"]) as string | undefined;
  if (type === undefined || type === "default") return inv;
  if (type === "linear") {
    const factor = num(scaling, "factor");
    return inv.map((f) => f / factor);
  }
  if (type === "llama3") {
    const factor = num(scaling, "factor");
    const lowFactor = num(scaling, "low_freq_factor");
    const highFactor = num(scaling, "high_freq_factor");
    const originalContext = num(scaling, "original_max_position_embeddings");
    const lowWavelen = originalContext / lowFactor;
    const highWavelen = originalContext / highFactor;
    return inv.map((f) => {
      const wavelen = (2 * Math.PI) / f;
      if (wavelen < highWavelen) return f;
      if (wavelen > lowWavelen) return f / factor;
      const smooth = (originalContext / wavelen - lowFactor) / (highFactor - lowFactor);
      return (1 - smooth) * (f / factor) + smooth * f;
    });
  }
  throw new Error(`reference-forward: unsupported rope_scaling type ${JSON.stringify(type)}`);
}

function readHyper(config: Config): Hyper {
  const modelType = config["model_type"];
  if (typeof modelType !== "string") throw new Error('config.json: missing "model_type"');
  const arch = ARCHITECTURES[modelType];
  if (!arch) throw new Error(`reference-forward: unsupported model_type "${modelType}" (supported: ${Object.keys(ARCHITECTURES).join(", ")})`);
  const hidden = num(config, "hidden_size");
  const heads = num(config, "num_attention_heads");
  const kvHeads = num(config, "num_key_value_heads", heads);
  const headDim = num(config, "head_dim", hidden / heads);
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) throw new Error(`reference-forward: head_dim ${headDim} must be an even integer`);
  if (heads % kvHeads !== 0) throw new Error(`reference-forward: ${heads} heads not divisible by ${kvHeads} kv heads`);
  const actName = (config["hidden_act"] ?? "silu") as string;
  const activation = ACTIVATIONS[actName];
  if (!activation) throw new Error(`reference-forward: unsupported hidden_act "${actName}"`);
  const tie = config["tie_word_embeddings"];
  const rotaryDim = Math.trunc(headDim * num(config, "partial_rotary_factor", 1));
  return {
    modelType,
    arch,
    hidden,
    intermediate: num(config, "intermediate_size"),
    layers: num(config, "num_hidden_layers"),
    heads,
    kvHeads,
    headDim,
    vocab: num(config, "vocab_size"),
    eps: num(config, "rms_norm_eps", 1e-6),
    tieEmbeddings: typeof tie === "boolean" ? tie : arch.tieEmbeddingsDefault,
    rotaryDim,
    rope: ropeTables(config, rotaryDim),
    activation,
    embeddingScale: arch.embeddingScale(config),
    residualScale: arch.residualScale(config),
    logitInputScale: arch.logitInputScale(config),
    attentionScale: arch.attentionScale?.(config) ?? 1 / Math.sqrt(headDim),
    ropeLayers: arch.ropeLayers?.(config) ?? Array.from({ length: num(config, "num_hidden_layers") }, () => true),
  };
}

// ---------------------------------------------------------------------------
// Weights

interface Linear {
  out: number;
  in: number;
  weight: Float32Array; // [out, in]
  bias: Float32Array | null; // [out]
}

interface Layer {
  inputNorm: Float32Array;
  postAttentionNorm: Float32Array;
  q: Linear;
  k: Linear;
  v: Linear;
  o: Linear;
  qNorm: Float32Array | null;
  kNorm: Float32Array | null;
  attnSubNorm: Float32Array | null;
  ffnSubNorm: Float32Array | null;
  gate: Linear;
  up: Linear;
  down: Linear;
}

interface ReferenceModel {
  hyper: Hyper;
  embed: Float32Array; // [vocab, hidden]
  layers: Layer[];
  finalNorm: Float32Array;
  lmHead: Linear;
}

class TensorSource {
  private readonly files = new Map<string, SafetensorsFile>();
  private readonly owner = new Map<string, SafetensorsFile>();

  constructor(modelDir: string) {
    const indexPath = join(modelDir, "model.safetensors.index.json");
    const singlePath = join(modelDir, "model.safetensors");
    if (existsSync(indexPath)) {
      const index = JSON.parse(readFileSync(indexPath, "utf8")) as { weight_map: Record<string, string> };
      for (const [name, file] of Object.entries(index.weight_map)) {
        let shard = this.files.get(file);
        if (!shard) {
          shard = new SafetensorsFile(join(modelDir, file));
          this.files.set(file, shard);
        }
        if (!shard.has(name)) throw new Error(`${indexPath}: ${name} is mapped to ${file} but not stored there`);
        this.owner.set(name, shard);
      }
    } else if (existsSync(singlePath)) {
      const file = new SafetensorsFile(singlePath);
      for (const name of file.names()) this.owner.set(name, file);
    } else {
      throw new Error(`reference-forward: ${modelDir} has neither model.safetensors nor model.safetensors.index.json`);
    }
  }

  has(name: string): boolean {
    return this.owner.has(name);
  }

  get(name: string, shape: number[]): Float32Array {
    const file = this.owner.get(name);
    if (!file) throw new Error(`reference-forward: checkpoint has no tensor ${name}`);
    const tensor: DecodedTensor = file.read(name);
    if (tensor.shape.length !== shape.length || tensor.shape.some((d, i) => d !== shape[i])) {
      throw new Error(`reference-forward: ${name} has shape ${JSON.stringify(tensor.shape)}, expected ${JSON.stringify(shape)}`);
    }
    return tensor.data;
  }
}

function loadModel(modelDir: string): ReferenceModel {
  const config = JSON.parse(readFileSync(join(modelDir, "config.json"), "utf8")) as Config;
  const h = readHyper(config);
  const src = new TensorSource(modelDir);
  const { hidden, headDim, heads, kvHeads, intermediate, vocab, arch } = h;

  const linear = (prefix: string, out: number, inp: number, withBias: boolean): Linear => {
    const weight = src.get(`${prefix}.weight`, [out, inp]);
    return { out, in: inp, weight: arch.ternariseLinears ? bitnetWeightQuant(weight) : weight, bias: withBias ? src.get(`${prefix}.bias`, [out]) : null };
  };
  /** The first of several HF names that the checkpoint has (naming differs between BitNet releases). */
  const either = (names: string[], shape: number[]): Float32Array => src.get(names.find((name) => src.has(name)) ?? names[0]!, shape);
  const qkvBias = resolveFlag(arch.qkvBias, config);
  const oBias = resolveFlag(arch.oBias, config);
  const mlpBias = resolveFlag(arch.mlpBias, config);

  const layers: Layer[] = [];
  for (let l = 0; l < h.layers; l++) {
    const p = `model.layers.${l}`;
    const fused = arch.fusedProjections ? fusedLinears(src, p, h) : undefined;
    layers.push({
      inputNorm: src.get(`${p}.input_layernorm.weight`, [hidden]),
      postAttentionNorm: src.get(`${p}.post_attention_layernorm.weight`, [hidden]),
      q: fused?.q ?? linear(`${p}.self_attn.q_proj`, heads * headDim, hidden, qkvBias),
      k: fused?.k ?? linear(`${p}.self_attn.k_proj`, kvHeads * headDim, hidden, qkvBias),
      v: fused?.v ?? linear(`${p}.self_attn.v_proj`, kvHeads * headDim, hidden, qkvBias),
      o: linear(`${p}.self_attn.o_proj`, hidden, heads * headDim, oBias),
      qNorm: arch.qkNorm ? src.get(`${p}.self_attn.q_norm.weight`, [headDim]) : null,
      kNorm: arch.qkNorm ? src.get(`${p}.self_attn.k_norm.weight`, [headDim]) : null,
      attnSubNorm: arch.subNorms ? either([`${p}.self_attn.inner_attn_ln.weight`, `${p}.self_attn.attn_sub_norm.weight`], [heads * headDim]) : null,
      ffnSubNorm: arch.subNorms ? either([`${p}.mlp.ffn_layernorm.weight`, `${p}.mlp.ffn_sub_norm.weight`], [intermediate]) : null,
      gate: fused?.gate ?? linear(`${p}.mlp.gate_proj`, intermediate, hidden, mlpBias),
      up: fused?.up ?? linear(`${p}.mlp.up_proj`, intermediate, hidden, mlpBias),
      down: linear(`${p}.mlp.down_proj`, hidden, intermediate, mlpBias),
    });
  }
  const embed = src.get("model.embed_tokens.weight", [vocab, hidden]);
  const lmHead: Linear = h.tieEmbeddings
    ? { out: vocab, in: hidden, weight: embed, bias: null }
    : { out: vocab, in: hidden, weight: src.get("lm_head.weight", [vocab, hidden]), bias: null };
  return { hyper: h, embed, layers, finalNorm: src.get("model.norm.weight", [hidden]), lmHead };
}

/** Phi-3's qkv_proj and gate_up_proj, cut into the separate projections (no biases). */
function fusedLinears(src: TensorSource, p: string, h: Hyper): Pick<Layer, "q" | "k" | "v" | "gate" | "up"> {
  const { hidden, heads, kvHeads, headDim, intermediate } = h;
  const qkvRows = [heads * headDim, kvHeads * headDim, kvHeads * headDim];
  const [q, k, v] = splitRows(src.get(`${p}.self_attn.qkv_proj.weight`, [qkvRows[0]! + 2 * qkvRows[1]!, hidden]), qkvRows, hidden);
  const [gate, up] = splitRows(src.get(`${p}.mlp.gate_up_proj.weight`, [2 * intermediate, hidden]), [intermediate, intermediate], hidden);
  const lin = (out: number, weight: Float32Array): Linear => ({ out, in: hidden, weight, bias: null });
  return { q: lin(qkvRows[0]!, q!), k: lin(qkvRows[1]!, k!), v: lin(qkvRows[2]!, v!), gate: lin(intermediate, gate!), up: lin(intermediate, up!) };
}

// ---------------------------------------------------------------------------
// Kernels (float64 activations, float64 accumulation)

/** Y[t, :] = W X[t, :] + b for each of `rows` rows. */
function applyLinear(x: Float64Array, rows: number, lin: Linear): Float64Array {
  const { out, in: n, weight, bias } = lin;
  const y = new Float64Array(rows * out);
  const n4 = n - (n % 4);
  for (let t = 0; t < rows; t++) {
    const xo = t * n;
    for (let o = 0; o < out; o++) {
      const wo = o * n;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      let i = 0;
      for (; i < n4; i += 4) {
        s0 += weight[wo + i]! * x[xo + i]!;
        s1 += weight[wo + i + 1]! * x[xo + i + 1]!;
        s2 += weight[wo + i + 2]! * x[xo + i + 2]!;
        s3 += weight[wo + i + 3]! * x[xo + i + 3]!;
      }
      for (; i < n; i++) s0 += weight[wo + i]! * x[xo + i]!;
      y[t * out + o] = s0 + s1 + s2 + s3 + (bias ? bias[o]! : 0);
    }
  }
  return y;
}

/** In-place RMSNorm over consecutive groups of `width` values (rows, or heads within rows). */
function rmsNormGroups(x: Float64Array, width: number, weight: Float32Array, eps: number): Float64Array {
  const out = new Float64Array(x.length);
  for (let start = 0; start < x.length; start += width) {
    let ss = 0;
    for (let i = 0; i < width; i++) ss += x[start + i]! * x[start + i]!;
    const inv = 1 / Math.sqrt(ss / width + eps);
    for (let i = 0; i < width; i++) out[start + i] = x[start + i]! * inv * weight[i]!;
  }
  return out;
}

/** In-place RoPE on the first `rotaryDim` dimensions of each head of a [rows, nHeads * headDim] matrix; row t is at position t. */
function applyRope(x: Float64Array, rows: number, nHeads: number, headDim: number, rotaryDim: number, tables: RopeTables, style: ArchitectureOptions["rope"]): void {
  const half = rotaryDim / 2;
  const { invFreq, scale } = tables;
  for (let t = 0; t < rows; t++) {
    for (let i = 0; i < half; i++) {
      const angle = t * invFreq[i]!;
      const cos = Math.cos(angle) * scale;
      const sin = Math.sin(angle) * scale;
      for (let hd = 0; hd < nHeads; hd++) {
        const base = (t * nHeads + hd) * headDim;
        const a = style === "rotate_half" ? base + i : base + 2 * i;
        const b = style === "rotate_half" ? base + i + half : base + 2 * i + 1;
        const x1 = x[a]!;
        const x2 = x[b]!;
        x[a] = x1 * cos - x2 * sin;
        x[b] = x2 * cos + x1 * sin;
      }
    }
  }
}

/** Causal multi-head attention with grouped kv heads. Returns [rows, heads * headDim]. */
function causalAttention(q: Float64Array, k: Float64Array, v: Float64Array, rows: number, h: Hyper): Float64Array {
  const { heads, kvHeads, headDim } = h;
  const group = heads / kvHeads;
  const scale = h.attentionScale;
  const out = new Float64Array(rows * heads * headDim);
  const scores = new Float64Array(rows);
  for (let hd = 0; hd < heads; hd++) {
    const kvh = Math.floor(hd / group);
    for (let t = 0; t < rows; t++) {
      const qo = (t * heads + hd) * headDim;
      let max = -Infinity;
      for (let s = 0; s <= t; s++) {
        const ko = (s * kvHeads + kvh) * headDim;
        let dot = 0;
        for (let i = 0; i < headDim; i++) dot += q[qo + i]! * k[ko + i]!;
        const score = dot * scale;
        scores[s] = score;
        if (score > max) max = score;
      }
      let sum = 0;
      for (let s = 0; s <= t; s++) {
        const e = Math.exp(scores[s]! - max);
        scores[s] = e;
        sum += e;
      }
      for (let s = 0; s <= t; s++) {
        const p = scores[s]! / sum;
        const vo = (s * kvHeads + kvh) * headDim;
        for (let i = 0; i < headDim; i++) out[qo + i] = out[qo + i]! + p * v[vo + i]!;
      }
    }
  }
  return out;
}

function forward(model: ReferenceModel, tokens: number[]): Float32Array[] {
  const h = model.hyper;
  const T = tokens.length;
  const D = h.hidden;
  const x = new Float64Array(T * D);
  tokens.forEach((token, t) => {
    if (!Number.isInteger(token) || token < 0 || token >= h.vocab) throw new Error(`reference-forward: token ${token} at ${t} is outside vocab ${h.vocab}`);
    for (let i = 0; i < D; i++) x[t * D + i] = model.embed[token * D + i]! * h.embeddingScale;
  });

  const rope = h.rope(T);
  for (const [l, layer] of model.layers.entries()) {
    // --- self-attention block
    const normed = rmsNormGroups(x, D, layer.inputNorm, h.eps);
    let q = applyLinear(normed, T, layer.q);
    let k = applyLinear(normed, T, layer.k);
    const v = applyLinear(normed, T, layer.v);
    if (layer.qNorm && layer.kNorm) {
      q = rmsNormGroups(q, h.headDim, layer.qNorm, h.eps);
      k = rmsNormGroups(k, h.headDim, layer.kNorm, h.eps);
    }
    if (h.ropeLayers[l]) {
      applyRope(q, T, h.heads, h.headDim, h.rotaryDim, rope, h.arch.rope);
      applyRope(k, T, h.kvHeads, h.headDim, h.rotaryDim, rope, h.arch.rope);
    }
    let attended = causalAttention(q, k, v, T, h);
    if (layer.attnSubNorm) attended = rmsNormGroups(attended, h.heads * h.headDim, layer.attnSubNorm, h.eps);
    const attnOut = applyLinear(attended, T, layer.o);
    for (let i = 0; i < x.length; i++) x[i] = x[i]! + h.residualScale * attnOut[i]!;

    // --- MLP block
    const normed2 = rmsNormGroups(x, D, layer.postAttentionNorm, h.eps);
    const gate = applyLinear(normed2, T, layer.gate);
    const up = applyLinear(normed2, T, layer.up);
    let hiddenActs: Float64Array = gate;
    for (let i = 0; i < gate.length; i++) hiddenActs[i] = h.activation(gate[i]!) * up[i]!;
    if (layer.ffnSubNorm) hiddenActs = rmsNormGroups(hiddenActs, h.intermediate, layer.ffnSubNorm, h.eps);
    const mlpOut = applyLinear(hiddenActs, T, layer.down);
    for (let i = 0; i < x.length; i++) x[i] = x[i]! + h.residualScale * mlpOut[i]!;
  }

  const final = rmsNormGroups(x, D, model.finalNorm, h.eps);
  if (h.logitInputScale !== 1) for (let i = 0; i < final.length; i++) final[i] = final[i]! * h.logitInputScale;
  const logits = applyLinear(final, T, model.lmHead);
  const result: Float32Array[] = [];
  for (let t = 0; t < T; t++) result.push(Float32Array.from(logits.subarray(t * h.vocab, (t + 1) * h.vocab)));
  return result;
}

// ---------------------------------------------------------------------------
// Public API

const MODEL_CACHE_LIMIT = 3;
const modelCache = new Map<string, { stamp: string; model: ReferenceModel }>();

/** Changes whenever config.json or any weight file in the folder is rewritten. */
function folderStamp(dir: string): string {
  const parts: string[] = [];
  for (const name of ["config.json", "model.safetensors", "model.safetensors.index.json"]) {
    const p = join(dir, name);
    if (existsSync(p)) {
      const st = statSync(p);
      parts.push(`${name}:${st.size}:${st.mtimeMs}`);
    }
  }
  const indexPath = join(dir, "model.safetensors.index.json");
  if (existsSync(indexPath)) {
    const index = JSON.parse(readFileSync(indexPath, "utf8")) as { weight_map: Record<string, string> };
    for (const file of new Set(Object.values(index.weight_map))) {
      const st = statSync(join(dir, file));
      parts.push(`${file}:${st.size}:${st.mtimeMs}`);
    }
  }
  return parts.join("|");
}

function cachedModel(modelDir: string): ReferenceModel {
  const dir = resolve(modelDir);
  const stamp = folderStamp(dir);
  const hit = modelCache.get(dir);
  if (hit && hit.stamp === stamp) {
    modelCache.delete(dir); // refresh LRU position
    modelCache.set(dir, hit);
    return hit.model;
  }
  const model = loadModel(dir);
  modelCache.set(dir, { stamp, model });
  while (modelCache.size > MODEL_CACHE_LIMIT) {
    const oldest = modelCache.keys().next().value;
    if (oldest === undefined) break;
    modelCache.delete(oldest);
  }
  return model;
}

/**
 * Logits (one Float32Array of vocab_size per position) for `tokens`, evaluated from
 * position 0 with no BOS added. Position t holds the scores for the token after tokens[t].
 */
export function referenceLogits(modelDir: string, tokens: number[]): Float32Array[] {
  if (tokens.length === 0) return [];
  const config = JSON.parse(readFileSync(join(modelDir, "config.json"), "utf8")) as Config;
  if (GEMMA3_MODEL_TYPES.has(config["model_type"] as string)) return gemma3ReferenceLogits(modelDir, config, tokens);
  return forward(cachedModel(modelDir), tokens);
}

/** The model_type values the oracle understands. */
export function referenceModelTypes(): string[] {
  return [...Object.keys(ARCHITECTURES), ...GEMMA3_MODEL_TYPES];
}
