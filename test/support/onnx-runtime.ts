// Runs our ONNX exports with onnxruntime-node (CPU) and reads their weights back, for tests
// and benchmarks: full-sequence logits, token-by-token decoding with the KV cache, greedy
// generation, and the dequantized value of every MatMulNBits weight, both by the unpacker of
// ./matmul-nbits.ts and by onnxruntime itself. The protobuf is read with onnx-proto, not src/.

import { openSync, readFileSync, readSync, closeSync } from "node:fs";
import { dirname, join } from "node:path";
import onnxProto from "onnx-proto";
import type * as Ort from "onnxruntime-node";
import { decodeScales, unpackNBits } from "./matmul-nbits.js";
import { ORACLES, requireOracleAsync } from "./oracle.js";
import { windowedPerplexity, type PerplexityWindows } from "./perplexity.js";

const { onnx } = onnxProto;

// onnxruntime is the oracle of every suite importing this module: without it they fail here.
// A broken native binding may only show when a session is made: make one from a one-node model.
const smallestModel = identityModel();
const ort: typeof Ort = await requireOracleAsync(ORACLES.onnxruntime, async () => {
  const loaded = await import("onnxruntime-node");
  await (await loaded.InferenceSession.create(smallestModel)).release();
  return loaded;
});

/** Y = Identity(X) over a float vector: enough for onnxruntime to load its binding and run. */
function identityModel(): Uint8Array {
  const value = (name: string) => ({ name, type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 1 }] } } } });
  return onnx.ModelProto.encode({
    irVersion: 8,
    opsetImport: [{ domain: "", version: 17 }],
    graph: { name: "identity", node: [{ opType: "Identity", input: ["X"], output: ["Y"] }], input: [value("X")], output: [value("Y")] },
  }).finish();
}

export interface OnnxModel {
  readonly session: Ort.InferenceSession;
  readonly layers: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly vocab: number;
}

export async function loadOnnxModel(modelPath: string, options: Ort.InferenceSession.SessionOptions = {}): Promise<OnnxModel> {
  const session = await ort.InferenceSession.create(modelPath, { intraOpNumThreads: 2, ...options });
  const past = session.inputNames.filter((name) => /^past_key_values\.\d+\.key$/.test(name));
  const meta = session.inputMetadata.find((m) => m.name === "past_key_values.0.key");
  const logitsMeta = session.outputMetadata.find((m) => m.name === "logits");
  if (!meta || !meta.isTensor || !logitsMeta || !logitsMeta.isTensor) throw new Error(`${modelPath}: not a decoder with past_key_values and logits`);
  return {
    session,
    layers: past.length,
    kvHeads: meta.shape[1] as number,
    headDim: meta.shape[3] as number,
    vocab: logitsMeta.shape[2] as number,
  };
}

const int64 = (values: readonly number[], dims: readonly number[]) => new ort.Tensor("int64", BigInt64Array.from(values.map(BigInt)), dims);

export type KvCache = Record<string, Ort.Tensor>;

/** An empty cache (past length 0) for batch 1. */
export function emptyCache(model: OnnxModel): KvCache {
  const cache: KvCache = {};
  for (let i = 0; i < model.layers; i++) {
    for (const kind of ["key", "value"]) cache[`past_key_values.${i}.${kind}`] = new ort.Tensor("float32", new Float32Array(0), [1, model.kvHeads, 0, model.headDim]);
  }
  return cache;
}

/** Runs `tokens` after `cache` (batch 1); returns each position's logits and the grown cache. */
export async function runStep(model: OnnxModel, tokens: readonly number[], cache: KvCache): Promise<{ logits: Float32Array[]; cache: KvCache }> {
  const pastLength = (cache["past_key_values.0.key"]?.dims[2] as number | undefined) ?? 0;
  const total = pastLength + tokens.length;
  const feeds: Record<string, Ort.Tensor> = {
    input_ids: int64(tokens, [1, tokens.length]),
    attention_mask: int64(Array.from({ length: total }, () => 1), [1, total]),
    position_ids: int64(tokens.map((_, i) => pastLength + i), [1, tokens.length]),
    ...cache,
  };
  const out = await model.session.run(feeds);
  const data = out["logits"]!.data as Float32Array;
  const logits: Float32Array[] = [];
  for (let t = 0; t < tokens.length; t++) logits.push(data.slice(t * model.vocab, (t + 1) * model.vocab));
  const next: KvCache = {};
  for (let i = 0; i < model.layers; i++) {
    next[`past_key_values.${i}.key`] = out[`present.${i}.key`]!;
    next[`past_key_values.${i}.value`] = out[`present.${i}.value`]!;
  }
  return { logits, cache: next };
}

