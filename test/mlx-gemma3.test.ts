// Gemma 3 -> MLX: the folder mlx-lm loads, by rules read from its own model files
// (ml-explore/mlx-lm d78bf58), stated here independently of src/:
//  G1 Names (mlx_lm/models/gemma3_text.py:48-54, 117-119, 142-148, 173-178): the Hugging Face
//     names, model.embed_tokens, model.layers.N.self_attn.{q,k,v,o}_proj and {q,k}_norm,
//     .mlp.{gate,up,down}_proj, .{input,post_attention,pre_feedforward,post_feedforward}_layernorm,
//     model.norm.
//  G2 Tied output (gemma3_text.py:237-241): without lm_head.weight the model ties; none is written.
//  G3 Norm weights stay raw: its RMSNorm computes rms_norm(x, 1.0 + weight) (gemma3_text.py:111),
//     so unlike llama.cpp's converter nothing adds the 1.
//  G4 Quantized: every nn.Linear and the nn.Embedding whose input dimension the group size divides
//     (mlx_lm/utils.py quantize_model), as X.weight uint32 [out, in * bits / 32] with X.scales /
//     X.biases [out, in / group] (mlx/ops.cpp affine_quantize); values exactly MLX's quantizer's.
//  G5 The multimodal wrapper (mlx_lm/models/gemma3.py:49-56): vision_tower.* and
//     multi_modal_projector.* are dropped, the text tower keeps its language_model.* names.

import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { convertToMlx } from "../src/convert/mlx.js";
import { readMlxArtifact } from "../src/fit/mlx-artifact.js";
import { tempDir } from "./support/cli.js";
import { readMlxFolder, referenceQuantizeMatrix, wordValues, type MlxFolder, type StoredTensor } from "./support/mlx-reference.js";
import { SafetensorsFile } from "./support/safetensors.js";
import { syntheticTensors, writeHfFolder, writeSyntheticCheckpoint, type SyntheticSpec } from "./support/synthetic-checkpoint.js";
import { gemma3VisionTensors, gemma3WrapperConfig, gemma3WrapperTensorName } from "./support/synthetic-gemma3.js";

const spec: SyntheticSpec = { modelType: "gemma3", hidden: 128, layers: 7, heads: 4, kvHeads: 2, headDim: 32, intermediate: 256, vocab: 4096, seed: 9, dtype: "BF16" };
const GROUP = 64;
const BITS = 4;
const QUANTIZED = /(^|\.)(embed_tokens|self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)\.weight$/;
const NORM = /(layernorm|_norm|\.norm)\.weight$/;

const dir = tempDir("edgequant-mlx-gemma3-");
let source: SafetensorsFile;
let folder: MlxFolder;
beforeAll(async () => {
  writeSyntheticCheckpoint(join(dir, "hf"), spec);
  source = new SafetensorsFile(join(dir, "hf", "model.safetensors"));
  await convertToMlx({ source: join(dir, "hf"), output: join(dir, "mlx"), bits: BITS });
  folder = readMlxFolder(join(dir, "mlx"));
}, 300_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function rawBytes(file: string, name: string): Buffer {
  const bytes = readFileSync(file);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString("utf8")) as Record<string, { data_offsets: [number, number] }>;
  const [begin, end] = header[name]!.data_offsets;
  return bytes.subarray(8 + headerLength + begin, 8 + headerLength + end);
}

const halves = (tensor: StoredTensor) => {
  const view = new DataView(tensor.bytes.buffer, tensor.bytes.byteOffset, tensor.bytes.byteLength);
  return Array.from({ length: tensor.bytes.length / 2 }, (_, i) => view.getUint16(2 * i, true));
};

