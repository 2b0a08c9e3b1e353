import { isConvKernelTensor } from "../arch/tensor-names.js";
import { GgmlType, blockSize, isQuantized } from "./ggml-types.js";
import type { Scheme } from "./schemes.js";

/**
 * Per-tensor type choices of llama.cpp's quantizer (src/llama-quant.cpp,
 * llama_tensor_get_type) for the schemes edgequant offers, so that our
 * mixtures match `llama-quantize` tensor for tensor.
 */

export interface MixtureModel {
  readonly layers: number;
  readonly heads: number;
  readonly kvHeads: number;
  /** llama.cpp gives 70B-class Llamas' attn_v more bits (it only detects LLM_TYPE_70B there). */
  readonly is70B: boolean;
}

export interface MixtureTensor {
  readonly name: string;
  /** PyTorch order; the last entry is the row length (ggml's ne[0]). */
  readonly shape: readonly number[];
}

type Category = "token_embd" | "output" | "attn_v" | "attn_k" | "attn_q" | "attn_output" | "ffn_up" | "ffn_gate" | "ffn_down" | "other";

/** llama.cpp's tensor_get_category: substring tests, in this order. */
function category(name: string): Category {
  if (name === "output.weight") return "output";
  if (name === "token_embd.weight") return "token_embd";
  const substrings: [string, Category][] = [
    // Fused QKV is attn_v-like (category_is_attn_v): same rules and the same i_attention_wv counter.
    ["attn_qkv.weight", "attn_v"],
    ["attn_v.weight", "attn_v"], ["attn_k.weight", "attn_k"], ["attn_q.weight", "attn_q"], ["attn_output.weight", "attn_output"],
    ["ffn_up", "ffn_up"], ["ffn_gate", "ffn_gate"], ["ffn_down", "ffn_down"],
  ];
  return substrings.find(([part]) => name.includes(part))?.[1] ?? "other";
}

/** llama.cpp quantizes 2-D+ weights, never norms or convolution kernels (tensor_allows_quantization, for our architectures). */
function allowsQuantization(tensor: MixtureTensor): boolean {
  return tensor.shape.length >= 2 && tensor.name.endsWith("weight") && !tensor.name.includes("_norm.weight") && !isConvKernelTensor(tensor.name);
}

/**
 * llama.cpp visits tensors in its loader's order: non-block tensors first, then
 * block by block, by name within each (weight_name_comparer). Its "layer" counters
 * follow that order, so we sort the same way.
 */
export function llamaLoaderOrder(a: string, b: string): number {
  const layer = (name: string) => Number(/^blk\.(\d+)\./.exec(name)?.[1] ?? -1);
  return layer(a) - layer(b) || (a < b ? -1 : a > b ? 1 : 0);
}

/** Chooses each tensor's type for `scheme`; `tensors` must be in llamaLoaderOrder. `keptType` gives the type of a tensor llama.cpp does not quantize. */
export function mixtureTypes<T extends MixtureTensor>(tensors: readonly T[], scheme: Scheme, model: MixtureModel, keptType: (tensor: T) => GgmlType): GgmlType[] {
  const state = {
    attnV: { seen: 0, total: tensors.filter((t) => category(t.name) === "attn_v").length },
    ffnDown: 0,
    tiedEmbeddings: !tensors.some((t) => category(t.name) === "output"),
  };
  return tensors.map((tensor) => {
    if (!allowsQuantization(tensor)) return keptType(tensor);
    if (!isQuantized(scheme.weightType)) return scheme.weightType;
    const chosen = mixtureType(tensor, category(tensor.name), scheme, model, state);
    return fallbackForRowLength(chosen, tensor.shape.at(-1)!);
  });
}

/**
 * llama.cpp's use_more_bits (src/llama-quant.cpp): the first and last eighth of the layers and
 * every third layer between them. mlx-lm's mixed recipes copy it (mlx_lm/convert.py), so the
 * MLX writer uses this one too.
 */
