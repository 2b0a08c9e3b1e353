// MLX output of Granite and SmolLM3: the folder mlx-lm's model files for these architectures
// load, and weights that dequantize (through the independent unpacker, test/support/mlx-reference.ts)
// to the affine-quantized source within MLX's rounding. Rules written from mlx-lm (ml-explore/mlx-lm
// d78bf58, /work/mlx-lm-src), with file:line:
//  G1 mlx_lm/models/granite.py:15-31: ModelArgs fields without defaults (logits_scaling,
//     attention_multiplier, embedding_multiplier, residual_multiplier, max_position_embeddings,
//     num_key_value_heads, attention_bias, mlp_bias, rope_theta) must be in config.json: the
//     multipliers are read from it (granite.py:46 attention scale, :122 residual, :149 embedding,
//     :177/:189 logits), so config.json must keep them unchanged.
//  G2 granite.py:44: head_dim is hidden_size // num_attention_heads (no head_dim key is read), so
//     q_proj must have num_attention_heads * hidden_size / num_attention_heads rows.
//  G3 granite.py:48-51, 103-105, 144, 148, 118-121: Hugging Face names unchanged; granite.py:175-176,
//     195-198: with tie_word_embeddings (default true, :33) there is no lm_head and sanitize drops it.
//  S1 mlx_lm/models/smollm3.py:13-26: llama's ModelArgs plus no_rope_layer_interval / no_rope_layers,
//     whose length must equal num_hidden_layers (:25-26); :48-50 a 0 entry makes that layer NoPE, so
//     config.json must keep the list as transformers wrote it.
//  S2 smollm3.py:44-46, 69-75: llama's module names; no lm_head when tied; sanitize drops
//     self_attn.rotary_emb.inv_freq and lm_head.weight. mlx_lm/models/llama.py:33 tie_word_embeddings
//     defaults to true, as transformers' SmolLM3Config does, and the writer states it explicitly.
//  Q  mlx_lm/utils.py:818-870 quantize_model: every nn.Linear / nn.Embedding whose input dimension
//     the group size divides is quantized (uint32 words, scales and biases in the float dtype);
//     norms stay float.

import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { convertToMlx, type MlxReport } from "../src/convert/mlx.js";
import { tempDir } from "./support/cli.js";
import { castTo, dequantizeMlxFolder, readMlxFolder, referenceQuantizeMatrix, wordValues, type MlxFolder } from "./support/mlx-reference.js";
import { SafetensorsFile } from "./support/safetensors.js";
import { writeSyntheticCheckpoint, type SyntheticSpec } from "./support/synthetic-checkpoint.js";

const QUANTIZED = /^(model\.embed_tokens|model\.layers\.\d+\.(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)|lm_head)\.weight$/;
const BITS = 4;
const GROUP = 64;

interface Case {
  name: "granite" | "smollm3";
  spec: SyntheticSpec;
  /** Keys mlx-lm's ModelArgs must find in config.json (G1, S1). */
  required: string[];
}

const CASES: Case[] = [
  {
    name: "granite",
    spec: { modelType: "granite", hidden: 128, layers: 4, heads: 4, kvHeads: 2, headDim: 32, intermediate: 256, vocab: 4096, seed: 31, dtype: "BF16", tieEmbeddings: true },
    required: ["logits_scaling", "attention_multiplier", "embedding_multiplier", "residual_multiplier", "max_position_embeddings", "num_key_value_heads", "attention_bias", "mlp_bias", "rope_theta"],
  },
  {
    name: "smollm3",
    spec: { modelType: "smollm3", hidden: 128, layers: 4, heads: 4, kvHeads: 2, headDim: 32, intermediate: 256, vocab: 4096, seed: 32, dtype: "BF16" },
    required: ["no_rope_layer_interval", "no_rope_layers", "num_hidden_layers"],
  },
];

const dir = tempDir("edgequant-mlx-arch-");
const results = new Map<string, { source: string; report: MlxReport; folder: MlxFolder }>();

