/**
 * The compute graph llama.cpp reserves its compute buffer with, rebuilt op for op for decoder-only
 * transformers (llama and the families that share its graph: mistral, granite/minicpm, qwen2,
 * qwen3, bitnet, gemma/gemma2/gemma3-style post-norm and sliding-window models).
 *
 * Follows, in the llama.cpp tree node-llama-cpp 3.22 ships (release v0.5.0):
 *   src/models/llama.cpp            llama_model_llama::graph (layer structure)
 *   src/llama-graph.cpp             build_inp_embd (token + vector embedding inputs, ggml_build_forward_select),
 *                                   build_inp_pos, build_inp_out_ids, build_norm, build_qkv, build_ffn,
 *                                   build_attn (store K/V with set_rows, then build_attn_mha), build_attn_mha
 *                                   (kq = mul_mat(k, q) -> soft_max_ext -> mul_mat(v, kq) -> cont_2d, or
 *                                   flash_attn_ext), build_attn_inp_kq_mask (f32 mask, f16 with flash attention)
 *   src/llama-kv-cache.cpp          get_k / get_v views, cpy_k / cpy_v, build_input_k_idxs / v_idxs
 *                                   (one i64 per V element when V is transposed, i.e. without flash attention),
 *                                   build_input_k_rot / v_rot (Hadamard rotation for quantized K/V)
 *   src/llama-impl.h                llama_mul_mat_hadamard
 *   src/llama-context.cpp           sched_reserve: the worst-case graph has n_tokens = min(n_ctx, n_ubatch),
 *                                   n_outputs = min(n_tokens, n_outputs_max = n_batch), n_kv = the whole cache
 *   src/llama-graph.cpp             llm_graph_result::set_outputs (logits and result_norm are outputs)
 */
import type { DecoderHparams } from "./artifact.js";
import { ComputeGraph, GraphContext, isContiguous, type Tensor } from "./ggml-graph.js";
import { GgmlType, isQuantized, rowSize } from "../quant/ggml-types.js";

export interface WeightInfo {
  readonly type: number;
  /** ggml order (innermost first), as GGUF stores it. */
  readonly ne: readonly number[];
}

/** What the graph needs to know about a decoder model (sliding-window layers' caches hold window + ubatch cells). */
export interface DecoderShape extends Pick<DecoderHparams, "nLayer" | "nEmbd" | "nVocab" | "headDimK" | "headDimV" | "nHead" | "nHeadKv" | "swaLayers" | "slidingWindow" | "recurrentState"> {
  /** Weights by GGUF name; a missing optional tensor (bias, norm) is simply absent. */
  readonly weights: ReadonlyMap<string, WeightInfo>;
  readonly embeddingScale: boolean;
  readonly residualScale: boolean;
  readonly logitScale: boolean;
  readonly attnSoftcap: boolean;
  readonly queryScale?: boolean;
  readonly residualFirst?: boolean;
  /** Layer il skips RoPE when (il + 1) % step == 0 (smollm3's NoPE layers); 0 for none. */
  readonly noRopeLayerStep: number;
  /** The graph's block structure: LFM2's short-convolution hybrid (./shortconv-graph.ts) or the transformer block. */
  readonly shortConv?: boolean;
  /** GGUF name of the final norm's tensor when it is not output_norm (LFM2's token_embd_norm). */
  readonly outputNorm?: string;
}

export interface GraphParams {
  /** Tokens in the reserved micro-batch: min(n_ctx, n_ubatch). */
  readonly nTokens: number;
  readonly nOutputs: number;
  /** Cells of the full-attention cache (n_ctx padded to 256) and of the sliding-window cache. */
  readonly kvSize: number;
  readonly kvSizeSwa: number;
  readonly flashAttention: boolean;
  readonly typeK: number;
  readonly typeV: number;
}

/** The reserved graph of a decoder, in llama.cpp's node order (which decides how the allocator reuses memory). */
export function buildDecoderGraph(shape: DecoderShape, params: GraphParams): ComputeGraph {
  const b = new DecoderGraph(shape, params);
  let inpL = b.inputEmbeddings();
  const inputs = b.layerInputs();
  for (let il = 0; il < shape.nLayer; il++) inpL = b.layer(il, inpL, inputs);
  b.output(inpL, shape.outputNorm);
  return b.gf;
}

