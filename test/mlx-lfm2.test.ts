// LFM2 -> MLX: the folder mlx-lm's lfm2 model loads. Rules written from ml-explore/mlx-lm
// mlx_lm/models/lfm2.py (the tree in /work/mlx-lm-src), independently of src/:
//  F1 Names are the Hugging Face ones the model declares: model.embed_tokens (lfm2.py:243),
//     model.layers.N.operator_norm / ffn_norm (214-215), self_attn.{q,k,v,out}_proj and
//     q_layernorm / k_layernorm (65-71), conv.conv / conv.in_proj / conv.out_proj (124-132),
//     feed_forward.w1 / w3 / w2 (189-191), model.embedding_norm (248). There is no lm_head: the
//     output is embed_tokens.as_linear (296).
//  F2 Quantized: modules with to_quantized (nn.Linear, nn.Embedding) whose input dimension the
//     group size divides (mlx_lm/utils.py quantize_model). conv.conv is an nn.Conv1d
//     (lfm2.py:124-130), which has none: it stays float, like the RMSNorms.
//  F3 The conv kernel: MLX's Conv1d weight is [out, kernel, in / groups] = [hidden, L, 1];
//     sanitize() (lfm2.py:298-306) swaps the last two axes of a [hidden, 1, L] checkpoint weight
//     when shape[-1] > shape[1] and leaves [hidden, L, 1] alone, so that is what the folder holds.
//  F4 config.json keeps the keys ModelArgs requires (lfm2.py:19-38: block_dim, block_ff_dim,
//     block_multiple_of, block_ffn_dim_multiplier, block_auto_adjust_ff_dim, conv_L_cache,
//     conv_bias, norm_eps ...) and full_attn_idxs / layer_types (lfm2.py:45-50).
//  F5 The quantized weights are MLX's quantizer's (mlx/backend/cpu/quantized.cpp, ported in
//     test/support/mlx-reference.ts), and dequantized (w = scale * q + bias, float32) they give the
//     reference's affine quantization of the source value for value, within a step of the source.
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { convertToMlx } from "../src/convert/mlx.js";
import { readMlxArtifact } from "../src/fit/mlx-artifact.js";
import { tempDir } from "./support/cli.js";
import { dequantizeMlxFolder, floatValues, readMlxFolder, referenceQuantizeMatrix, wordValues, type MlxFolder } from "./support/mlx-reference.js";
import { SafetensorsFile } from "./support/safetensors.js";
import { TINY_LFM2, lfm2FeedForwardWidth, writeLfm2Checkpoint } from "./support/synthetic-lfm2.js";

const dir = tempDir("edgequant-mlx-lfm2-");
const source = join(dir, "lfm2");
const output = join(dir, "lfm2-mlx");
const GROUP = 64;
const BITS = 4;
const QUANTIZED = /^model\.(embed_tokens|layers\.\d+\.(self_attn\.(q|k|v|out)_proj|conv\.(in|out)_proj|feed_forward\.w[123]))\.weight$/;
let folder: MlxFolder;
let checkpoint: SafetensorsFile;

