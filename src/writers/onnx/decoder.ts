/**
 * The decoder-only transformer as an ONNX graph with a KV cache, built from the architecture
 * file's tensor names and decoder features, in the I/O conventions onnxruntime-genai and
 * transformers.js share:
 *
 *   inputs   input_ids [batch, seq] int64, attention_mask [batch, total] int64,
 *            position_ids [batch, seq] int64, past_key_values.{i}.key|value [batch, kv_heads, past, head_dim]
 *   outputs  logits [batch, seq, vocab] float32, present.{i}.key|value [batch, kv_heads, total, head_dim]
 *
 * Activations are float32 throughout. Weights are written to the external data file as
 * the graph is built (see README.md in this folder for the operator choices).
 */
import type { DecoderHparams } from "../../arch/config.js";
import type { TensorRole } from "../../arch/tensor-names.js";
import type { Architecture, DecoderFeatures } from "../../arch/types.js";
import { UserError } from "../../errors.js";
import type { OnnxWeightPlan } from "../../plan/onnx.js";
import type { SourceTensor } from "../../readers/source-tensor.js";
import type { ExternalData } from "./external-data.js";
import { GraphBuilder, MS_DOMAIN } from "./graph.js";
import { ElementType } from "./proto.js";
import { rotaryCaches } from "./rotary.js";
import { OnnxWeights } from "./weight-nodes.js";
import { writeComputed, type ValueStats } from "./weights.js";

/** What the graph builder needs from the converter: the architecture, the source tensors and the weight plan. */
export interface DecoderSource {
  readonly architecture: Architecture;
  readonly hparams: DecoderHparams;
  readonly features: DecoderFeatures;
  /** A checkpoint tensor by Hugging Face name, or undefined if absent. */
  tensor(name: string): SourceTensor | undefined;
  readonly plan: OnnxWeightPlan;
  readonly accuracyLevel: number;
  readonly writer: ExternalData;
  readonly stats: ValueStats;
  /** Called after each source tensor is written, with its source byte count. */
  onTensor(name: string, sourceBytes: number): void;
}

export interface DecoderGraph {
  readonly graph: GraphBuilder;
  /** Weight encodings by Hugging Face tensor name, for the report. */
  readonly encodings: Map<string, string>;
}

const F = ElementType.FLOAT;

/** The graph inputs every layer reads: token ids, positions, and GroupQueryAttention's sequence lengths from the mask. */
function decoderInputs(g: GraphBuilder) {
  const inputIds = g.input("input_ids", ElementType.INT64, ["batch_size", "sequence_length"]);
  const attentionMask = g.input("attention_mask", ElementType.INT64, ["batch_size", "total_sequence_length"]);
  const positionIds = g.input("position_ids", ElementType.INT64, ["batch_size", "sequence_length"]);
  const maskSum = g.op("ReduceSum", "/model/attn_mask_reformat/reduce_sum", [attentionMask, g.int64([1])], { keepdims: 0 });
  const seqlensK = g.op("Cast", "/model/attn_mask_reformat/seqlens_k", [g.op("Sub", "/model/attn_mask_reformat/sub", [maskSum, g.int64([1], true)])], { to: ElementType.INT32 });
  const maskShape = g.op("Shape", "/model/attn_mask_reformat/shape", [attentionMask]);
  const totalLength = g.op("Cast", "/model/attn_mask_reformat/total_seq_len", [g.op("Gather", "/model/attn_mask_reformat/gather", [maskShape, g.int64([1], true)], { axis: 0 })], { to: ElementType.INT32 });
  return { inputIds, positionIds, seqlensK, totalLength };
}