beforeAll(async () => {
  for (const c of CASES) {
    const source = join(dir, `${c.name}-hf`);
    writeSyntheticCheckpoint(source, c.spec);
    const output = join(dir, `${c.name}-mlx`);
    const report = await convertToMlx({ source, output, bits: BITS });
    results.set(c.name, { source, report, folder: readMlxFolder(output) });
  }
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.each(CASES)("$name -> MLX 4-bit g64", (c) => {
  const get = () => results.get(c.name)!;
  const sourceFile = () => new SafetensorsFile(join(get().source, "model.safetensors"));
  const sourceConfig = () => JSON.parse(readFileSync(join(get().source, "config.json"), "utf8")) as Record<string, unknown>;

  it("has the tensors mlx-lm's model declares: HF names, no lm_head when tied, linears quantized (G3, S2, Q)", () => {
    const src = sourceFile();
    expect(src.names().some((n) => n.startsWith("lm_head"))).toBe(false);
    const expected = src.names().flatMap((name) => {
      const shape = src.shape(name);
      const module = name.slice(0, name.lastIndexOf("."));
      if (!QUANTIZED.test(name) || shape[1]! % GROUP !== 0) return [{ name, dtype: "BF16", shape }];
      return [
        { name: `${module}.weight`, dtype: "U32", shape: [shape[0]!, (shape[1]! * BITS) / 32] },
        { name: `${module}.scales`, dtype: "BF16", shape: [shape[0]!, shape[1]! / GROUP] },
        { name: `${module}.biases`, dtype: "BF16", shape: [shape[0]!, shape[1]! / GROUP] },
      ];
    });
    const actual = [...get().folder.tensors.values()].map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape }));
    const byName = (a: { name: string }, b: { name: string }) => (a.name < b.name ? -1 : 1);
    expect(actual.sort(byName)).toEqual(expected.sort(byName));
    expect(get().report.architecture).toBe(c.name);
  });

  it("config.json keeps every key mlx-lm's ModelArgs reads, unchanged, and says the embeddings are tied (G1, S1, S2)", () => {
    const config = get().folder.config;
    const original = sourceConfig();
    for (const [key, value] of Object.entries(original)) expect(config[key], key).toEqual(value);
    for (const key of c.required) expect(config[key], key).toBeDefined();
    expect(config["tie_word_embeddings"]).toBe(true);
    expect(config["quantization"]).toEqual({ group_size: GROUP, bits: BITS, mode: "affine" });
    const layers = config["num_hidden_layers"] as number;
    if (c.name === "smollm3") {
      expect(config["no_rope_layers"]).toHaveLength(layers);
      expect(config["no_rope_layers"]).toEqual([1, 1, 1, 0]);
      // the real config.json has no tie_word_embeddings key: the writer adds it and says so
      expect(original["tie_word_embeddings"]).toBeUndefined();
      expect(get().report.decisions.map((d) => d.action)).toEqual(["config"]);
    } else {
      // G2: the q_proj rows mlx-lm's Attention expects with head_dim = hidden_size // heads
      const heads = config["num_attention_heads"] as number;
      const rows = get().folder.tensors.get("model.layers.0.self_attn.q_proj.weight")!.shape[0];
      expect(rows).toBe(heads * Math.floor((config["hidden_size"] as number) / heads));
      expect(get().report.decisions).toEqual([]);
    }
  });

  it("every quantized weight is MLX's quantizer's, and dequantizes to the source within MLX's rounding (Q)", () => {
    const src = sourceFile();
    const { folder } = get();
    const dequantized = dequantizeMlxFolder(folder);
    let tensors = 0;
    let worst = 0;
    let values = 0;
    let clamped = 0;
    for (const name of src.names()) {
      const original = src.read(name);
      const ours = dequantized.get(name)!;
      expect(ours.shape, name).toEqual(original.shape);
      if (!QUANTIZED.test(name)) {
        expect(Array.from(ours.data), name).toEqual(Array.from(original.data));
        continue;
      }
      const cols = original.shape[1]!;
      const reference = referenceQuantizeMatrix(original.data, cols, GROUP, BITS, "BF16");
      expect(Array.from(wordValues(folder.tensors.get(name)!)), name).toEqual(Array.from(reference.words));
      const levels = 2 ** BITS - 1;
      for (let i = 0; i < original.data.length; i++) {
        const group = reference.groups[Math.floor(i / GROUP)]!;
        const storedScale = castTo("BF16", group.scale);
        const storedBias = castTo("BF16", group.bias);
        // w = scale * q + bias in float32 with the stored (bfloat16) scale and bias, as MLX dequantizes
        expect(ours.data[i], `${name}[${i}]`).toBe(castTo("F32", castTo("F32", storedScale * reference.q[i]!) + storedBias));
        // within half a step of the source, plus what rounding scale and bias to bfloat16 moves the
        // levels, unless MLX clamped the value (its rescale to make zero exact can shrink the range)
        const position = (original.data[i]! - group.bias) / group.scale;
        if (position < -0.5 || position > levels + 0.5) {
          clamped++;
          continue;
        }
        const bound = Math.abs(group.scale) / 2 + Math.abs(group.scale - storedScale) * levels + Math.abs(group.bias - storedBias) + 2 ** -20 * (Math.abs(storedScale) * levels + Math.abs(storedBias));
        const error = Math.abs(ours.data[i]! - original.data[i]!);
        expect(error, `${name}[${i}]`).toBeLessThanOrEqual(bound);
        worst = Math.max(worst, error / Math.abs(group.scale));
        values++;
      }
      tensors++;
    }
    expect(tensors).toBe(1 + c.spec.layers * 7);
    expect(clamped).toBeLessThan(values / 100);
    console.log(`[mlx-arch] ${c.name}: ${tensors} quantized tensors bit-identical to MLX's quantizer; ${values} values within rounding (worst ${worst.toFixed(3)} steps), ${clamped} clamped by MLX`);
  });
});
