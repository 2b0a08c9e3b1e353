// Independent float64 forward pass of an LFM2 checkpoint (Lfm2ForCausalLM), following transformers'
// modeling_lfm2.py: Lfm2DecoderLayer, Lfm2Attention, Lfm2ShortConv.slow_forward (no cache), Lfm2MLP.
// It reads config.json and the safetensors directly and shares no code with src/.
//
//   layer:     h = x + op(operator_norm(x));  out = h + w2(silu(w1(ffn_norm(h))) * w3(ffn_norm(h)))
//   attention: q/k per-head RMSNorm (q_layernorm/k_layernorm) then rotate-half RoPE, causal softmax
//              with scale 1/sqrt(head_dim), out_proj
//   shortconv: B, C, x = chunk(in_proj(x), 3) over channels; Bx = B*x; depthwise Conv1d with
//              padding L-1 truncated to the sequence (causal: out[t] = sum_k w[c,k] Bx[t-(L-1)+k]);
//              out_proj(C * conv)
//   model:     embed_tokens -> layers -> embedding_norm (applied last, despite its name) -> tied lm_head

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { SafetensorsFile } from "./safetensors.js";

type Config = Record<string, unknown>;

interface Lfm2Hyper {
  hidden: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  ff: number;
  eps: number;
  lCache: number;
  vocab: number;
  attention: boolean[];
  invFreq: Float64Array;
}

function num(config: Config, key: string, fallback?: number): number {
  const value = config[key];
  if (typeof value === "number" && Number.isFinite(value)) return value;
  if ((value === undefined || value === null) && fallback !== undefined) return fallback;
  throw new Error(`reference-lfm2: config.json "${key}" is ${JSON.stringify(value)}`);
}

function readHyper(config: Config): Lfm2Hyper {
  if (config["model_type"] !== "lfm2") throw new Error(`reference-lfm2: model_type ${JSON.stringify(config["model_type"])} is not lfm2`);
  if (config["conv_bias"] === true) throw new Error("reference-lfm2: conv_bias is not modelled");
  const hidden = num(config, "hidden_size");
  const heads = num(config, "num_attention_heads");
  const layers = num(config, "num_hidden_layers");
  const headDim = num(config, "head_dim", hidden / heads);
  // Lfm2Config: intermediate_size = block_ff_dim if given; Lfm2MLP then adjusts it.
  let ff = num(config, "block_ff_dim", num(config, "intermediate_size"));
  if (config["block_auto_adjust_ff_dim"] !== false) {
    ff = Math.trunc((2 * ff) / 3);
    const multiplier = config["block_ffn_dim_multiplier"];
    if (typeof multiplier === "number") ff = Math.trunc(multiplier * ff);
    const multiple = num(config, "block_multiple_of", 256);
    ff = multiple * Math.floor((ff + multiple - 1) / multiple);
  }
  const types = config["layer_types"];
  const idxs = config["full_attn_idxs"];
  const attention = Array.isArray(types)
    ? types.map((t) => t === "full_attention")
    : Array.from({ length: layers }, (_, i) => (Array.isArray(idxs) ? idxs.includes(i) : true));
  const ropeParams = (config["rope_parameters"] ?? {}) as Config;
  const theta = num(config, "rope_theta", num(ropeParams, "rope_theta", 1000000));
  const invFreq = new Float64Array(headDim / 2).map((_, i) => 1 / Math.pow(theta, (2 * i) / headDim));
  return {
    hidden, heads, headDim, ff, attention, invFreq,
    kvHeads: num(config, "num_key_value_heads", heads),
    eps: num(config, "norm_eps"),
    lCache: num(config, "conv_L_cache"),
    vocab: num(config, "vocab_size"),
  };
}

class Weights {
  private readonly file: SafetensorsFile;
  constructor(dir: string) {
    this.file = new SafetensorsFile(join(dir, "model.safetensors"));
  }
  get(name: string, shape: number[]): Float32Array {
    const tensor = this.file.read(name);
    if (JSON.stringify(tensor.shape) !== JSON.stringify(shape)) throw new Error(`reference-lfm2: ${name} has shape ${JSON.stringify(tensor.shape)}, expected ${JSON.stringify(shape)}`);
    return tensor.data;
  }
}

/** x [rows, n] times W^T, W [out, n]. */
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

/** RMSNorm over consecutive groups of `width`. */
function rmsNorm(x: Float64Array, width: number, weight: Float32Array, eps: number): Float64Array {
  const out = new Float64Array(x.length);
  for (let start = 0; start < x.length; start += width) {
    let ss = 0;
    for (let i = 0; i < width; i++) ss += x[start + i]! ** 2;
    const inv = 1 / Math.sqrt(ss / width + eps);
    for (let i = 0; i < width; i++) out[start + i] = x[start + i]! * inv * weight[i]!;
  }
  return out;
}

/** transformers' rotate_half RoPE: dimension i pairs with i + d/2; row t is position t. */
function rope(x: Float64Array, rows: number, nHeads: number, h: Lfm2Hyper): void {
  const half = h.headDim / 2;
  for (let t = 0; t < rows; t++) {
    for (let i = 0; i < half; i++) {
      const cos = Math.cos(t * h.invFreq[i]!);
      const sin = Math.sin(t * h.invFreq[i]!);
      for (let hd = 0; hd < nHeads; hd++) {
        const a = (t * nHeads + hd) * h.headDim + i;
        const x1 = x[a]!;
        const x2 = x[a + half]!;
        x[a] = x1 * cos - x2 * sin;
        x[a + half] = x2 * cos + x1 * sin;
      }
    }
  }
}