export async function buildDecoder(src: DecoderSource): Promise<DecoderGraph> {
  const h = src.hparams;
  if (h.headDim % 8 !== 0) throw new UserError(`head_dim ${h.headDim} is not a multiple of 8, which ONNX Runtime's GroupQueryAttention requires`);
  if (h.heads % h.kvHeads !== 0) throw new UserError(`num_attention_heads ${h.heads} is not a multiple of num_key_value_heads ${h.kvHeads}`);
  const g = new GraphBuilder();
  const weights = new OnnxWeights(src, g);
  const inputs = decoderInputs(g);

  let x = await weights.embedding(inputs.inputIds);
  if (src.features.embeddingScale !== undefined) x = g.op("Mul", "/model/embedding_scale/Mul", [x, g.float(src.features.embeddingScale)]);
  const rotary = await rotaryInputs(src, g, inputs.totalLength, h, "");
  // Sliding-window layers have their own RoPE base, unscaled.
  const window = src.features.slidingWindow;
  const localRotary = window ? await rotaryInputs(src, g, inputs.totalLength, { ...h, ropeTheta: window.ropeTheta, ropeScaling: { kind: "none" } }, "_local") : rotary;
  for (let i = 0; i < h.layers; i++) {
    const sliding = window?.layers[i] === true;
    x = await decoderLayer(src, g, weights, x, i, { ...inputs, rotary: sliding ? localRotary : rotary, window: sliding ? window.window : undefined });
  }

  let finalNorm = weights.rmsNorm(x, await normWeight(src, g, weights, "output_norm", undefined, h.hiddenSize), "output_norm");
  if (src.features.logitDivisor !== undefined) finalNorm = g.op("Div", "/model/logit_scale/Div", [finalNorm, g.float(src.features.logitDivisor)]);
  const hasOutput = src.tensor(weights.name("output")) !== undefined;
  if (!hasOutput && !h.tieWordEmbeddings) throw new UserError(`checkpoint has no '${weights.name("output")}' and config.json does not set tie_word_embeddings`);
  const logits = await weights.linear(finalNorm, "output", undefined, h.hiddenSize, h.vocabSize, hasOutput ? "output" : "token_embd");
  g.node("Identity", `${weights.node("output")}/Identity`, [logits], { outputs: ["logits"] });
  g.output("logits", F, ["batch_size", "sequence_length", h.vocabSize]);
  return { graph: g, encodings: weights.encodings };
}

/**
 * RotaryEmbedding's cos/sin caches. With LongRoPE both tables are stored and, per run, the first
 * total_sequence_length rows of the long one are used when that length exceeds the original
 * context, else the short one's: transformers' choice (seq_len > original_max_position_embeddings).
 * `h` and `suffix` give sliding-window layers their own caches (their own RoPE base).
 */
async function rotaryInputs(src: DecoderSource, g: GraphBuilder, totalLength: string, h: DecoderHparams, suffix: string): Promise<{ cos: string; sin: string }> {
  const caches = rotaryCaches(h);
  const shape = [h.contextLength, h.ropeDim / 2];
  const store = async (name: string, values: Float32Array) => g.initializer(await writeComputed(src.writer, name, shape, values));
  const cos = await store(`cos_cache${suffix}`, caches.short.cos);
  const sin = await store(`sin_cache${suffix}`, caches.short.sin);
  if (!caches.long) return { cos, sin };
  const n = `/model/rotary_emb${suffix}`;
  const longCos = await store(`cos_cache_long${suffix}`, caches.long.table.cos);
  const longSin = await store(`sin_cache_long${suffix}`, caches.long.table.sin);
  const useLong = g.op("Greater", `${n}/use_long`, [totalLength, g.op("Cast", `${n}/original_context`, [g.int64([caches.long.originalContext], true)], { to: ElementType.INT32 })]);
  const end = g.op("Unsqueeze", `${n}/end`, [g.op("Cast", `${n}/total_i64`, [totalLength], { to: ElementType.INT64 }), g.int64([0])]);
  const rows = (table: string, label: string) => g.op("Slice", `${n}/${label}/Slice`, [table, g.int64([0]), end, g.int64([0])]);
  return {
    cos: g.op("Where", `${n}/cos/Where`, [useLong, rows(longCos, "cos_long"), rows(cos, "cos_short")]),
    sin: g.op("Where", `${n}/sin/Where`, [useLong, rows(longSin, "sin_long"), rows(sin, "sin_short")]),
  };
}

/** q, k, v: three MatMuls, or one fused qkv MatMul split three ways (the rows are q, then k, then v). */
async function attentionProjections(src: DecoderSource, g: GraphBuilder, weights: OnnxWeights, x: string, i: number): Promise<[string, string, string]> {
  const { heads, kvHeads, headDim, hiddenSize } = src.hparams;
  if (!src.architecture.tensors.includes("attn_qkv")) {
    return [
      await weights.linear(x, "attn_q", i, hiddenSize, heads * headDim),
      await weights.linear(x, "attn_k", i, hiddenSize, kvHeads * headDim),
      await weights.linear(x, "attn_v", i, hiddenSize, kvHeads * headDim),
    ];
  }
  const sizes = [heads * headDim, kvHeads * headDim, kvHeads * headDim];
  const qkv = await weights.linear(x, "attn_qkv", i, hiddenSize, sizes[0]! + sizes[1]! + sizes[2]!);
  const [q, k, v] = g.node("Split", `${weights.node("attn_qkv", i)}/Split`, [qkv, g.int64(sizes)], { outputs: 3, attributes: { axis: -1 } });
  return [q!, k!, v!];
}

