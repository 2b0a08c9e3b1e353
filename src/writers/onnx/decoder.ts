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
import type { ExternalDataWriter } from "./external-data.js";
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
  readonly writer: ExternalDataWriter;
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
  const rotary = await rotaryInputs(src, g, inputs.totalLength);
  for (let i = 0; i < h.layers; i++) x = await decoderLayer(src, g, weights, x, i, { ...inputs, rotary });

  let finalNorm = weights.rmsNorm(x, await weights.vector("output_norm", undefined, h.hiddenSize), "output_norm");
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
 */
async function rotaryInputs(src: DecoderSource, g: GraphBuilder, totalLength: string): Promise<{ cos: string; sin: string }> {
  const h = src.hparams;
  const caches = rotaryCaches(h);
  const shape = [h.contextLength, h.ropeDim / 2];
  const store = async (name: string, values: Float32Array) => g.initializer(await writeComputed(src.writer, name, shape, values));
  const cos = await store("cos_cache", caches.short.cos);
  const sin = await store("sin_cache", caches.short.sin);
  if (!caches.long) return { cos, sin };
  const n = "/model/rotary_emb";
  const longCos = await store("cos_cache_long", caches.long.table.cos);
  const longSin = await store("sin_cache_long", caches.long.table.sin);
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
}

async function decoderLayer(src: DecoderSource, g: GraphBuilder, weights: OnnxWeights, input: string, i: number, inputs: LayerInputs): Promise<string> {
  const { heads, kvHeads, headDim, ropeDim, hiddenSize, intermediateSize } = src.hparams;
  const n = `/model/layers.${i}`;
  const residual = (x: string, branch: string, label: string) => {
    const scaled = src.features.residualScale === undefined ? branch : g.op("Mul", `${n}/${label}_scale/Mul`, [branch, g.float(src.features.residualScale)]);
    return g.op("Add", `${n}/${label}_residual/Add`, [x, scaled]);
  };
  const normed = weights.rmsNorm(input, await weights.vector("attn_norm", i, hiddenSize), "attn_norm", i);
  let [q, k, v] = await attentionProjections(src, g, weights, normed, i);
  if (src.features.qkNorm) {
    q = await perHeadNorm(g, weights, q, "attn_q_norm", i, headDim);
    k = await perHeadNorm(g, weights, k, "attn_k_norm", i, headDim);
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
    attributes: { num_heads: heads, kv_num_heads: kvHeads, scale: { float: src.features.attentionScale ?? 1 / Math.sqrt(headDim) } },
    domain: MS_DOMAIN,
  });
  g.output(`present.${i}.key`, F, ["batch_size", kvHeads, "total_sequence_length", headDim]);
  g.output(`present.${i}.value`, F, ["batch_size", kvHeads, "total_sequence_length", headDim]);
  const x = residual(input, await weights.linear(attended!, "attn_output", i, heads * headDim, hiddenSize), "attn");

  const normed2 = weights.rmsNorm(x, await weights.vector("ffn_norm", i, hiddenSize), "ffn_norm", i);
  const [gate, up] = await gateAndUp(src, g, weights, normed2, i);
  const silu = g.op("Mul", `${n}/mlp/act_fn/Mul`, [gate, g.op("Sigmoid", `${n}/mlp/act_fn/Sigmoid`, [gate])]);
  const down = await weights.linear(g.op("Mul", `${n}/mlp/Mul`, [silu, up]), "ffn_down", i, intermediateSize, hiddenSize);
  return residual(x, down, "mlp");
}

/** RMSNorm over head_dim for each head (Qwen3's q_norm / k_norm), before RoPE. */
async function perHeadNorm(g: GraphBuilder, weights: OnnxWeights, x: string, role: TensorRole, i: number, headDim: number): Promise<string> {
  const weight = await weights.vector(role, i, headDim);
  const perHead = g.op("Reshape", `${weights.node(role, i)}/Reshape`, [x, g.int64([0, 0, -1, headDim])]);
  return g.op("Reshape", `${weights.node(role, i)}/Reshape_1`, [weights.rmsNorm(perHead, weight, role, i), g.int64([0, 0, -1])]);
}
