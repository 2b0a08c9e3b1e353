// MLX output for MiniCPM: the folder mlx-lm's models/minicpm.py loads and computes the model with.
// Rules written from ml-explore/mlx-lm d78bf58, mlx_lm/models/minicpm.py:
//  M1 Names: model.embed_tokens (151); model.layers.N.self_attn.{q,k,v,o}_proj (60-71);
//     .mlp.{gate,up,down}_proj (37-39); .input_layernorm, .post_attention_layernorm (123-126);
//     model.norm (153); lm_head when tie_word_embeddings is false (180-181).
//  M2 Quantization as for llama (test/mlx-layout.test.ts R2-R5): every nn.Linear and nn.Embedding
//     weight, X.weight uint32 + X.scales / X.biases in the weight dtype, "quantization" in config.json.
//  M3 The output: the untied path divides the hidden state by hidden_size / dim_model_base before
//     lm_head (190-191); the tied path is `out @ model.embed_tokens.weight.T` (193), without that
//     divisor (transformers' MiniCPM divides on every path) and on the packed uint32 weight once the
//     embedding is quantized. So a tied checkpoint is written untied, lm_head being the embedding
//     quantized as a Linear; sanitize() would only copy the embedding's unquantized weight (197-200).
//  M4 ModelArgs requires scale_emb, scale_depth, dim_model_base (18-26); head_dim is
//     hidden_size // num_attention_heads (54).

import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { convertToMlx } from "../src/convert/mlx.js";
import { UserError } from "../src/errors.js";
import { tempDir } from "./support/cli.js";
import { castTo, dequantizeMlxFolder, floatValues, readMlxFolder, referenceQuantizeMatrix, wordValues, type MlxFolder } from "./support/mlx-reference.js";
import { SafetensorsFile } from "./support/safetensors.js";
import { writeSyntheticCheckpoint, type SyntheticSpec } from "./support/synthetic-checkpoint.js";

const dir = tempDir("edgequant-mlx-minicpm-");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SPEC: SyntheticSpec = { modelType: "minicpm", hidden: 128, layers: 2, heads: 4, kvHeads: 2, headDim: 32, intermediate: 256, vocab: 4096, seed: 31, dtype: "BF16" };
const QUANTIZED = /^(model\.embed_tokens|model\.layers\.\d+\.(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)|lm_head)\.weight$/;

/** M1, M2 (and M3: lm_head always): the tensors mlx-lm's minicpm model declares, quantized at `bits`. */
function expectedTensors(source: SafetensorsFile, bits: number): { name: string; dtype: string; shape: number[] }[] {
  const names = [...new Set([...source.names(), "lm_head.weight"])];
  return names
    .flatMap((name) => {
      const shape = source.names().includes(name) ? source.shape(name) : source.shape("model.embed_tokens.weight");
      if (!QUANTIZED.test(name)) return [{ name, dtype: "BF16", shape }];
      const module = name.slice(0, -".weight".length);
      return [
        { name, dtype: "U32", shape: [shape[0]!, (shape[1]! * bits) / 32] },
        { name: `${module}.scales`, dtype: "BF16", shape: [shape[0]!, shape[1]! / 64] },
        { name: `${module}.biases`, dtype: "BF16", shape: [shape[0]!, shape[1]! / 64] },
      ];
    })
    .sort((a, b) => (a.name < b.name ? -1 : 1));
}

/** Every quantized tensor bit for bit what MLX's quantizer gives for its source (lm_head's source is the embedding when tied). */
function expectQuantizedAsMlx(folder: MlxFolder, source: SafetensorsFile, bits: number, tied: boolean): number {
  let compared = 0;
  const dequantized = dequantizeMlxFolder(folder);
  for (const { name } of expectedTensors(source, bits)) {
    if (!QUANTIZED.test(name)) continue;
    const module = name.slice(0, -".weight".length);
    const weight = source.read(tied && module === "lm_head" ? "model.embed_tokens.weight" : name);
    const expected = referenceQuantizeMatrix(weight.data, weight.shape[1]!, 64, bits, "BF16");
    expect(Array.from(wordValues(folder.tensors.get(name)!)), name).toEqual(Array.from(expected.words));
    const scales = floatValues(folder.tensors.get(`${module}.scales`)!);
    const biases = floatValues(folder.tensors.get(`${module}.biases`)!);
    expect(Array.from(scales), `${module}.scales`).toEqual(expected.groups.map((g) => castTo("BF16", g.scale)));
    expect(Array.from(biases), `${module}.biases`).toEqual(expected.groups.map((g) => castTo("BF16", g.bias)));
    // Dequantized, each weight is back within MLX's rounding: half a step, plus what the BF16 scale and
    // bias moved, plus how far outside the group's grid MLX's clamp put it (q = 0 or 2^bits - 1).
    const values = dequantized.get(name)!.data;
    const levels = 2 ** bits - 1;
    expected.groups.forEach((g, i) => {
      const [lo, hi] = [Math.min(g.bias, g.bias + levels * g.scale), Math.max(g.bias, g.bias + levels * g.scale)];
      const rounding = Math.abs(g.scale) / 2 + levels * Math.abs(g.scale - scales[i]!) + Math.abs(g.bias - biases[i]!) + 1e-6;
      for (let j = i * 64; j < (i + 1) * 64; j++) {
        const w = weight.data[j]!;
        const bound = rounding + Math.max(0, lo - w, w - hi);
        if (!(Math.abs(values[j]! - w) <= bound)) throw new Error(`${name}[${j}]: dequantized ${values[j]}, source ${w}, bound ${bound}`);
      }
    });
    compared++;
  }
  return compared;
}