/** Logits of every position of `tokens`, in one pass from an empty cache. */
export async function onnxLogits(model: OnnxModel, tokens: readonly number[]): Promise<Float32Array[]> {
  return (await runStep(model, tokens, emptyCache(model))).logits;
}

/** Logits of every position, feeding one token at a time through the KV cache. */
export async function onnxLogitsStepwise(model: OnnxModel, tokens: readonly number[]): Promise<Float32Array[]> {
  let cache = emptyCache(model);
  const all: Float32Array[] = [];
  for (const token of tokens) {
    const step = await runStep(model, [token], cache);
    all.push(step.logits[0]!);
    cache = step.cache;
  }
  return all;
}

function argmax(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  return best;
}

/** Greedy decoding: the prompt in one pass, then one token at a time through the cache. */
export async function onnxGreedy(model: OnnxModel, prompt: readonly number[], count: number): Promise<number[]> {
  let step = await runStep(model, prompt, emptyCache(model));
  const generated: number[] = [];
  for (let i = 0; i < count; i++) {
    const next = argmax(step.logits.at(-1)!);
    generated.push(next);
    if (i + 1 < count) step = await runStep(model, [next], step.cache);
  }
  return generated;
}

/** Perplexity over the same windows as llamaCppPerplexity (test/support/perplexity.ts). */
export function onnxPerplexity(model: OnnxModel, tokens: readonly number[], options: PerplexityWindows) {
  return windowedPerplexity(tokens, options, (input) => onnxLogits(model, input));
}

interface Initializer {
  readonly dims: number[];
  readonly dataType: number;
  readonly bytes: Uint8Array;
}

function decodeModel(modelPath: string): onnxProto.onnx.ModelProto {
  return onnx.ModelProto.decode(readFileSync(modelPath));
}

/** The raw bytes of every initializer of an exported model (external data resolved), by name. */
export function readInitializers(modelPath: string, model = decodeModel(modelPath)): Map<string, Initializer> {
  const result = new Map<string, Initializer>();
  const handles = new Map<string, number>();
  try {
    for (const tensor of model.graph!.initializer ?? []) {
      const dims = (tensor.dims ?? []).map(Number);
      let bytes: Uint8Array;
      if (tensor.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
        const entry = (key: string) => (tensor.externalData ?? []).find((e) => e.key === key)?.value ?? undefined;
        const file = join(dirname(modelPath), entry("location")!);
        let fd = handles.get(file);
        if (fd === undefined) handles.set(file, (fd = openSync(file, "r")));
        bytes = new Uint8Array(Number(entry("length")));
        readSync(fd, bytes, 0, bytes.length, Number(entry("offset") ?? 0));
      } else {
        bytes = tensor.rawData ?? new Uint8Array(0);
      }
      result.set(tensor.name!, { dims, dataType: tensor.dataType ?? 0, bytes });
    }
  } finally {
    for (const fd of handles.values()) closeSync(fd);
  }
  return result;
}

export interface QuantizedWeight {
  /** MatMulNBits or GatherBlockQuantized. */
  readonly op: string;
  readonly n: number;
  readonly k: number;
  readonly bits: number;
  readonly blockSize: number;
  /** The node with its inputs in MatMulNBits order: [activation, B, scales, zero_points?]. */
  readonly node: onnxProto.onnx.INodeProto;
  readonly b: Initializer;
  readonly scales: Initializer;
  readonly zeroPoints?: Initializer;
}

