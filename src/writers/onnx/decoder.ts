/**
 * The decoder-only transformer (Llama, Qwen2, Qwen3) as an ONNX graph with a KV cache,
 * in the I/O conventions onnxruntime-genai and transformers.js share:
 *
 *   inputs   input_ids [batch, seq] int64, attention_mask [batch, total] int64,
 *            position_ids [batch, seq] int64, past_key_values.{i}.key|value [batch, kv_heads, past, head_dim]
 *   outputs  logits [batch, seq, vocab] float32, present.{i}.key|value [batch, kv_heads, total, head_dim]
 *
 * Activations are float32 throughout. Weights are written to the external data file as
 * the graph is built (see README.md in this folder for the operator choices).
 */
import type { DecoderHparams, RopeScaling } from "../../arch/config.js";
import { UserError } from "../../errors.js";
import type { SourceTensor } from "../../readers/source-tensor.js";
import type { ExternalDataWriter } from "./external-data.js";
import { GraphBuilder, MS_DOMAIN } from "./graph.js";
import type { NBitsLayout, NBitsMethod } from "./nbits.js";
import { ElementType } from "./proto.js";
import { expectShape, writeComputed, writeFloatTensor, writeNBits, writeTransposed, type FloatStorage, type ValueStats } from "./weights.js";

/** How one Linear weight is stored. */
export type LinearEncoding =
  | { readonly kind: "float"; readonly storage: FloatStorage }
  | { readonly kind: "nbits"; readonly blockSize: number; readonly method: NBitsMethod };

export type DecoderFamily = "llama" | "qwen2" | "qwen3";

