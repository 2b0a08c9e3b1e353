// Independent float64 reference forward pass of Gemma 3 (Gemma3ForCausalLM, and the text tower
// of Gemma3ForConditionalGeneration), following transformers' models/gemma3/modeling_gemma3.py:
//   - Gemma3TextScaledWordEmbedding: embeddings times sqrt(hidden_size).
//   - Gemma3RMSNorm: x / sqrt(mean(x^2) + eps) * (1 + weight)   (the checkpoint stores weight - 1).
//   - Gemma3DecoderLayer: x += post_attention_layernorm(attn(input_layernorm(x)));
//                         x += post_feedforward_layernorm(mlp(pre_feedforward_layernorm(x))).
//   - Gemma3Attention: q_norm/k_norm per head before rotate-half RoPE; scores scaled by
//     query_pre_attn_scalar^-0.5, softcapped by attn_logit_softcapping when set; sliding layers
//     (layer_types) see only the last `sliding_window` positions (q - kv < sliding_window) and use
//     the local RoPE base (rope_local_base_freq, no scaling); full layers use rope_theta and rope_scaling.
//   - Gemma3MLP: down(gelu_pytorch_tanh(gate(x)) * up(x)).
//   - Logits from the tied embedding, softcapped by final_logit_softcapping when set.
// Like reference-forward.ts it shares no code with src/.

import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { SafetensorsFile } from "./safetensors.js";

type Config = Record<string, unknown>;

/** config.json model_type values of Gemma 3 (the text model and the multimodal wrapper). */
export const GEMMA3_MODEL_TYPES: ReadonlySet<string> = new Set(["gemma3_text", "gemma3"]);

/** Gemma3TextConfig.__init__'s defaults (transformers models/gemma3/configuration_gemma3.py) for keys config.json omits. */
const TEXT_CONFIG_DEFAULTS: Config = {
  vocab_size: 262208, num_attention_heads: 8, num_key_value_heads: 4, head_dim: 256, hidden_activation: "gelu_pytorch_tanh",
  rms_norm_eps: 1e-6, rope_theta: 1_000_000, query_pre_attn_scalar: 256, sliding_window: 4096, rope_local_base_freq: 10_000,
  sliding_window_pattern: 6, final_logit_softcapping: null, attn_logit_softcapping: null, rope_scaling: null,
};

interface Hyper {
  hidden: number;
  intermediate: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  vocab: number;
  eps: number;
  scale: number;
  window: number;
  sliding: boolean[];
  localInvFreq: Float64Array;
  globalInvFreq: Float64Array;
  attnSoftcap: number | null;
  finalSoftcap: number | null;
}

function num(config: Config, key: string, fallback?: number): number {
  const value = config[key];
  if (typeof value === "number" && Number.isFinite(value)) return value;
  if ((value === undefined || value === null) && fallback !== undefined) return fallback;
  throw new Error(`reference-gemma3: config.json "${key}" is ${JSON.stringify(value)}`);
}

function optionalNum(config: Config, key: string): number | null {
  const value = config[key];
  return typeof value === "number" ? value : null;
}

/** transformers 4.x keeps rope_theta / rope_local_base_freq / rope_scaling; 5.x nests them per layer type. */
function invFreq(config: Config, headDim: number, layerType: "full_attention" | "sliding_attention"): Float64Array {
  const nested = (config["rope_parameters"] as Config | undefined)?.[layerType] as Config | undefined;
  const params: Config | null = nested ?? (layerType === "full_attention" ? ((config["rope_scaling"] as Config | null) ?? null) : null);
  const theta = nested ? num(nested, "rope_theta") : layerType === "full_attention" ? num(config, "rope_theta", 1_000_000) : num(config, "rope_local_base_freq", 10_000);
  const type = (params?.["rope_type"] ?? params?.["type"] ?? "default") as string;
  let factor = 1;
  if (type === "linear") factor = num(params!, "factor");
  else if (type !== "default") throw new Error(`reference-gemma3: rope type ${type} is not modelled`);
  const half = headDim / 2;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / Math.pow(theta, (2 * i) / headDim) / factor;
  return inv;
}