/** build_attn_inp_kv's inputs for one cache (the full one, or the sliding-window one). */
interface CacheInputs {
  readonly kIdxs: Tensor;
  readonly vIdxs: Tensor;
  readonly mask: Tensor;
  readonly kvSize: number;
}

/** The inputs every layer reads, made once before the first layer as llama.cpp makes them. */
export interface LayerInputs {
  readonly positions: Tensor;
  readonly base: CacheInputs | null;
  readonly swa: CacheInputs | null;
  /** Hadamard rotations for quantized K and V (llama_mul_mat_hadamard), when the head size allows. */
  readonly kRot: Tensor | null;
  readonly vRot: Tensor | null;
  readonly outIds: Tensor;
}

export class DecoderGraph {
  readonly g = new GraphContext();
  readonly gf = new ComputeGraph();
  private readonly externals = new Map<string, Tensor>();
  /** Tokens in the micro-batch. */
  protected readonly T: number;
  /** V is stored transposed when flash attention is off. */
  private readonly vTrans: boolean;
  /** Widest V row of any layer: the transposed V cache is this wide in every layer. */
  private readonly nEmbdVGqaMax: number;
  private readonly hasSwa: boolean;

  constructor(
    protected readonly shape: DecoderShape,
    protected readonly params: GraphParams,
  ) {
    this.T = params.nTokens;
    this.vTrans = !params.flashAttention;
    this.nEmbdVGqaMax = Math.max(...shape.nHeadKv.map((h) => h * shape.headDimV));
    this.hasSwa = shape.swaLayers.some(Boolean);
  }

  /** A weight by GGUF name (made external on first use), or null when the model has none. */
  protected weight(name: string): Tensor | null {
    const hit = this.externals.get(name);
    if (hit) return hit;
    const info = this.shape.weights.get(name);
    if (!info) return null;
    const t = this.g.external(name, info.type, info.ne);
    this.externals.set(name, t);
    return t;
  }

  protected required(name: string): Tensor {
    const t = this.weight(name);
    if (!t) throw new Error(`the model has no tensor '${name}'`);
    return t;
  }

  private linear(w: Tensor, x: Tensor, scaleName: string): Tensor {
    const y = this.g.mulMat(w, x);
    const s = this.weight(scaleName);
    return s ? this.g.mul(y, s) : y;
  }

  protected norm(x: Tensor, weightName: string): Tensor {
    const w = this.weight(weightName);
    const n = this.g.rmsNorm(x);
    return w ? this.g.mul(n, w) : n;
  }

  /** `norm` when the model has the norm's weight, else `x` unchanged. */
  private optionalNorm(x: Tensor, weightName: string): Tensor {
    return this.weight(weightName) ? this.norm(x, weightName) : x;
  }

  private hadamard(cur: Tensor, r: Tensor): Tensor {
    const { g } = this;
    const n = r.ne[0];
    const elements = cur.ne.reduce((a, b) => a * b, 1);
    const res = isContiguous(cur) ? g.reshape(cur, [n, elements / n]) : g.cont(cur, [n, elements / n]);
    return g.reshape(g.mulMat(r, res), cur.ne);
  }

  /** build_inp_embd: token ids, plus the vector-embedding input ggml_build_forward_select keeps in the graph. */
  inputEmbeddings(): Tensor {
    const { g, gf, shape, T } = this;
    const tokens = g.input("inp_tokens", GgmlType.I32, [T]);
    const vectors = g.input("inp_embd", GgmlType.F32, [shape.nEmbd, T]);
    let inpL = g.getRows(this.required("token_embd.weight"), tokens);
    inpL.name = "embd";
    gf.expand(inpL);
    gf.expand(vectors);
    if (shape.embeddingScale) inpL = g.scale(inpL);
    gf.expand(inpL);
    return inpL;
  }