function attentionBlock(x: Float64Array, T: number, h: Lfm2Hyper, w: Weights, p: string): Float64Array {
  const { hidden, heads, kvHeads, headDim } = h;
  const q = rmsNorm(linear(x, T, w.get(`${p}.self_attn.q_proj.weight`, [heads * headDim, hidden]), heads * headDim, hidden), headDim, w.get(`${p}.self_attn.q_layernorm.weight`, [headDim]), h.eps);
  const k = rmsNorm(linear(x, T, w.get(`${p}.self_attn.k_proj.weight`, [kvHeads * headDim, hidden]), kvHeads * headDim, hidden), headDim, w.get(`${p}.self_attn.k_layernorm.weight`, [headDim]), h.eps);
  const v = linear(x, T, w.get(`${p}.self_attn.v_proj.weight`, [kvHeads * headDim, hidden]), kvHeads * headDim, hidden);
  rope(q, T, heads, h);
  rope(k, T, kvHeads, h);
  const out = new Float64Array(T * heads * headDim);
  const scores = new Float64Array(T);
  for (let hd = 0; hd < heads; hd++) {
    const kvh = Math.floor(hd / (heads / kvHeads));
    for (let t = 0; t < T; t++) {
      const qo = (t * heads + hd) * headDim;
      let max = -Infinity;
      for (let s = 0; s <= t; s++) {
        let dot = 0;
        for (let i = 0; i < headDim; i++) dot += q[qo + i]! * k[(s * kvHeads + kvh) * headDim + i]!;
        scores[s] = dot / Math.sqrt(headDim);
        max = Math.max(max, scores[s]!);
      }
      let sum = 0;
      for (let s = 0; s <= t; s++) sum += scores[s] = Math.exp(scores[s]! - max);
      for (let s = 0; s <= t; s++) {
        for (let i = 0; i < headDim; i++) out[qo + i] = out[qo + i]! + (scores[s]! / sum) * v[(s * kvHeads + kvh) * headDim + i]!;
      }
    }
  }
  return linear(out, T, w.get(`${p}.self_attn.out_proj.weight`, [hidden, heads * headDim]), hidden, heads * headDim);
}

function shortConvBlock(x: Float64Array, T: number, h: Lfm2Hyper, w: Weights, p: string): Float64Array {
  const D = h.hidden;
  const L = h.lCache;
  const bcx = linear(x, T, w.get(`${p}.conv.in_proj.weight`, [3 * D, D]), 3 * D, D);
  const kernel = w.get(`${p}.conv.conv.weight`, [D, 1, L]);
  const bx = new Float64Array(T * D);
  for (let t = 0; t < T; t++) for (let c = 0; c < D; c++) bx[t * D + c] = bcx[t * 3 * D + c]! * bcx[t * 3 * D + 2 * D + c]!;
  const y = new Float64Array(T * D);
  for (let t = 0; t < T; t++) {
    for (let c = 0; c < D; c++) {
      let s = 0;
      for (let k = 0; k < L; k++) {
        const source = t - (L - 1) + k;
        if (source >= 0) s += kernel[c * L + k]! * bx[source * D + c]!;
      }
      y[t * D + c] = bcx[t * 3 * D + D + c]! * s;
    }
  }
  return linear(y, T, w.get(`${p}.conv.out_proj.weight`, [D, D]), D, D);
}

/** Logits (one Float32Array per position) of the LFM2 checkpoint in `dir`; position t predicts token t+1. */
export function referenceLfm2Logits(dir: string, tokens: number[]): Float32Array[] {
  const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as Config;
  const h = readHyper(config);
  const w = new Weights(dir);
  const T = tokens.length;
  const D = h.hidden;
  const embed = w.get("model.embed_tokens.weight", [h.vocab, D]);
  let x = new Float64Array(T * D);
  tokens.forEach((token, t) => {
    for (let i = 0; i < D; i++) x[t * D + i] = embed[token * D + i]!;
  });
  h.attention.forEach((isAttention, l) => {
    const p = `model.layers.${l}`;
    const normed = rmsNorm(x, D, w.get(`${p}.operator_norm.weight`, [D]), h.eps);
    const op = isAttention ? attentionBlock(normed, T, h, w, p) : shortConvBlock(normed, T, h, w, p);
    const mid = x.map((v, i) => v + op[i]!);
    const n2 = rmsNorm(mid, D, w.get(`${p}.ffn_norm.weight`, [D]), h.eps);
    const gate = linear(n2, T, w.get(`${p}.feed_forward.w1.weight`, [h.ff, D]), h.ff, D);
    const up = linear(n2, T, w.get(`${p}.feed_forward.w3.weight`, [h.ff, D]), h.ff, D);
    const act = gate.map((g, i) => (g / (1 + Math.exp(-g))) * up[i]!);
    const down = linear(act, T, w.get(`${p}.feed_forward.w2.weight`, [D, h.ff]), D, h.ff);
    x = mid.map((v, i) => v + down[i]!);
  });
  const final = rmsNorm(x, D, w.get("model.embedding_norm.weight", [D]), h.eps);
  // Lfm2 ties the output (tie_embedding / tie_word_embeddings default true); an untied lm_head is used when present.
  const tied = (config["tie_embedding"] ?? config["tie_word_embeddings"] ?? true) !== false;
  const head = tied ? embed : w.get("lm_head.weight", [h.vocab, D]);
  const logits = linear(final, T, head, h.vocab, D);
  return Array.from({ length: T }, (_, t) => Float32Array.from(logits.subarray(t * h.vocab, (t + 1) * h.vocab)));
}