/** What the graph builder needs from the converter: the source tensors and the encoding of each weight. */
export interface DecoderSource {
  readonly family: DecoderFamily;
  readonly hparams: DecoderHparams;
  /** A checkpoint tensor by Hugging Face name, or undefined if absent. */
  tensor(name: string): SourceTensor | undefined;
  /** Decides (possibly after reading it) how a Linear weight is encoded. */
  linearEncoding(name: string, source: SourceTensor): Promise<LinearEncoding>;
  /** How the token embedding table is stored: a float Gather or a GatherBlockQuantized. */
  embeddingEncoding(source: SourceTensor): Promise<LinearEncoding>;
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

export async function buildDecoder(src: DecoderSource): Promise<DecoderGraph> {
  const h = src.hparams;
  const g = new GraphBuilder();
  const encodings = new Map<string, string>();
  const { layers, heads, kvHeads, headDim, hiddenSize, vocabSize, rmsNormEps } = h;
  if (headDim % 8 !== 0) throw new UserError(`head_dim ${headDim} is not a multiple of 8, which ONNX Runtime's GroupQueryAttention requires`);
  if (heads % kvHeads !== 0) throw new UserError(`num_attention_heads ${heads} is not a multiple of num_key_value_heads ${kvHeads}`);

  const required = (name: string, shape: readonly number[]): SourceTensor => {
    const tensor = src.tensor(name);
    if (!tensor) throw new UserError(`checkpoint has no tensor '${name}'`);
    expectShape(tensor, shape);
    return tensor;
  };

  // --- graph inputs
  const inputIds = g.input("input_ids", ElementType.INT64, ["batch_size", "sequence_length"]);
  const attentionMask = g.input("attention_mask", ElementType.INT64, ["batch_size", "total_sequence_length"]);
  const positionIds = g.input("position_ids", ElementType.INT64, ["batch_size", "sequence_length"]);
  const past: { key: string; value: string }[] = [];
  for (let i = 0; i < layers; i++) {
    past.push({
      key: g.input(`past_key_values.${i}.key`, F, ["batch_size", kvHeads, "past_sequence_length", headDim]),
      value: g.input(`past_key_values.${i}.value`, F, ["batch_size", kvHeads, "past_sequence_length", headDim]),
    });
  }

  // --- GroupQueryAttention's sequence lengths from the attention mask
  const maskSum = g.op("ReduceSum", "/model/attn_mask_reformat/reduce_sum", [attentionMask, g.int64([1])], { keepdims: 0 });
  const seqlensK = g.op("Cast", "/model/attn_mask_reformat/seqlens_k", [g.op("Sub", "/model/attn_mask_reformat/sub", [maskSum, g.int64([1], true)])], { to: ElementType.INT32 });
  const maskShape = g.op("Shape", "/model/attn_mask_reformat/shape", [attentionMask]);
  const totalLength = g.op("Cast", "/model/attn_mask_reformat/total_seq_len", [g.op("Gather", "/model/attn_mask_reformat/gather", [maskShape, g.int64([1], true)], { axis: 0 })], { to: ElementType.INT32 });

  // --- weights
  const vector = async (name: string, width: number): Promise<string> => {
    const source = required(name, [width]);
    const proto = await writeFloatTensor(src.writer, name, source, "F32", src.stats);
    src.onTensor(name, source.byteLength);
    encodings.set(name, "F32");
    return g.initializer(proto);
  };

  const bitsOf = (method: NBitsMethod) => (method.kind === "q4_0" ? 4 : method.kind === "q8_0" ? 8 : 2);
  const describe = (encoding: Extract<LinearEncoding, { kind: "nbits" }>) =>
    `${encoding.method.kind === "ternary" ? `ternary (2-bit, scale ${encoding.method.scale})` : `${encoding.method.kind} (${bitsOf(encoding.method)}-bit)`}, block ${encoding.blockSize}`;

  const linear = async (x: string, prefix: string, inFeatures: number, outFeatures: number, weightName = `${prefix}.weight`): Promise<string> => {
    const source = required(weightName, [outFeatures, inFeatures]);
    const encoding = await src.linearEncoding(weightName, source);
    const node = `/${prefix.replaceAll(".", "/")}`;
    let y: string;
    if (encoding.kind === "float") {
      const proto = await writeTransposed(src.writer, `${weightName}.T`, source, encoding.storage, src.stats);
      let weight = g.initializer(proto);
      if (encoding.storage !== "F32") weight = g.op("Cast", `${node}/weight_cast`, [weight], { to: F });
      y = g.op("MatMul", `${node}/MatMul`, [x, weight]);
      encodings.set(weightName, encoding.storage);
    } else {
      const bits = bitsOf(encoding.method);
      const layout: NBitsLayout = { bits, blockSize: encoding.blockSize, k: inFeatures, n: outFeatures };
      const tensors = await writeNBits(src.writer, weightName, source, layout, encoding.method, src.stats);
      const inputs = [x, g.initializer(tensors.b), g.initializer(tensors.scales)];
      if (tensors.zeroPoints) inputs.push(g.initializer(tensors.zeroPoints));
      y = g.op("MatMulNBits", `${node}/MatMulNBits`, inputs, { K: inFeatures, N: outFeatures, bits, block_size: encoding.blockSize, accuracy_level: src.accuracyLevel }, MS_DOMAIN);
      encodings.set(weightName, `MatMulNBits ${describe(encoding)}`);
    }
    src.onTensor(weightName, source.byteLength);
    const biasName = `${prefix}.bias`;
    if (src.tensor(biasName) && weightName === `${prefix}.weight`) y = g.op("Add", `${node}/Add`, [y, await vector(biasName, outFeatures)]);
    return y;
  };

  const rmsNorm = (x: string, weight: string, name: string): string =>
    g.op("SimplifiedLayerNormalization", name, [x, weight], { axis: -1, epsilon: { float: rmsNormEps }, stash_type: 1 });

  // --- embedding
  const embedName = "model.embed_tokens.weight";
  const embedSource = required(embedName, [vocabSize, hiddenSize]);
  const embedEncoding = await src.embeddingEncoding(embedSource);
  let x: string;
  if (embedEncoding.kind === "float") {
    const embedProto = await writeFloatTensor(src.writer, embedName, embedSource, embedEncoding.storage, src.stats);
    encodings.set(embedName, `Gather ${embedEncoding.storage}`);
    x = g.op("Gather", "/model/embed_tokens/Gather", [g.initializer(embedProto), inputIds], { axis: 0 });
    if (embedEncoding.storage !== "F32") x = g.op("Cast", "/model/embed_tokens/Cast", [x], { to: F });
  } else {
    // Same blocks as MatMulNBits, with B flattened to [vocab, hidden * bits / 8] as GatherBlockQuantized wants it.
    const bits = bitsOf(embedEncoding.method);
    const layout: NBitsLayout = { bits, blockSize: embedEncoding.blockSize, k: hiddenSize, n: vocabSize };
    const tensors = await writeNBits(src.writer, embedName, embedSource, layout, embedEncoding.method, src.stats, { flat: true });
    const inputs = [g.initializer(tensors.b), inputIds, g.initializer(tensors.scales)];
    if (tensors.zeroPoints) inputs.push(g.initializer(tensors.zeroPoints));
    x = g.op("GatherBlockQuantized", "/model/embed_tokens/GatherBlockQuantized", inputs, { bits, block_size: embedEncoding.blockSize, gather_axis: 0, quantize_axis: 1 }, MS_DOMAIN);
    encodings.set(embedName, `GatherBlockQuantized ${describe(embedEncoding)}`);
  }
  src.onTensor(embedName, embedSource.byteLength);

  // --- rotary caches, shared by every layer
  const { cos, sin } = rotaryCaches(h);
  const cosCache = g.initializer(await writeComputed(src.writer, "cos_cache", [h.contextLength, headDim / 2], cos));
  const sinCache = g.initializer(await writeComputed(src.writer, "sin_cache", [h.contextLength, headDim / 2], sin));

  for (let i = 0; i < layers; i++) {
    const p = `model.layers.${i}`;
    const n = `/model/layers.${i}`;
    const inputNorm = await vector(`${p}.input_layernorm.weight`, hiddenSize);
    const normed = rmsNorm(x, inputNorm, `${n}/input_layernorm/SimplifiedLayerNorm`);
    let q = await linear(normed, `${p}.self_attn.q_proj`, hiddenSize, heads * headDim);
    let k = await linear(normed, `${p}.self_attn.k_proj`, hiddenSize, kvHeads * headDim);
    const v = await linear(normed, `${p}.self_attn.v_proj`, hiddenSize, kvHeads * headDim);
    if (src.family === "qwen3") {
      // Per-head RMSNorm over head_dim, before RoPE.
      const perHead = g.int64([0, 0, -1, headDim]);
      const flat = g.int64([0, 0, -1]);
      const qNorm = await vector(`${p}.self_attn.q_norm.weight`, headDim);
      const kNorm = await vector(`${p}.self_attn.k_norm.weight`, headDim);
      q = g.op("Reshape", `${n}/attn/q_norm/Reshape_1`, [rmsNorm(g.op("Reshape", `${n}/attn/q_norm/Reshape`, [q, perHead]), qNorm, `${n}/attn/q_norm/SimplifiedLayerNorm`), flat]);
      k = g.op("Reshape", `${n}/attn/k_norm/Reshape_1`, [rmsNorm(g.op("Reshape", `${n}/attn/k_norm/Reshape`, [k, perHead]), kNorm, `${n}/attn/k_norm/SimplifiedLayerNorm`), flat]);
    }
    q = g.op("RotaryEmbedding", `${n}/attn/q_rotary/RotaryEmbedding`, [q, positionIds, cosCache, sinCache], { interleaved: 0, num_heads: heads }, MS_DOMAIN);
    k = g.op("RotaryEmbedding", `${n}/attn/k_rotary/RotaryEmbedding`, [k, positionIds, cosCache, sinCache], { interleaved: 0, num_heads: kvHeads }, MS_DOMAIN);
    const [attended] = g.node("GroupQueryAttention", `${n}/attn/GroupQueryAttention`, [q, k, v, past[i]!.key, past[i]!.value, seqlensK, totalLength], {
      outputs: [`${n}/attn/GroupQueryAttention/output_0`, `present.${i}.key`, `present.${i}.value`],
      attributes: { num_heads: heads, kv_num_heads: kvHeads, scale: { float: 1 / Math.sqrt(headDim) } },
      domain: MS_DOMAIN,
    });
    g.output(`present.${i}.key`, F, ["batch_size", kvHeads, "total_sequence_length", headDim]);
    g.output(`present.${i}.value`, F, ["batch_size", kvHeads, "total_sequence_length", headDim]);
    const attnOut = await linear(attended!, `${p}.self_attn.o_proj`, heads * headDim, hiddenSize);
    x = g.op("Add", `${n}/attn_residual/Add`, [x, attnOut]);

    const postNorm = await vector(`${p}.post_attention_layernorm.weight`, hiddenSize);
    const normed2 = rmsNorm(x, postNorm, `${n}/post_attention_layernorm/SimplifiedLayerNorm`);
    const gate = await linear(normed2, `${p}.mlp.gate_proj`, hiddenSize, h.intermediateSize);
    const up = await linear(normed2, `${p}.mlp.up_proj`, hiddenSize, h.intermediateSize);
    const silu = g.op("Mul", `${n}/mlp/act_fn/Mul`, [gate, g.op("Sigmoid", `${n}/mlp/act_fn/Sigmoid`, [gate])]);
    const down = await linear(g.op("Mul", `${n}/mlp/Mul`, [silu, up]), `${p}.mlp.down_proj`, h.intermediateSize, hiddenSize);
    x = g.op("Add", `${n}/mlp_residual/Add`, [x, down]);
  }

  const finalNorm = rmsNorm(x, await vector("model.norm.weight", hiddenSize), "/model/norm/SimplifiedLayerNorm");
  const tied = src.tensor("lm_head.weight") === undefined;
  if (tied && !h.tieWordEmbeddings) throw new UserError("checkpoint has no 'lm_head.weight' and config.json does not set tie_word_embeddings");
  const logits = await linear(finalNorm, "lm_head", hiddenSize, vocabSize, tied ? "model.embed_tokens.weight" : "lm_head.weight");
  g.node("Identity", "/lm_head/Identity", [logits], { outputs: ["logits"] });
  g.output("logits", F, ["batch_size", "sequence_length", vocabSize]);
  return { graph: g, encodings };
}

/** cos/sin of position x inverse frequency for every position up to the context length, computed in float64. */
export function rotaryCaches(h: DecoderHparams): { cos: Float32Array; sin: Float32Array } {
  const half = h.headDim / 2;
  const inv = inverseFrequencies(h.ropeTheta, h.headDim, h.ropeScaling);
  const cos = new Float32Array(h.contextLength * half);
  const sin = new Float32Array(h.contextLength * half);
  for (let p = 0; p < h.contextLength; p++) {
    for (let i = 0; i < half; i++) {
      const angle = p * inv[i]!;
      cos[p * half + i] = Math.cos(angle);
      sin[p * half + i] = Math.sin(angle);
    }
  }
  return { cos, sin };
}

function inverseFrequencies(theta: number, headDim: number, scaling: RopeScaling): Float64Array {
  const half = headDim / 2;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / Math.pow(theta, (2 * i) / headDim);
  switch (scaling.kind) {
    case "none":
      return inv;
    case "linear":
      return inv.map((f) => f / scaling.factor);
    case "llama3": {
      const { factor, lowFreqFactor, highFreqFactor, originalContext } = scaling;
      const lowWavelength = originalContext / lowFreqFactor;
      const highWavelength = originalContext / highFreqFactor;
      return inv.map((f) => {
        const wavelength = (2 * Math.PI) / f;
        if (wavelength < highWavelength) return f;
        if (wavelength > lowWavelength) return f / factor;
        const smooth = (originalContext / wavelength - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
        return (1 - smooth) * (f / factor) + smooth * f;
      });
    }
    case "yarn":
      throw new UserError("yarn rope scaling is not supported by the ONNX export yet (supported: none, linear, llama3)");
  }
}