/** gate and up: two MatMuls, or one fused gate_up MatMul split in halves (gate rows first). */
async function gateAndUp(src: DecoderSource, g: GraphBuilder, weights: OnnxWeights, x: string, i: number): Promise<[string, string]> {
  const { hiddenSize, intermediateSize } = src.hparams;
  if (!src.architecture.tensors.includes("ffn_gate_up")) {
    return [await weights.linear(x, "ffn_gate", i, hiddenSize, intermediateSize), await weights.linear(x, "ffn_up", i, hiddenSize, intermediateSize)];
  }
  const fused = await weights.linear(x, "ffn_gate_up", i, hiddenSize, 2 * intermediateSize);
  const [gate, up] = g.node("Split", `${weights.node("ffn_gate_up", i)}/Split`, [fused, g.int64([intermediateSize, intermediateSize])], { outputs: 2, attributes: { axis: -1 } });
  return [gate!, up!];
}

interface LayerInputs {
  readonly positionIds: string;
  readonly seqlensK: string;
  readonly totalLength: string;
  readonly rotary: { readonly cos: string; readonly sin: string };
  /** Positions a sliding-window layer sees, its own included. */
  readonly window: number | undefined;
}

/** A norm's weight as the model multiplies by it: (offset + w) when the architecture stores w - offset. */
async function normWeight(src: DecoderSource, g: GraphBuilder, weights: OnnxWeights, role: TensorRole, i: number | undefined, width: number): Promise<string> {
  const weight = await weights.vector(role, i, width);
  const offset = src.features.normWeightOffset;
  return offset === undefined ? weight : g.op("Add", `${weights.node(role, i)}/weight_offset/Add`, [weight, g.float(offset)]);
}

/** The FFN gate's activation: SiLU, or GELU's tanh approximation (transformers' gelu_pytorch_tanh). */
function activation(src: DecoderSource, g: GraphBuilder, x: string, n: string): string {
  if (src.features.ffnActivation !== "gelu_tanh") return g.op("Mul", `${n}/mlp/act_fn/Mul`, [x, g.op("Sigmoid", `${n}/mlp/act_fn/Sigmoid`, [x])]);
  const cube = g.op("Mul", `${n}/mlp/act_fn/Mul_cube`, [x, g.op("Mul", `${n}/mlp/act_fn/Mul_square`, [x, x])]);
  const inner = g.op("Add", `${n}/mlp/act_fn/Add_inner`, [x, g.op("Mul", `${n}/mlp/act_fn/Mul_coef`, [cube, g.float(0.044715)])]);
  const tanh = g.op("Tanh", `${n}/mlp/act_fn/Tanh`, [g.op("Mul", `${n}/mlp/act_fn/Mul_sqrt_2_pi`, [inner, g.float(Math.sqrt(2 / Math.PI))])]);
  const half = g.op("Mul", `${n}/mlp/act_fn/Mul_half`, [x, g.float(0.5)]);
  return g.op("Mul", `${n}/mlp/act_fn/Mul`, [half, g.op("Add", `${n}/mlp/act_fn/Add_one`, [tanh, g.float(1)])]);
}

/** Architectures with norms on each sub-layer's output (Gemma's sandwich norms) declare these roles. */
async function postNorm(src: DecoderSource, g: GraphBuilder, weights: OnnxWeights, x: string, role: TensorRole, i: number): Promise<string> {
  if (!src.architecture.tensors.includes(role)) return x;
  return weights.rmsNorm(x, await normWeight(src, g, weights, role, i, src.hparams.hiddenSize), role, i);
}