beforeAll(async () => {
  writeLfm2Checkpoint(source);
  checkpoint = new SafetensorsFile(join(source, "model.safetensors"));
  await convertToMlx({ source, output, bits: BITS });
  folder = readMlxFolder(output);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("tiny LFM2 -> MLX 4-bit, group 64 (mlx_lm/models/lfm2.py)", () => {
  it("holds exactly the tensors mlx-lm's lfm2 declares, quantized where it quantizes (F1-F3)", () => {
    const expected: { name: string; dtype: string; shape: number[] }[] = [];
    for (const name of checkpoint.names()) {
      const shape = checkpoint.shape(name);
      const module = name.slice(0, name.lastIndexOf("."));
      if (QUANTIZED.test(name)) {
        expected.push({ name, dtype: "U32", shape: [shape[0]!, (shape[1]! * BITS) / 32] });
        expected.push({ name: `${module}.scales`, dtype: "BF16", shape: [shape[0]!, shape[1]! / GROUP] });
        expected.push({ name: `${module}.biases`, dtype: "BF16", shape: [shape[0]!, shape[1]! / GROUP] });
      } else if (name.endsWith(".conv.conv.weight")) {
        expected.push({ name, dtype: "BF16", shape: [shape[0]!, shape[2]!, 1] });
      } else {
        expected.push({ name, dtype: "BF16", shape });
      }
    }
    const actual = [...folder.tensors.values()].map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape }));
    const byName = (a: { name: string }, b: { name: string }) => (a.name < b.name ? -1 : 1);
    expect(actual.sort(byName)).toEqual(expected.sort(byName));
    expect([...folder.tensors.keys()].some((n) => n.startsWith("lm_head"))).toBe(false);
    const conv = folder.tensors.get("model.layers.0.conv.conv.weight")!;
    expect(conv.shape).toEqual([TINY_LFM2.hidden, TINY_LFM2.convLCache, 1]);
    // [hidden, 1, L] and [hidden, L, 1] hold the same values in the same order: the bytes are the source's.
    expect(Array.from(floatValues(conv))).toEqual(Array.from(checkpoint.read("model.layers.0.conv.conv.weight").data));
  });

  it("config.json keeps every key lfm2's ModelArgs reads, with mlx-lm's quantization block (F4)", () => {
    const original = JSON.parse(readFileSync(join(source, "config.json"), "utf8")) as Record<string, unknown>;
    for (const [key, value] of Object.entries(original)) expect(folder.config[key], key).toEqual(value);
    for (const key of ["block_dim", "block_ff_dim", "block_multiple_of", "block_ffn_dim_multiplier", "block_auto_adjust_ff_dim", "conv_L_cache", "conv_bias", "norm_eps", "layer_types", "full_attn_idxs"]) {
      expect(folder.config[key], key).toBeDefined();
    }
    expect(folder.config["quantization"]).toEqual({ group_size: GROUP, bits: BITS, mode: "affine" });
  });

  it("quantized tensors are MLX's quantizer's output, and dequantize to the source within MLX's rounding (F5)", () => {
    const dequantized = dequantizeMlxFolder(folder);
    let modules = 0;
    let worst = 0;
    for (const name of checkpoint.names().filter((n) => QUANTIZED.test(n))) {
      const weight = checkpoint.read(name);
      const module = name.slice(0, name.lastIndexOf("."));
      const reference = referenceQuantizeMatrix(weight.data, weight.shape[1]!, GROUP, BITS, "BF16");
      expect(Array.from(wordValues(folder.tensors.get(name)!)), name).toEqual(Array.from(reference.words));
      const scales = floatValues(folder.tensors.get(`${module}.scales`)!);
      const biases = floatValues(folder.tensors.get(`${module}.biases`)!);
      const values = dequantized.get(name)!.data;
      for (let i = 0; i < values.length; i++) {
        const g = Math.floor(i / GROUP);
        // the reference's affine quantization of the source, dequantized as MLX does (float32 steps)
        const expected = Math.fround(Math.fround(scales[g]! * reference.q[i]!) + biases[g]!);
        if (values[i] !== expected) expect.fail(`${name}[${i}]: dequantized ${values[i]}, the reference's ${expected}`);
        worst = Math.max(worst, Math.abs(values[i]! - weight.data[i]!) / Math.abs(scales[g]!));
      }
      modules++;
    }
    const layers = TINY_LFM2.layerTypes;
    const perAttention = 4 + 3;
    const perConv = 2 + 3;
    expect(modules).toBe(1 + layers.filter((t) => t === "full_attention").length * perAttention + layers.filter((t) => t === "conv").length * perConv);
    expect(dequantized.get("model.layers.0.feed_forward.w1.weight")!.shape).toEqual([lfm2FeedForwardWidth(TINY_LFM2), TINY_LFM2.hidden]);
    // MLX moves the grid so the larger-magnitude edge is exact and zero a grid point (quantized.cpp): the far
    // edge may then be clamped, by at most levels * 0.5 / (levels / 2) = 1 step; 1% for the BF16 scale's rounding.
    expect(worst).toBeLessThanOrEqual(1.01);
    console.log(`[mlx-lfm2] ${modules} quantized modules bit-identical to MLX's quantizer; worst |dequantized - source| ${worst.toFixed(3)} steps`);
  });

  it("fit counts KV only for mlx-lm's attention layers (lfm2.py:312-316 make_cache: KVCache there, ArraysCache for conv)", async () => {
    const artifact = await readMlxArtifact(output);
    expect(artifact.hparams.nHeadKv).toEqual(TINY_LFM2.layerTypes.map((t) => (t === "full_attention" ? TINY_LFM2.kvHeads : 0)));
  });
});