  /** Positions, one set of attention inputs per cache, the K/V rotations and the output ids. */
  layerInputs(): LayerInputs {
    const { g, shape, params, T } = this;
    const positions = g.input("inp_pos", GgmlType.I32, [T]);
    const cacheInputs = (kvSize: number, tag: string): CacheInputs => ({
      kIdxs: g.input(`attn_inp_k_idxs${tag}`, GgmlType.I64, [T]),
      vIdxs: g.input(`attn_inp_v_idxs${tag}`, GgmlType.I64, [this.vTrans ? T * this.nEmbdVGqaMax : T]),
      mask: g.input(`attn_inp_kq_mask${tag}`, params.flashAttention ? GgmlType.F16 : GgmlType.F32, [kvSize, T, 1, 1]),
      kvSize,
    });
    const base = shape.swaLayers.some((swa) => !swa) ? cacheInputs(params.kvSize, "") : null;
    const swa = this.hasSwa ? cacheInputs(params.kvSizeSwa, "_swa") : null;
    const rot = (quantized: boolean, headDim: number, isK: boolean) => {
      if (!quantized || headDim % 64 !== 0) return null;
      let nrot = 64;
      if (isK) {
        do nrot *= 2;
        while (headDim % nrot === 0);
        nrot /= 2;
      }
      return g.input(isK ? "attn_inp_k_rot" : "attn_inp_v_rot", GgmlType.F32, [nrot, nrot]);
    };
    const kRot = rot(isQuantized(params.typeK), shape.headDimK, true);
    const vRot = rot(isQuantized(params.typeV), shape.headDimV, false);
    const outIds = g.input("out_ids", GgmlType.I32, [params.nOutputs]);
    return { positions, base, swa, kRot, vRot, outIds };
  }

  /** One decoder block: attention and feed-forward, each with its residual; the last block keeps only the output rows. */
  layer(il: number, inpL: Tensor, inputs: LayerInputs): Tensor {
    const { g, shape } = this;
    const p = `blk.${il}`;
    let inpSA = inpL;
    let cur = this.attention(il, this.norm(inpL, `${p}.attn_norm.weight`), inputs);
    if (il === shape.nLayer - 1) {
      cur = g.getRows(cur, inputs.outIds);
      inpSA = g.getRows(inpSA, inputs.outIds);
    }
    cur = this.optionalNorm(cur, `${p}.post_attention_norm.weight`);
    if (shape.residualScale) cur = g.scale(cur);
    const ffnInp = g.add(cur, inpSA);
    cur = this.feedForward(p, this.norm(ffnInp, `${p}.ffn_norm.weight`));
    cur = this.optionalNorm(cur, `${p}.post_ffw_norm.weight`);
    if (shape.residualScale) cur = g.scale(cur);
    // operand order decides which buffer ggml-alloc reuses in place
    return shape.residualFirst ? g.add(ffnInp, cur) : g.add(cur, ffnInp);
  }

  /** build_qkv, then build_attn: store K and V in the cache, attend over the whole cache, project the result. */
  protected attention(il: number, cur: Tensor, inputs: LayerInputs): Tensor {
    const { g, gf } = this;
    const p = `blk.${il}`;
    const cache = ((this.shape.swaLayers[il] ?? false) ? inputs.swa : inputs.base)!;
    let { Q, K, V } = this.qkv(il, cur);
    const ropeFactors = this.weight("rope_freqs.weight");
    const step = this.shape.noRopeLayerStep;
    if (step === 0 || (il + 1) % step !== 0) {
      Q = g.rope(Q, inputs.positions, ropeFactors);
      K = g.rope(K, inputs.positions, ropeFactors);
    }
    if (this.shape.queryScale) Q = g.scale(Q);
    if (inputs.kRot) {
      Q = this.hadamard(Q, inputs.kRot);
      K = this.hadamard(K, inputs.kRot);
    }
    if (inputs.vRot) V = this.hadamard(V, inputs.vRot);
    gf.expand(Q);
    if (this.hasSwa) {
      gf.expand(K);
      gf.expand(V);
    } else {
      gf.expand(V);
      gf.expand(K);
    }
    const { k, v } = this.storeKv(il, K, V, cache);
    let out = this.attentionHeads(il, Q, k, v, cache.mask);
    gf.expand(out);
    if (inputs.vRot) out = this.hadamard(out, inputs.vRot);
    out = this.optionalNorm(out, `${p}.attn_sub_norm.weight`);
    const wo = this.weight(`${p}.attn_output.weight`);
    if (wo) out = this.linear(wo, out, `${p}.attn_output.scale`);
    const woBias = this.weight(`${p}.attn_output.bias`);
    return woBias ? g.add(out, woBias) : out;
  }