describe("gemma3 (gemma-3-270m's config) -> MLX 4-bit g64", () => {
  it("has exactly the tensors mlx-lm's gemma3_text declares, quantized where G4 says, no lm_head (G1, G2, G4)", () => {
    const expected = source.names().flatMap((name) => {
      const shape = source.shape(name);
      const module = name.slice(0, -".weight".length);
      if (!QUANTIZED.test(name)) return [{ name, dtype: "BF16", shape }];
      return [
        { name, dtype: "U32", shape: [shape[0]!, (shape[1]! * BITS) / 32] },
        { name: `${module}.scales`, dtype: "BF16", shape: [shape[0]!, shape[1]! / GROUP] },
        { name: `${module}.biases`, dtype: "BF16", shape: [shape[0]!, shape[1]! / GROUP] },
      ];
    });
    const actual = [...folder.tensors.values()].map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape }));
    const byName = (a: { name: string }, b: { name: string }) => (a.name < b.name ? -1 : 1);
    expect(actual.sort(byName)).toEqual(expected.sort(byName));
    expect(folder.tensors.has("lm_head.weight")).toBe(false);
    expect([...folder.tensors.keys()].filter((n) => n.endsWith("post_feedforward_layernorm.weight"))).toHaveLength(spec.layers);
  });

  it("norm weights are the checkpoint's own bytes: mlx-lm adds the 1 itself (G3)", () => {
    const norms = source.names().filter((name) => NORM.test(name));
    expect(norms).toHaveLength(6 * spec.layers + 1);
    for (const name of norms) expect(Buffer.from(folder.tensors.get(name)!.bytes).equals(rawBytes(join(dir, "hf", "model.safetensors"), name)), name).toBe(true);
  });

  it("every quantized tensor is MLX's affine quantizer on the source weights, bit for bit (G4)", () => {
    let count = 0;
    for (const name of source.names().filter((n) => QUANTIZED.test(n))) {
      const module = name.slice(0, -".weight".length);
      const weight = source.read(name);
      const expected = referenceQuantizeMatrix(weight.data, weight.shape[1]!, GROUP, BITS, "BF16");
      expect(Array.from(wordValues(folder.tensors.get(name)!)), name).toEqual(Array.from(expected.words));
      expect(halves(folder.tensors.get(`${module}.scales`)!), `${module}.scales`).toEqual(expected.scaleBits);
      expect(halves(folder.tensors.get(`${module}.biases`)!), `${module}.biases`).toEqual(expected.biasBits);
      count++;
    }
    expect(count).toBe(7 * spec.layers + 1);
  });
});

describe("fit reads the MLX folder's cache as mlx-lm makes it (gemma3_text.py:247-257)", () => {
  it("sliding layers hold a RotatingKVCache of the window, every 6th layer a full cache", async () => {
    const { hparams } = await readMlxArtifact(join(dir, "mlx"));
    expect(hparams.slidingWindow).toBe(16);
    expect(hparams.swaLayers).toEqual(Array.from({ length: spec.layers }, (_, i) => i % 6 !== 5));
  });
});

describe("Gemma3ForConditionalGeneration (gemma-3-4b-it's config) -> MLX", () => {
  it("drops the vision tower and projector and keeps the text tower's language_model.* names (G5)", async () => {
    const tensors = syntheticTensors(spec).map((t) => ({ ...t, name: gemma3WrapperTensorName(t.name) }));
    gemma3VisionTensors((name, shape, data) => tensors.push({ name, shape, data, dtype: "BF16" }), (count, mean) => new Float32Array(count).fill(mean));
    writeHfFolder(join(dir, "wrapper"), gemma3WrapperConfig(spec), tensors);
    await convertToMlx({ source: join(dir, "wrapper"), output: join(dir, "wrapper-mlx"), bits: BITS });
    const names = [...readMlxFolder(join(dir, "wrapper-mlx")).tensors.keys()];
    expect(names.filter((n) => /vision_tower|multi_modal_projector/.test(n))).toEqual([]);
    expect(names.every((n) => n.startsWith("language_model.model."))).toBe(true);
    expect(names).toContain("language_model.model.layers.6.mlp.down_proj.scales");
  });
});
