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
import { ComputeGraph, GraphContext, isContiguous, type Tensor } from "./ggml-graph.js";
import { GgmlType, isQuantized, rowSize } from "../quant/ggml-types.js";

export interface WeightInfo {
  readonly type: number;
  /** ggml order (innermost first), as GGUF stores it. */
  readonly ne: readonly number[];
}

/** What the graph needs to know about a decoder model. */
export interface DecoderShape {
  readonly nLayer: number;
  readonly nEmbd: number;
  readonly nVocab: number;
  readonly headDimK: number;
  readonly headDimV: number;
  readonly nHead: readonly number[];
  readonly nHeadKv: readonly number[];
  /** Layers that attend to a sliding window (their cache holds window + ubatch cells). */
  readonly swaLayers: readonly boolean[];
  readonly slidingWindow: number;
  /** Weights by GGUF name; a missing optional tensor (bias, norm) is simply absent. */
  readonly weights: ReadonlyMap<string, WeightInfo>;
  readonly embeddingScale: boolean;
  readonly residualScale: boolean;
  readonly logitScale: boolean;
  readonly attnSoftcap: boolean;
}

interface GraphParams {
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

export function buildDecoderGraph(shape: DecoderShape, params: GraphParams): ComputeGraph {
  const g = new GraphContext();
  const gf = new ComputeGraph();
  const T = params.nTokens;
  const vTrans = !params.flashAttention;
  const externals = new Map<string, Tensor>();
  const weight = (name: string): Tensor | null => {
    const hit = externals.get(name);
    if (hit) return hit;
    const info = shape.weights.get(name);
    if (!info) return null;
    const t = g.external(name, info.type, info.ne);
    externals.set(name, t);
    return t;
  };
  const required = (name: string): Tensor => {
    const t = weight(name);
    if (!t) throw new Error(`the model has no tensor '${name}'`);
    return t;
  };
  const linear = (w: Tensor, x: Tensor, scaleName: string): Tensor => {
    const y = g.mulMat(w, x);
    const s = weight(scaleName);
    return s ? g.mul(y, s) : y;
  };
  const norm = (x: Tensor, weightName: string): Tensor => {
    const w = weight(weightName);
    const n = g.rmsNorm(x);
    return w ? g.mul(n, w) : n;
  };

  // build_inp_embd: token ids, plus the vector-embedding input ggml_build_forward_select keeps in the graph
  const tokens = g.input("inp_tokens", GgmlType.I32, [T]);
  const vectors = g.input("inp_embd", GgmlType.F32, [shape.nEmbd, T]);
  let inpL = g.getRows(required("token_embd.weight"), tokens);
  inpL.name = "embd";
  gf.expand(inpL);
  gf.expand(vectors);
  if (shape.embeddingScale) inpL = g.scale(inpL);
  gf.expand(inpL);

  const positions = g.input("inp_pos", GgmlType.I32, [T]);

  // attention inputs: one set for the full cache, one for the sliding-window cache
  const hasSwa = shape.swaLayers.some(Boolean);
  const hasBase = shape.swaLayers.some((swa) => !swa);
  const nEmbdVGqaMax = Math.max(...shape.nHeadKv.map((h) => h * shape.headDimV));
  const attnInputs = (kvSize: number, tag: string) => ({
    kIdxs: g.input(`attn_inp_k_idxs${tag}`, GgmlType.I64, [T]),
    vIdxs: g.input(`attn_inp_v_idxs${tag}`, GgmlType.I64, [vTrans ? T * nEmbdVGqaMax : T]),
    mask: g.input(`attn_inp_kq_mask${tag}`, params.flashAttention ? GgmlType.F16 : GgmlType.F32, [kvSize, T, 1, 1]),
    kvSize,
  });
  const base = hasBase ? attnInputs(params.kvSize, "") : null;
  const swa = hasSwa ? attnInputs(params.kvSizeSwa, "_swa") : null;
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
  const hadamard = (cur: Tensor, r: Tensor): Tensor => {
    const n = r.ne[0];
    const elements = cur.ne.reduce((a, b) => a * b, 1);
    let res = isContiguous(cur) ? g.reshape(cur, [n, elements / n]) : g.cont(cur, [n, elements / n]);
    res = g.mulMat(r, res);
    return g.reshape(res, cur.ne);
  };

  const outIds = g.input("out_ids", GgmlType.I32, [params.nOutputs]);

  const replay: Replay = { g, gf, shape, params, T, vTrans, weight, required, linear, norm, hadamard, positions, kRot, vRot, hasSwa, nEmbdVGqaMax };

  for (let il = 0; il < shape.nLayer; il++) {
    const p = `blk.${il}`;
    const nHead = shape.nHead[il]!;
    const nHeadKv = shape.nHeadKv[il]!;
    const isSwa = shape.swaLayers[il] ?? false;
    const inp = (isSwa ? swa : base)!;
    let inpSA = inpL;
    let cur = norm(inpL, `${p}.attn_norm.weight`);

    const { Q, K, V } = buildQkv(replay, p, cur, nHead, nHeadKv);
    cur = buildKvAttention(replay, il, Q, K, V, nHeadKv, inp);

    if (il === shape.nLayer - 1) {
      cur = g.getRows(cur, outIds);
      inpSA = g.getRows(inpSA, outIds);
    }
    if (weight(`${p}.post_attention_norm.weight`)) cur = norm(cur, `${p}.post_attention_norm.weight`);
    if (shape.residualScale) cur = g.scale(cur);
    const ffnInp = g.add(cur, inpSA);

    cur = buildFfn(replay, p, ffnInp);
    cur = g.add(cur, ffnInp);
    inpL = cur;
  }

  let cur = norm(inpL, "output_norm.weight");
  cur.name = "result_norm";
  cur.output = true;
  cur = g.mulMat(weight("output.weight") ?? required("token_embd.weight"), cur);
  if (shape.logitScale) cur = g.scale(cur);
  cur.name = "result_output";
  cur.output = true;
  gf.expand(cur);
  return gf;
}

/** What every step of the graph replay shares: the graph, the model's shape, and its weights by name. */
interface Replay {
  readonly g: GraphContext;
  readonly gf: ComputeGraph;
  readonly shape: DecoderShape;
  readonly params: GraphParams;
  readonly T: number;
  readonly vTrans: boolean;
  readonly weight: (name: string) => Tensor | null;
  readonly required: (name: string) => Tensor;
  readonly linear: (w: Tensor, x: Tensor, scaleName: string) => Tensor;
  readonly norm: (x: Tensor, weightName: string) => Tensor;
  readonly hadamard: (cur: Tensor, r: Tensor) => Tensor;
  readonly positions: Tensor;
  readonly kRot: Tensor | null;
  readonly vRot: Tensor | null;
  readonly hasSwa: boolean;
  readonly nEmbdVGqaMax: number;
}

interface AttentionInputs {
  readonly kIdxs: Tensor;
  readonly vIdxs: Tensor;
  readonly mask: Tensor;
  readonly kvSize: number;
}

/** llama.cpp's build_qkv, then q/k norms and RoPE. */
function buildQkv(replay: Replay, p: string, cur: Tensor, nHead: number, nHeadKv: number): { Q: Tensor; K: Tensor; V: Tensor } {
  const { g, shape, T, weight, required, linear, norm, positions } = replay;
  // build_qkv
  let Q: Tensor;
  let K: Tensor;
  let V: Tensor;
  const wqkv = weight(`${p}.attn_qkv.weight`);
  if (wqkv) {
    let qkv = linear(wqkv, cur, `${p}.attn_qkv.scale`);
    const bias = weight(`${p}.attn_qkv.bias`);
    if (bias) qkv = g.add(qkv, bias);
    const rs = (n: number) => rowSize(qkv.type, n);
    Q = g.view(qkv, [shape.headDimK, nHead, T], [rs(shape.headDimK), qkv.nb[1]]);
    K = g.view(qkv, [shape.headDimK, nHeadKv, T], [rs(shape.headDimK), qkv.nb[1]]);
    V = g.view(qkv, [shape.headDimV, nHeadKv, T], [rs(shape.headDimV), qkv.nb[1]]);
  } else {
    const project = (name: string, heads: number, headDim: number) => {
      let y = linear(required(`${p}.${name}.weight`), cur, `${p}.${name}.scale`);
      const bias = weight(`${p}.${name}.bias`);
      if (bias) y = g.add(y, bias);
      return g.reshape(y, [headDim, heads, T]);
    };
    Q = project("attn_q", nHead, shape.headDimK);
    K = project("attn_k", nHeadKv, shape.headDimK);
    V = project("attn_v", nHeadKv, shape.headDimV);
  }
  if (weight(`${p}.attn_q_norm.weight`)) Q = norm(Q, `${p}.attn_q_norm.weight`);
  if (weight(`${p}.attn_k_norm.weight`)) K = norm(K, `${p}.attn_k_norm.weight`);
  const ropeFactors = weight("rope_freqs.weight");
  Q = g.rope(Q, positions, ropeFactors);
  K = g.rope(K, positions, ropeFactors);

  return { Q, K, V };
}

/** llama.cpp's build_attn with a KV cache (and build_attn_mha), through the output projection. */
function buildKvAttention(replay: Replay, il: number, Q: Tensor, K: Tensor, V: Tensor, nHeadKv: number, inp: AttentionInputs): Tensor {
  const { g, gf, shape, params, T, vTrans, weight, linear, norm, hadamard, kRot, vRot, hasSwa, nEmbdVGqaMax } = replay;
  const p = `blk.${il}`;
  let cur: Tensor;
  if (kRot) {
    Q = hadamard(Q, kRot);
    K = hadamard(K, kRot);
  }
  if (vRot) V = hadamard(V, vRot);
  gf.expand(Q);
  if (hasSwa) {
    gf.expand(K);
    gf.expand(V);
  } else {
    gf.expand(V);
    gf.expand(K);
  }
  const nEmbdKGqa = shape.headDimK * nHeadKv;
  const nEmbdVGqa = shape.headDimV * nHeadKv;
  const cacheVWidth = vTrans ? nEmbdVGqaMax : nEmbdVGqa;
  const cacheK = g.external(`cache_k_l${il}`, params.typeK, [nEmbdKGqa, inp.kvSize, 1]);
  const cacheV = g.external(`cache_v_l${il}`, params.typeV, [cacheVWidth, inp.kvSize, 1]);
  gf.expand(g.setRows(cacheK, g.view(K, [nEmbdKGqa, T], [K.nb[2]]), inp.kIdxs));
  if (!vTrans) {
    gf.expand(g.setRows(cacheV, g.view(V, [nEmbdVGqa, T], [V.nb[2]]), inp.vIdxs));
  } else {
    let v2 = rowSize(V.type, nEmbdVGqa) === V.nb[2] ? g.reshape(V, [nEmbdVGqa, T]) : g.cont(V, [nEmbdVGqa, T]);
    if (nEmbdVGqa < cacheVWidth) v2 = g.cont(v2, [cacheVWidth, T]); // ggml_pad
    const vView = g.reshape(cacheV, [1, cacheVWidth * inp.kvSize]);
    gf.expand(g.setRows(vView, g.reshape(v2, [1, v2.ne[0] * v2.ne[1]]), inp.vIdxs));
  }
  const k = g.view(cacheK, [shape.headDimK, nHeadKv, inp.kvSize, 1], [
    rowSize(params.typeK, shape.headDimK),
    rowSize(params.typeK, nEmbdKGqa),
    rowSize(params.typeK, nEmbdKGqa * inp.kvSize),
  ]);
  const v = vTrans
    ? g.view(cacheV, [inp.kvSize, nHeadKv, shape.headDimV, 1], [
        rowSize(params.typeV, inp.kvSize * shape.headDimV),
        rowSize(params.typeV, inp.kvSize),
        rowSize(params.typeV, inp.kvSize * cacheVWidth),
      ])
    : g.view(cacheV, [shape.headDimV, nHeadKv, inp.kvSize, 1], [
        rowSize(params.typeV, shape.headDimV),
        rowSize(params.typeV, nEmbdVGqa),
        rowSize(params.typeV, nEmbdVGqa * inp.kvSize),
      ]);

  // build_attn_mha
  const q4 = g.view(Q, [Q.ne[0], Q.ne[1], Q.ne[2], 1], [Q.nb[1], Q.nb[2], Q.nb[3]]);
  const qp = g.permute(q4, [0, 2, 1, 3]);
  const kp = g.permute(k, [0, 2, 1, 3]);
  const vp = g.permute(v, [0, 2, 1, 3]);
  if (params.flashAttention) {
    const fa = g.flashAttn(qp, kp, vp, inp.mask);
    cur = g.reshape(fa, [fa.ne[0] * fa.ne[1], fa.ne[2] * fa.ne[3]]);
  } else {
    let kq = g.mulMat(kp, qp);
    kq.name = `kq-${il}`;
    if (shape.attnSoftcap) kq = g.scale(g.unary(g.scale(kq)));
    kq = g.softMax(kq, inp.mask);
    const kqv = g.mulMat(vp, kq);
    const permuted = g.permute(kqv, [0, 2, 1, 3]);
    cur = g.cont(permuted, [permuted.ne[0] * permuted.ne[1], permuted.ne[2] * permuted.ne[3]]);
  }
  gf.expand(cur);
  if (vRot) cur = hadamard(cur, vRot);
  if (weight(`${p}.attn_sub_norm.weight`)) cur = norm(cur, `${p}.attn_sub_norm.weight`);
  const wo = weight(`${p}.attn_output.weight`);
  if (wo) cur = linear(wo, cur, `${p}.attn_output.scale`);
  const woBias = weight(`${p}.attn_output.bias`);
  if (woBias) cur = g.add(cur, woBias);

  return cur;
}

/** llama.cpp's build_ffn: gated or plain up projection, optional sub-norm, down projection. */
function buildFfn(replay: Replay, p: string, ffnInp: Tensor): Tensor {
  const { g, shape, weight, required, linear, norm } = replay;
  let cur = norm(ffnInp, `${p}.ffn_norm.weight`);
  const up = weight(`${p}.ffn_up.weight`);
  const gate = weight(`${p}.ffn_gate.weight`);
  if (up && gate) {
    const tmp = linear(up, cur, `${p}.ffn_up.scale`);
    const gated = linear(gate, cur, `${p}.ffn_gate.scale`);
    cur = g.gluSplit(gated, tmp);
  } else if (up) {
    cur = g.unary(linear(up, cur, `${p}.ffn_up.scale`));
  }
  if (weight(`${p}.ffn_sub_norm.weight`)) cur = norm(cur, `${p}.ffn_sub_norm.weight`);
  cur = linear(required(`${p}.ffn_down.weight`), cur, `${p}.ffn_down.scale`);
  const downBias = weight(`${p}.ffn_down.bias`);
  if (downBias) cur = g.add(cur, downBias);
  if (weight(`${p}.post_ffw_norm.weight`)) cur = norm(cur, `${p}.post_ffw_norm.weight`);
  if (shape.residualScale) cur = g.scale(cur);
  return cur;
}