function readHyper(config: Config): Hyper {
  const layers = num(config, "num_hidden_layers");
  const headDim = num(config, "head_dim", 256);
  const pattern = num(config, "sliding_window_pattern", num(config, "_sliding_window_pattern", 6));
  const types = Array.isArray(config["layer_types"])
    ? (config["layer_types"] as string[])
    : Array.from({ length: layers }, (_, i) => ((i + 1) % pattern !== 0 ? "sliding_attention" : "full_attention"));
  if (config["hidden_activation"] !== "gelu_pytorch_tanh") throw new Error(`reference-gemma3: hidden_activation ${JSON.stringify(config["hidden_activation"])}`);
  return {
    hidden: num(config, "hidden_size"),
    intermediate: num(config, "intermediate_size"),
    layers,
    heads: num(config, "num_attention_heads"),
    kvHeads: num(config, "num_key_value_heads"),
    headDim,
    vocab: num(config, "vocab_size"),
    eps: num(config, "rms_norm_eps", 1e-6),
    scale: Math.pow(num(config, "query_pre_attn_scalar"), -0.5),
    window: num(config, "sliding_window"),
    sliding: types.map((type) => type === "sliding_attention"),
    localInvFreq: invFreq(config, headDim, "sliding_attention"),
    globalInvFreq: invFreq(config, headDim, "full_attention"),
    attnSoftcap: optionalNum(config, "attn_logit_softcapping"),
    finalSoftcap: optionalNum(config, "final_logit_softcapping"),
  };
}

interface Weights {
  get(name: string, shape: number[]): Float32Array;
}

/** The checkpoint's tensors, found under the text model's names or the wrapper's. */
function openWeights(dir: string): Weights {
  const owner = new Map<string, SafetensorsFile>();
  const indexPath = join(dir, "model.safetensors.index.json");
  if (existsSync(indexPath)) {
    const map = (JSON.parse(readFileSync(indexPath, "utf8")) as { weight_map: Record<string, string> }).weight_map;
    const files = new Map<string, SafetensorsFile>();
    for (const [name, file] of Object.entries(map)) {
      if (!files.has(file)) files.set(file, new SafetensorsFile(join(dir, file)));
      owner.set(name, files.get(file)!);
    }
  } else {
    const file = new SafetensorsFile(join(dir, "model.safetensors"));
    for (const name of file.names()) owner.set(name, file);
  }
  const prefixes = ["model.", "model.language_model.", "language_model.model."];
  return {
    get(name, shape) {
      const found = prefixes.map((prefix) => prefix + name).find((full) => owner.has(full));
      if (!found) throw new Error(`reference-gemma3: no tensor model.${name} (or a wrapper's name for it)`);
      const tensor = owner.get(found)!.read(found);
      if (tensor.shape.join(",") !== shape.join(",")) throw new Error(`reference-gemma3: ${found} has shape ${tensor.shape}, expected ${shape}`);
      return tensor.data;
    },
  };
}

/** y[t] = W x[t], W stored [out, in]. */
function linear(x: Float64Array, rows: number, w: Float32Array, out: number, n: number): Float64Array {
  const y = new Float64Array(rows * out);
  for (let t = 0; t < rows; t++) {
    for (let o = 0; o < out; o++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += w[o * n + i]! * x[t * n + i]!;
      y[t * out + o] = s;
    }
  }
  return y;
}

/** Gemma3RMSNorm over consecutive groups of `width`: x * rsqrt(mean(x^2) + eps) * (1 + w). */
function norm(x: Float64Array, width: number, w: Float32Array, eps: number): Float64Array {
  const y = new Float64Array(x.length);
  for (let start = 0; start < x.length; start += width) {
    let ss = 0;
    for (let i = 0; i < width; i++) ss += x[start + i]! ** 2;
    const inv = 1 / Math.sqrt(ss / width + eps);
    for (let i = 0; i < width; i++) y[start + i] = x[start + i]! * inv * (1 + w[i]!);
  }
  return y;
}

/** Rotate-half RoPE in place on [rows, heads * headDim]; row t at position t. */
function rope(x: Float64Array, rows: number, heads: number, headDim: number, inv: Float64Array): void {
  const half = headDim / 2;
  for (let t = 0; t < rows; t++) {
    for (let i = 0; i < half; i++) {
      const cos = Math.cos(t * inv[i]!);
      const sin = Math.sin(t * inv[i]!);
      for (let h = 0; h < heads; h++) {
        const a = (t * heads + h) * headDim + i;
        const x1 = x[a]!;
        const x2 = x[a + half]!;
        x[a] = x1 * cos - x2 * sin;
        x[a + half] = x2 * cos + x1 * sin;
      }
    }
  }
}