async function decoderLayer(src: DecoderSource, g: GraphBuilder, weights: OnnxWeights, input: string, i: number, inputs: LayerInputs): Promise<string> {
  const { heads, kvHeads, headDim, ropeDim, hiddenSize, intermediateSize } = src.hparams;
  const n = `/model/layers.${i}`;
  const residual = (x: string, branch: string, label: string) => {
    const scaled = src.features.residualScale === undefined ? branch : g.op("Mul", `${n}/${label}_scale/Mul`, [branch, g.float(src.features.residualScale)]);
    return g.op("Add", `${n}/${label}_residual/Add`, [x, scaled]);
  };
  const normed = weights.rmsNorm(input, await normWeight(src, g, weights, "attn_norm", i, hiddenSize), "attn_norm", i);
  let [q, k, v] = await attentionProjections(src, g, weights, normed, i);
  if (src.features.qkNorm) {
    q = await perHeadNorm(src, g, weights, q, "attn_q_norm", i, headDim);
    k = await perHeadNorm(src, g, weights, k, "attn_k_norm", i, headDim);
  }
  // Partial rotary (partial_rotary_factor): only the first rope_dim dimensions of each head turn.
  const partial: Record<string, number> = ropeDim < headDim ? { rotary_embedding_dim: ropeDim } : {};
  if (!src.features.nopeLayers?.includes(i)) {
    q = g.op("RotaryEmbedding", `${n}/attn/q_rotary/RotaryEmbedding`, [q, inputs.positionIds, inputs.rotary.cos, inputs.rotary.sin], { interleaved: 0, num_heads: heads, ...partial }, MS_DOMAIN);
    k = g.op("RotaryEmbedding", `${n}/attn/k_rotary/RotaryEmbedding`, [k, inputs.positionIds, inputs.rotary.cos, inputs.rotary.sin], { interleaved: 0, num_heads: kvHeads, ...partial }, MS_DOMAIN);
  }
  const pastKey = g.input(`past_key_values.${i}.key`, F, ["batch_size", kvHeads, "past_sequence_length", headDim]);
  const pastValue = g.input(`past_key_values.${i}.value`, F, ["batch_size", kvHeads, "past_sequence_length", headDim]);
  const [attended] = g.node("GroupQueryAttention", `${n}/attn/GroupQueryAttention`, [q, k, v, pastKey, pastValue, inputs.seqlensK, inputs.totalLength], {
    outputs: [`${n}/attn/GroupQueryAttention/output_0`, `present.${i}.key`, `present.${i}.value`],
    attributes: {
      num_heads: heads, kv_num_heads: kvHeads, scale: { float: src.features.attentionScale ?? 1 / Math.sqrt(headDim) },
      // Positions seen, the current one included, as transformers' sliding_window (measured against the oracle).
      ...(inputs.window === undefined ? {} : { local_window_size: inputs.window }),
    },
    domain: MS_DOMAIN,
  });
  g.output(`present.${i}.key`, F, ["batch_size", kvHeads, "total_sequence_length", headDim]);
  g.output(`present.${i}.value`, F, ["batch_size", kvHeads, "total_sequence_length", headDim]);
  const attnOut = await weights.linear(attended!, "attn_output", i, heads * headDim, hiddenSize);
  const x = residual(input, await postNorm(src, g, weights, attnOut, "attn_post_norm", i), "attn");

  const normed2 = weights.rmsNorm(x, await normWeight(src, g, weights, "ffn_norm", i, hiddenSize), "ffn_norm", i);
  const [gate, up] = await gateAndUp(src, g, weights, normed2, i);
  const down = await weights.linear(g.op("Mul", `${n}/mlp/Mul`, [activation(src, g, gate, n), up]), "ffn_down", i, intermediateSize, hiddenSize);
  return residual(x, await postNorm(src, g, weights, down, "ffn_post_norm", i), "mlp");
}

/** RMSNorm over head_dim for each head (Qwen3's q_norm / k_norm), before RoPE. */
async function perHeadNorm(src: DecoderSource, g: GraphBuilder, weights: OnnxWeights, x: string, role: TensorRole, i: number, headDim: number): Promise<string> {
  const weight = await normWeight(src, g, weights, role, i, headDim);
  const perHead = g.op("Reshape", `${weights.node(role, i)}/Reshape`, [x, g.int64([0, 0, -1, headDim])]);
  return g.op("Reshape", `${weights.node(role, i)}/Reshape_1`, [weights.rmsNorm(perHead, weight, role, i), g.int64([0, 0, -1])]);
}