  /** build_qkv: one fused projection viewed three ways, or three projections; then the Q and K norms if any. */
  private qkv(il: number, cur: Tensor): { Q: Tensor; K: Tensor; V: Tensor } {
    const { g, shape, T } = this;
    const p = `blk.${il}`;
    const nHead = shape.nHead[il]!;
    const nHeadKv = shape.nHeadKv[il]!;
    let Q: Tensor;
    let K: Tensor;
    let V: Tensor;
    const wqkv = this.weight(`${p}.attn_qkv.weight`);
    if (wqkv) {
      let qkv = this.linear(wqkv, cur, `${p}.attn_qkv.scale`);
      const bias = this.weight(`${p}.attn_qkv.bias`);
      if (bias) qkv = g.add(qkv, bias);
      const rs = (n: number) => rowSize(qkv.type, n);
      Q = g.view(qkv, [shape.headDimK, nHead, T], [rs(shape.headDimK), qkv.nb[1]]);
      K = g.view(qkv, [shape.headDimK, nHeadKv, T], [rs(shape.headDimK), qkv.nb[1]]);
      V = g.view(qkv, [shape.headDimV, nHeadKv, T], [rs(shape.headDimV), qkv.nb[1]]);
    } else {
      const project = (name: string, heads: number, headDim: number) => {
        let y = this.linear(this.required(`${p}.${name}.weight`), cur, `${p}.${name}.scale`);
        const bias = this.weight(`${p}.${name}.bias`);
        if (bias) y = g.add(y, bias);
        return g.reshape(y, [headDim, heads, T]);
      };
      Q = project("attn_q", nHead, shape.headDimK);
      K = project("attn_k", nHeadKv, shape.headDimK);
      V = project("attn_v", nHeadKv, shape.headDimV);
    }
    return { Q: this.optionalNorm(Q, `${p}.attn_q_norm.weight`), K: this.optionalNorm(K, `${p}.attn_k_norm.weight`), V };
  }

  /** cpy_k / cpy_v into layer il's cache (set_rows), and the get_k / get_v views attention reads. */
  private storeKv(il: number, K: Tensor, V: Tensor, cache: CacheInputs): { k: Tensor; v: Tensor } {
    const { g, gf, shape, params, T, vTrans } = this;
    const nHeadKv = shape.nHeadKv[il]!;
    const nEmbdKGqa = shape.headDimK * nHeadKv;
    const nEmbdVGqa = shape.headDimV * nHeadKv;
    const cacheVWidth = vTrans ? this.nEmbdVGqaMax : nEmbdVGqa;
    const cacheK = g.external(`cache_k_l${il}`, params.typeK, [nEmbdKGqa, cache.kvSize, 1]);
    const cacheV = g.external(`cache_v_l${il}`, params.typeV, [cacheVWidth, cache.kvSize, 1]);
    gf.expand(g.setRows(cacheK, g.view(K, [nEmbdKGqa, T], [K.nb[2]]), cache.kIdxs));
    if (!vTrans) {
      gf.expand(g.setRows(cacheV, g.view(V, [nEmbdVGqa, T], [V.nb[2]]), cache.vIdxs));
    } else {
      let v2 = rowSize(V.type, nEmbdVGqa) === V.nb[2] ? g.reshape(V, [nEmbdVGqa, T]) : g.cont(V, [nEmbdVGqa, T]);
      if (nEmbdVGqa < cacheVWidth) v2 = g.cont(v2, [cacheVWidth, T]); // ggml_pad
      const vView = g.reshape(cacheV, [1, cacheVWidth * cache.kvSize]);
      gf.expand(g.setRows(vView, g.reshape(v2, [1, v2.ne[0] * v2.ne[1]]), cache.vIdxs));
    }
    const typeK = params.typeK;
    const typeV = params.typeV;
    const k = g.view(cacheK, [shape.headDimK, nHeadKv, cache.kvSize, 1], [rowSize(typeK, shape.headDimK), rowSize(typeK, nEmbdKGqa), rowSize(typeK, nEmbdKGqa * cache.kvSize)]);
    const v = vTrans
      ? g.view(cacheV, [cache.kvSize, nHeadKv, shape.headDimV, 1], [rowSize(typeV, cache.kvSize * shape.headDimV), rowSize(typeV, cache.kvSize), rowSize(typeV, cache.kvSize * cacheVWidth)])
      : g.view(cacheV, [shape.headDimV, nHeadKv, cache.kvSize, 1], [rowSize(typeV, shape.headDimV), rowSize(typeV, nEmbdVGqa), rowSize(typeV, nEmbdVGqa * cache.kvSize)]);
    return { k, v };
  }