function attention(q: Float64Array, k: Float64Array, v: Float64Array, rows: number, h: Hyper, sliding: boolean): Float64Array {
  const { heads, kvHeads, headDim } = h;
  const out = new Float64Array(rows * heads * headDim);
  const scores = new Float64Array(rows);
  for (let hd = 0; hd < heads; hd++) {
    const kvh = Math.floor(hd / (heads / kvHeads));
    for (let t = 0; t < rows; t++) {
      const first = sliding ? Math.max(0, t - h.window + 1) : 0;
      let max = -Infinity;
      for (let s = first; s <= t; s++) {
        let dot = 0;
        for (let i = 0; i < headDim; i++) dot += q[(t * heads + hd) * headDim + i]! * k[(s * kvHeads + kvh) * headDim + i]!;
        let score = dot * h.scale;
        if (h.attnSoftcap !== null) score = Math.tanh(score / h.attnSoftcap) * h.attnSoftcap;
        scores[s] = score;
        max = Math.max(max, score);
      }
      let sum = 0;
      for (let s = first; s <= t; s++) sum += scores[s] = Math.exp(scores[s]! - max);
      for (let s = first; s <= t; s++) {
        const p = scores[s]! / sum;
        for (let i = 0; i < headDim; i++) out[(t * heads + hd) * headDim + i]! += p * v[(s * kvHeads + kvh) * headDim + i]!;
      }
    }
  }
  return out;
}

const geluTanh = (x: number): number => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));

function addInPlace(x: Float64Array, y: Float64Array): void {
  for (let i = 0; i < x.length; i++) x[i] = x[i]! + y[i]!;
}

function layerForward(x: Float64Array, T: number, h: Hyper, w: Weights, l: number): void {
  const { hidden: D, heads, kvHeads, headDim, intermediate: F, eps } = h;
  const p = `layers.${l}.`;
  const normed = norm(x, D, w.get(`${p}input_layernorm.weight`, [D]), eps);
  const q = norm(linear(normed, T, w.get(`${p}self_attn.q_proj.weight`, [heads * headDim, D]), heads * headDim, D), headDim, w.get(`${p}self_attn.q_norm.weight`, [headDim]), eps);
  const k = norm(linear(normed, T, w.get(`${p}self_attn.k_proj.weight`, [kvHeads * headDim, D]), kvHeads * headDim, D), headDim, w.get(`${p}self_attn.k_norm.weight`, [headDim]), eps);
  const v = linear(normed, T, w.get(`${p}self_attn.v_proj.weight`, [kvHeads * headDim, D]), kvHeads * headDim, D);
  const inv = h.sliding[l] ? h.localInvFreq : h.globalInvFreq;
  rope(q, T, heads, headDim, inv);
  rope(k, T, kvHeads, headDim, inv);
  const attn = linear(attention(q, k, v, T, h, h.sliding[l]!), T, w.get(`${p}self_attn.o_proj.weight`, [D, heads * headDim]), D, heads * headDim);
  addInPlace(x, norm(attn, D, w.get(`${p}post_attention_layernorm.weight`, [D]), eps));
  const normed2 = norm(x, D, w.get(`${p}pre_feedforward_layernorm.weight`, [D]), eps);
  const gate = linear(normed2, T, w.get(`${p}mlp.gate_proj.weight`, [F, D]), F, D);
  const up = linear(normed2, T, w.get(`${p}mlp.up_proj.weight`, [F, D]), F, D);
  for (let i = 0; i < gate.length; i++) gate[i] = geluTanh(gate[i]!) * up[i]!;
  const mlp = linear(gate, T, w.get(`${p}mlp.down_proj.weight`, [D, F]), D, F);
  addInPlace(x, norm(mlp, D, w.get(`${p}post_feedforward_layernorm.weight`, [D]), eps));
}

/** Logits per position for `tokens` from position 0, no BOS added (as referenceLogits). */
export function gemma3ReferenceLogits(dir: string, config: Config, tokens: number[]): Float32Array[] {
  const text = { ...TEXT_CONFIG_DEFAULTS, ...((config["text_config"] as Config | undefined) ?? config) };
  const h = readHyper(text);
  if (h.sliding.length !== h.layers) throw new Error(`reference-gemma3: ${h.sliding.length} layer_types for ${h.layers} layers`);
  const w = openWeights(dir);
  const T = tokens.length;
  const D = h.hidden;
  const embed = w.get("embed_tokens.weight", [h.vocab, D]);
  const x = new Float64Array(T * D);
  const embedScale = Math.sqrt(D);
  tokens.forEach((token, t) => {
    for (let i = 0; i < D; i++) x[t * D + i] = embed[token * D + i]! * embedScale;
  });
  for (let l = 0; l < h.layers; l++) layerForward(x, T, h, w, l);
  const logits = linear(norm(x, D, w.get("norm.weight", [D]), h.eps), T, embed, h.vocab, D);
  if (h.finalSoftcap !== null) for (let i = 0; i < logits.length; i++) logits[i] = Math.tanh(logits[i]! / h.finalSoftcap) * h.finalSoftcap;
  return Array.from({ length: T }, (_, t) => Float32Array.from(logits.subarray(t * h.vocab, (t + 1) * h.vocab)));
}