describe.each([
  { label: "tied, 4-bit", tied: true, bits: 4 as const },
  { label: "untied, 8-bit", tied: false, bits: 8 as const },
])("MiniCPM -> MLX, $label", ({ label, tied, bits }) => {
  it("has mlx-lm's tensors, an untied lm_head, the muP keys, and MLX's quantized values (M1-M4)", async () => {
    const source = join(dir, label.replace(/\W+/g, "-"));
    writeSyntheticCheckpoint(source, { ...SPEC, tieEmbeddings: tied });
    const output = `${source}-mlx`;
    const report = await convertToMlx({ source, output, bits });
    const folder = readMlxFolder(output);
    const file = new SafetensorsFile(join(source, "model.safetensors"));
    expect([...folder.tensors.values()].map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape })).sort((a, b) => (a.name < b.name ? -1 : 1))).toEqual(expectedTensors(file, bits));
    const sourceConfig = JSON.parse(readFileSync(join(source, "config.json"), "utf8")) as Record<string, unknown>;
    for (const [key, value] of Object.entries(sourceConfig)) if (key !== "tie_word_embeddings") expect(folder.config[key], key).toEqual(value);
    expect(folder.config["tie_word_embeddings"]).toBe(false);
    for (const key of ["scale_emb", "scale_depth", "dim_model_base"]) expect(typeof folder.config[key], key).toBe("number");
    expect(folder.config["quantization"]).toEqual({ group_size: 64, bits, mode: "affine" });
    if (tied) {
      // The same tensor quantized the same way: lm_head's three tensors are the embedding's bytes.
      for (const part of ["weight", "scales", "biases"]) {
        expect(Buffer.from(folder.tensors.get(`lm_head.${part}`)!.bytes).equals(Buffer.from(folder.tensors.get(`model.embed_tokens.${part}`)!.bytes)), part).toBe(true);
      }
      expect(report.decisions.map((d) => [d.tensor, d.action])).toEqual([["lm_head.weight", "config"]]);
    } else {
      expect(report.decisions).toEqual([]);
    }
    const compared = expectQuantizedAsMlx(folder, file, bits, tied);
    console.log(`[mlx-minicpm] ${label}: ${compared} quantized tensors equal MLX's quantizer bit for bit and dequantize within its rounding; ${report.bitsPerWeight.toFixed(3)} bits per weight`);
    expect(compared).toBe(SPEC.layers * 7 + 2);
  });
});

it("a head_dim other than hidden_size / num_attention_heads is refused (M4)", async () => {
  const source = join(dir, "head-dim");
  writeSyntheticCheckpoint(source, { ...SPEC, headDim: 64 });
  const error = await convertToMlx({ source, output: join(dir, "head-dim-mlx"), bits: 4 }).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(UserError);
  expect((error as Error).message).toMatch(/head_dim 64 is not hidden_size \/ num_attention_heads/);
});

it("a config without rope_theta gets the value transformers reads it with, since minicpm.py defaults to 1e6 (line 28)", async () => {
  const source = join(dir, "no-theta");
  writeSyntheticCheckpoint(source, SPEC);
  const { rope_theta: theta, ...config } = JSON.parse(readFileSync(join(source, "config.json"), "utf8")) as Record<string, unknown>;
  expect(theta).toBe(10000);
  writeFileSync(join(source, "config.json"), JSON.stringify(config));
  const report = await convertToMlx({ source, output: join(dir, "no-theta-mlx"), bits: 4 });
  expect(readMlxFolder(join(dir, "no-theta-mlx")).config["rope_theta"]).toBe(10000);
  expect(report.decisions.map((d) => [d.tensor, d.action])).toEqual([["config.json", "config"]]);
});