  /** build_attn_mha: flash_attn_ext, or kq = k·q -> (softcap) -> soft_max_ext -> v·kq, as one row per token. */
  private attentionHeads(il: number, Q: Tensor, k: Tensor, v: Tensor, mask: Tensor): Tensor {
    const { g } = this;
    const q4 = g.view(Q, [Q.ne[0], Q.ne[1], Q.ne[2], 1], [Q.nb[1], Q.nb[2], Q.nb[3]]);
    const qp = g.permute(q4, [0, 2, 1, 3]);
    const kp = g.permute(k, [0, 2, 1, 3]);
    const vp = g.permute(v, [0, 2, 1, 3]);
    if (this.params.flashAttention) {
      const fa = g.flashAttn(qp, kp, vp, mask);
      return g.reshape(fa, [fa.ne[0] * fa.ne[1], fa.ne[2] * fa.ne[3]]);
    }
    let kq = g.mulMat(kp, qp);
    kq.name = `kq-${il}`;
    if (this.shape.attnSoftcap) kq = g.scale(g.unary(g.scale(kq)));
    kq = g.softMax(kq, mask);
    const permuted = g.permute(g.mulMat(vp, kq), [0, 2, 1, 3]);
    return g.cont(permuted, [permuted.ne[0] * permuted.ne[1], permuted.ne[2] * permuted.ne[3]]);
  }

  /** build_ffn: gated (SiLU/GELU via GLU) or plain up projection, the optional sub-norm, then down. */
  protected feedForward(p: string, cur: Tensor): Tensor {
    const { g } = this;
    const up = this.weight(`${p}.ffn_up.weight`);
    const gate = this.weight(`${p}.ffn_gate.weight`);
    if (up && gate) {
      const tmp = this.linear(up, cur, `${p}.ffn_up.scale`);
      cur = g.gluSplit(this.linear(gate, cur, `${p}.ffn_gate.scale`), tmp);
    } else if (up && up.ne[1] === 2 * this.required(`${p}.ffn_down.weight`).ne[0]) {
      // gate and up fused in one double-height ffn_up (phi3): a one-input SwiGLU halves it
      cur = g.glu(this.linear(up, cur, `${p}.ffn_up.scale`));
    } else if (up) {
      cur = g.unary(this.linear(up, cur, `${p}.ffn_up.scale`));
    }
    cur = this.optionalNorm(cur, `${p}.ffn_sub_norm.weight`);
    cur = this.linear(this.required(`${p}.ffn_down.weight`), cur, `${p}.ffn_down.scale`);
    const downBias = this.weight(`${p}.ffn_down.bias`);
    return downBias ? g.add(cur, downBias) : cur;
  }

  /** The output norm (an output: result_norm) and the logits (result_output). */
  output(inpL: Tensor, normName = "output_norm.weight"): void {
    const { g, gf, shape } = this;
    let cur = this.norm(inpL, normName);
    cur.name = "result_norm";
    cur.output = true;
    cur = g.mulMat(this.weight("output.weight") ?? this.required("token_embd.weight"), cur);
    if (shape.logitScale) cur = g.scale(cur);
    cur.name = "result_output";
    cur.output = true;
    gf.expand(cur);
  }
}