/** Every MatMulNBits and GatherBlockQuantized weight of an exported model, by B's name. */
export function quantizedWeights(modelPath: string): Map<string, QuantizedWeight> {
  const model = decodeModel(modelPath);
  const tensors = readInitializers(modelPath, model);
  const out = new Map<string, QuantizedWeight>();
  for (const node of model.graph!.node ?? []) {
    if (node.domain !== "com.microsoft" || (node.opType !== "MatMulNBits" && node.opType !== "GatherBlockQuantized")) continue;
    const attr = (name: string) => Number((node.attribute ?? []).find((a) => a.name === name)?.i ?? 0);
    const inputs = node.input ?? [];
    // MatMulNBits(A, B, scales, zero_points); GatherBlockQuantized(data, indices, scales, zero_points)
    const [bName, scalesName, zeroName] = node.opType === "MatMulNBits" ? [inputs[1]!, inputs[2]!, inputs[3]] : [inputs[0]!, inputs[2]!, inputs[3]];
    const b = tensors.get(bName);
    const scales = tensors.get(scalesName);
    if (!b || !scales) throw new Error(`${node.name}: B or scales is not an initializer`);
    const zeroPoints = zeroName ? tensors.get(zeroName) : undefined;
    const blockSize = attr("block_size");
    const bits = node.opType === "MatMulNBits" ? attr("bits") : attr("bits") || 4;
    const [n, k] = node.opType === "MatMulNBits" ? [attr("N"), attr("K")] : [b.dims[0]!, (b.dims[1]! * 8) / bits];
    out.set(bName, { op: node.opType, n, k, bits, blockSize, node, b, scales, ...(zeroPoints ? { zeroPoints } : {}) });
  }
  return out;
}

/** Every quantized weight as its dequantized [N, K] float32 matrix, by the unpacker of ./matmul-nbits.ts. */
export function dequantizedWeights(modelPath: string): Map<string, { n: number; k: number; bits: number; values: Float32Array }> {
  const out = new Map<string, { n: number; k: number; bits: number; values: Float32Array }>();
  for (const [name, w] of quantizedWeights(modelPath)) {
    const values = unpackNBits(w, w.b.bytes, decodeScales(w.scales.bytes, w.scales.dataType), w.zeroPoints?.bytes);
    out.set(name, { n: w.n, k: w.k, bits: w.bits, values });
  }
  return out;
}

/**
 * One quantized weight as onnxruntime dequantizes it: a one-node model with the same operator,
 * attributes and initializers, run on the CPU. MatMulNBits gets the K x K identity as A (and
 * accuracy_level 0, float32 math), so Y = W^T; GatherBlockQuantized gathers every row. Returns
 * the [N, K] matrix. Zeros come out as +0 (sums of products), so compare with ===, not Object.is.
 */
export async function runtimeDequantized(weight: QuantizedWeight): Promise<Float32Array> {
  const { n, k, node } = weight;
  const matmul = weight.op === "MatMulNBits";
  const initializer = (name: string, t: Initializer) => ({ name, dims: t.dims, dataType: t.dataType, rawData: t.bytes });
  const initializers = [initializer("B", weight.b), initializer("scales", weight.scales), ...(weight.zeroPoints ? [initializer("zero_points", weight.zeroPoints)] : [])];
  const names = initializers.map((t) => t.name);
  const attributes = (node.attribute ?? []).map((a) => (a.name === "accuracy_level" ? { name: a.name, type: a.type, i: 0 } : a));
  const probe = matmul ? "A" : "indices";
  const graph = {
    name: "dequantize",
    node: [{ opType: node.opType, domain: "com.microsoft", input: matmul ? [probe, ...names] : [names[0]!, probe, ...names.slice(1)], output: ["Y"], attribute: attributes }],
    initializer: initializers,
    input: [{ name: probe, type: { tensorType: { elemType: matmul ? 1 : 7, shape: { dim: matmul ? [{ dimValue: k }, { dimValue: k }] : [{ dimValue: n }] } } } }],
    output: [{ name: "Y", type: { tensorType: { elemType: 1 } } }],
  };
  const bytes = onnx.ModelProto.encode({ irVersion: 8, opsetImport: [{ domain: "", version: 17 }, { domain: "com.microsoft", version: 1 }], graph }).finish();
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, graphOptimizationLevel: "disabled" });
  try {
    let feed: Ort.Tensor;
    if (matmul) {
      const identity = new Float32Array(k * k);
      for (let i = 0; i < k; i++) identity[i * k + i] = 1;
      feed = new ort.Tensor("float32", identity, [k, k]);
    } else {
      feed = new ort.Tensor("int64", BigInt64Array.from({ length: n }, (_, i) => BigInt(i)), [n]);
    }
    const y = (await session.run({ [probe]: feed }))["Y"]!.data as Float32Array;
    if (!matmul) return Float32Array.from(y);
    const out = new Float32Array(n * k); // Y is [K, N] = W^T
    for (let i = 0; i < k; i++) for (let j = 0; j < n; j++) out[j * k + i] = y[i * n + j]!;
    return out;
  } finally {
    await session.release();
  }
}