export function useMoreBits(layer: number, layers: number): boolean {
  return layer < Math.trunc(layers / 8) || layer >= Math.trunc((7 * layers) / 8) || (layer - Math.trunc(layers / 8)) % 3 === 2;
}

function mixtureType(
  tensor: MixtureTensor,
  kind: Category,
  scheme: Scheme,
  model: MixtureModel,
  state: { attnV: { seen: number; total: number }; ffnDown: number; tiedEmbeddings: boolean },
): GgmlType {
  const s = scheme.name;
  // llama.cpp's n_gqa() is 0 when layer 0 has no KV heads (a hybrid model's recurrent layer).
  const gqa = model.kvHeads === 0 ? 0 : model.heads / model.kvHeads;
  const base = scheme.weightType;

  if (kind === "output" || (state.tiedEmbeddings && kind === "token_embd")) {
    const rowLength = tensor.shape.at(-1)!;
    if (rowLength % blockSize(base) !== 0) return GgmlType.Q8_0;
    return base === GgmlType.Q8_0 ? base : GgmlType.Q6_K;
  }
  if (kind === "token_embd") {
    return s === "tq1_0" || s === "tq2_0" ? GgmlType.Q4_K : base;
  }
  if (kind === "attn_v") {
    const i = state.attnV.seen++;
    let type = base;
    if (s === "q2_k") type = gqa >= 4 ? GgmlType.Q4_K : GgmlType.Q3_K;
    else if (s === "q3_k_m") type = i < 2 ? GgmlType.Q5_K : GgmlType.Q4_K;
    else if (s === "q3_k_l") type = GgmlType.Q5_K;
    else if ((s === "q4_k_m" || s === "q5_k_m") && useMoreBits(i, state.attnV.total)) type = GgmlType.Q6_K;
    else if (s === "q4_k_s" && i < 4) type = GgmlType.Q5_K;
    if (model.is70B && (type === GgmlType.Q3_K || type === GgmlType.Q4_K)) type = GgmlType.Q5_K;
    return type;
  }
  if (kind === "ffn_down") {
    // Without experts llama.cpp's "layer" is its visit counter, not the block number.
    const layer = state.ffnDown++;
    const layers = model.layers;
    if (s === "q2_k") return GgmlType.Q3_K;
    if (s === "q3_k_m") return layer < Math.trunc(layers / 16) ? GgmlType.Q5_K : GgmlType.Q4_K;
    if (s === "q3_k_l") return GgmlType.Q5_K;
    if (s === "q4_k_m") return useMoreBits(layer, layers) ? GgmlType.Q6_K : base;
    if (s === "q5_k_m" && useMoreBits(layer, layers)) return GgmlType.Q6_K;
    if (s === "q4_k_s" && layer < Math.trunc(layers / 8)) return GgmlType.Q5_K;
    return base;
  }
  if (kind === "attn_output") {
    if (s === "q2_k") return GgmlType.Q3_K;
    if (s === "q3_k_m") return GgmlType.Q4_K;
    if (s === "q3_k_l") return GgmlType.Q5_K;
    return base;
  }
  return base;
}

/** llama.cpp's tensor_type_fallback: rows that are not a whole number of blocks get a smaller-block type. */
function fallbackForRowLength(type: GgmlType, rowLength: number): GgmlType {
  if (rowLength % blockSize(type) === 0) return type;
  const smaller: Partial<Record<GgmlType, GgmlType>> = {
    [GgmlType.Q2_K]: GgmlType.Q4_0,
    [GgmlType.Q3_K]: GgmlType.Q4_0,
    [GgmlType.TQ1_0]: GgmlType.Q4_0,
    [GgmlType.TQ2_0]: GgmlType.Q4_0,
    [GgmlType.Q4_K]: GgmlType.Q5_0,
    [GgmlType.Q5_K]: GgmlType.Q5_1,
    [GgmlType.Q6_K]: GgmlType.Q8_0,
  };
  const fallback = smaller[type] ?? type;
  return rowLength % blockSize(fallback) === 0 ? fallback : GgmlType.F16;
}
