// The MLX writer's decisions (group sizes that do not divide a layer, tied embeddings, dtypes),
// the other architectures, option checks and output-folder semantics.

import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { convertToMlx } from "../src/convert/mlx.js";
import { UserError } from "../src/errors.js";
import { TINY_LLAMA, tempDir } from "./support/cli.js";
import { castTo, readMlxFolder, referenceQuantizeMatrix, wordValues, type StoredTensor } from "./support/mlx-reference.js";
import { SafetensorsFile } from "./support/safetensors.js";
import { syntheticConfig, syntheticTensors, writeHfFolder, writeSyntheticCheckpoint, type SyntheticSpec } from "./support/synthetic-checkpoint.js";
import { defaultMlxOutput, mlxSummary, parseMlxFlags } from "../src/cli/mlx-flags.js";

const dir = tempDir("edgequant-mlx-options-");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const base: SyntheticSpec = { modelType: "llama", hidden: 64, layers: 2, heads: 2, kvHeads: 1, headDim: 32, intermediate: 128, vocab: 4096, seed: 7, dtype: "BF16" };

function checkpoint(name: string, spec: Partial<SyntheticSpec>): string {
  const path = join(dir, "in", name);
  writeSyntheticCheckpoint(path, { ...base, ...spec });
  return path;
}

function bitsOfDtype(tensor: StoredTensor): number[] {
  const view = new DataView(tensor.bytes.buffer, tensor.bytes.byteOffset, tensor.bytes.byteLength);
  const size = tensor.dtype === "F32" ? 4 : 2;
  return Array.from({ length: tensor.bytes.length / size }, (_, i) => (size === 4 ? view.getUint32(4 * i, true) : view.getUint16(2 * i, true)));
}

describe("layers the group size does not divide", () => {
  it("take the largest MLX group size that divides them, with a per-layer config entry and a decision", async () => {
    const source = checkpoint("inter96", { intermediate: 96 });
    const output = join(dir, "out", "inter96");
    const report = await convertToMlx({ source, output, bits: 4 });
    const folder = readMlxFolder(output);
    expect(report.decisions.map((d) => [d.tensor, d.action, d.groupSize])).toEqual([
      ["model.layers.0.mlp.down_proj.weight", "smaller-group", 32],
      ["model.layers.1.mlp.down_proj.weight", "smaller-group", 32],
    ]);
    expect(report.decisions[0]!.message).toMatch(/group size 32 instead of 64: its input dimension 96/);
    expect(folder.config["quantization"]).toEqual({
      group_size: 64,
      bits: 4,
      mode: "affine",
      "model.layers.0.mlp.down_proj": { group_size: 32, bits: 4, mode: "affine" },
      "model.layers.1.mlp.down_proj": { group_size: 32, bits: 4, mode: "affine" },
    });
    const weight = folder.tensors.get("model.layers.0.mlp.down_proj.weight")!;
    expect([weight.dtype, weight.shape]).toEqual(["U32", [64, 12]]);
    expect(folder.tensors.get("model.layers.0.mlp.down_proj.scales")!.shape).toEqual([64, 3]);
    const original = new SafetensorsFile(join(source, "model.safetensors")).read("model.layers.0.mlp.down_proj.weight");
    const expected = referenceQuantizeMatrix(original.data, 96, 32, 4, "BF16");
    expect(Array.from(wordValues(weight))).toEqual(Array.from(expected.words));
  });

  it("stay in float when no MLX group size divides them, as mlx-lm leaves them, and say so", async () => {
    const source = checkpoint("inter80", { intermediate: 80 });
    const output = join(dir, "out", "inter80");
    const report = await convertToMlx({ source, output, bits: 3, groupSize: 32 });
    const folder = readMlxFolder(output);
    expect(report.decisions.map((d) => [d.tensor, d.action])).toEqual([
      ["model.layers.0.mlp.down_proj.weight", "kept-float"],
      ["model.layers.1.mlp.down_proj.weight", "kept-float"],
    ]);
    expect(report.decisions[0]!.message).toMatch(/input dimension 80 is not a multiple of 32/);
    expect(folder.tensors.get("model.layers.0.mlp.down_proj.weight")).toMatchObject({ dtype: "BF16", shape: [64, 80] });
    expect(folder.tensors.has("model.layers.0.mlp.down_proj.scales")).toBe(false);
    expect(folder.config["quantization"]).toEqual({ group_size: 32, bits: 3, mode: "affine" });
    expect(report.layers).toEqual({ quantized: { "3": 14 }, float: 2 });
  });

  it("group size 128 on 64-wide inputs falls back to 64 for each of them", async () => {
    const output = join(dir, "out", "g128");
    const report = await convertToMlx({ source: checkpoint("g128", {}), output, bits: 8, groupSize: 128 });
    // q/k/v, gate/up read the 64-wide hidden state, o_proj reads heads * head_dim = 64; down_proj (128) and embeddings (64) too.
    const smaller = report.decisions.filter((d) => d.action === "smaller-group").map((d) => d.tensor);
    expect(smaller).toContain("model.embed_tokens.weight");
    expect(smaller).toContain("lm_head.weight");
    expect(smaller).not.toContain("model.layers.0.mlp.down_proj.weight");
    expect(smaller).toHaveLength(2 + 2 * 6);
  });
});

describe("architectures and dtypes", () => {
  it("qwen2 with tied embeddings: no lm_head, q/k/v biases kept in float, embeddings quantized", async () => {
    const source = checkpoint("qwen2", { modelType: "qwen2", tieEmbeddings: true });
    const report = await convertToMlx({ source, output: join(dir, "out", "qwen2"), bits: 4 });
    const folder = readMlxFolder(join(dir, "out", "qwen2"));
    expect([...folder.tensors.keys()].some((n) => n.startsWith("lm_head"))).toBe(false);
    expect(folder.tensors.get("model.embed_tokens.weight")!.dtype).toBe("U32");
    expect(folder.tensors.get("model.layers.0.self_attn.q_proj.bias")).toMatchObject({ dtype: "BF16", shape: [64] });
    expect(folder.config["tie_word_embeddings"]).toBe(true);
    expect(report.architecture).toBe("qwen2");
  });

  it("qwen3 in F16: q/k norms kept, scales and biases in F16, values as MLX computes them from F16", async () => {
    const source = checkpoint("qwen3", { modelType: "qwen3", dtype: "F16" });
    const output = join(dir, "out", "qwen3");
    await convertToMlx({ source, output, bits: 6, groupSize: 32 });
    const folder = readMlxFolder(output);
    expect(folder.tensors.get("model.layers.1.self_attn.k_norm.weight")).toMatchObject({ dtype: "F16", shape: [32] });
    const scales = folder.tensors.get("model.layers.1.self_attn.k_proj.scales")!;
    expect(scales.dtype).toBe("F16");
    const original = new SafetensorsFile(join(source, "model.safetensors")).read("model.layers.1.self_attn.k_proj.weight");
    const expected = referenceQuantizeMatrix(original.data, 64, 32, 6, "F16");
    expect(Array.from(wordValues(folder.tensors.get("model.layers.1.self_attn.k_proj.weight")!))).toEqual(Array.from(expected.words));
    expect(bitsOfDtype(scales)).toEqual(expected.scaleBits);
  });

  it("F32 weights with torch_dtype bfloat16 are cast to BF16 before quantizing, as mlx_lm.convert does", async () => {
    const spec: SyntheticSpec = { ...base, dtype: "F32" };
    const source = join(dir, "in", "f32-as-bf16");
    writeHfFolder(source, { ...syntheticConfig(spec), torch_dtype: "bfloat16" }, syntheticTensors(spec));
    const output = join(dir, "out", "f32-as-bf16");
    const report = await convertToMlx({ source, output, bits: 5 });
    expect(report.floatDtype).toBe("BF16");
    const folder = readMlxFolder(output);
    expect(folder.tensors.get("model.norm.weight")!.dtype).toBe("BF16");
    const original = new SafetensorsFile(join(source, "model.safetensors")).read("model.layers.0.mlp.up_proj.weight");
    const cast = original.data.map((x) => castTo("BF16", x));
    const expected = referenceQuantizeMatrix(cast, 64, 64, 5, "BF16");
    expect(Array.from(wordValues(folder.tensors.get("model.layers.0.mlp.up_proj.weight")!))).toEqual(Array.from(expected.words));
    expect(bitsOfDtype(folder.tensors.get("model.layers.0.mlp.up_proj.biases")!)).toEqual(expected.biasBits);
  });

  it("writes tie_word_embeddings when config.json leaves it out (mlx-lm's defaults differ from transformers')", async () => {
    const spec: SyntheticSpec = { ...base };
    const source = join(dir, "in", "no-tie-key");
    const config = syntheticConfig(spec);
    delete config["tie_word_embeddings"];
    writeHfFolder(source, config, syntheticTensors(spec));
    const report = await convertToMlx({ source, output: join(dir, "out", "no-tie-key"), bits: 4 });
    const written = JSON.parse(readFileSync(join(dir, "out", "no-tie-key", "config.json"), "utf8")) as Record<string, unknown>;
    expect(written["tie_word_embeddings"]).toBe(false);
    expect(report.decisions.map((d) => d.action)).toEqual(["config"]);
  });
});

describe("options", () => {
  const output = join(dir, "out", "never");
  it.each([
    [{ bits: 7 }, /bits must be one of 2, 3, 4, 5, 6, 8, 1.58/],
    [{ bits: 4, groupSize: 16 }, /group size must be one of 32, 64, 128/],
    [{ bits: 4, mixed: "3_6" }, /mixed recipe 3_6 quantizes with 3 and 6 bits; its bits setting is 3/],
    [{ bits: 1.58, mixed: "2_6" }, /cannot be combined/],
    [{ bits: 4, mixed: "5_8" }, /unknown mixed recipe/],
    [{ bits: 4, maxShardBytes: 0 }, /positive number of bytes/],
  ])("%o is refused", async (options, message) => {
    const error = await convertToMlx({ source: TINY_LLAMA, output, ...(options as { bits: 4 }) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect((error as Error).message).toMatch(message);
  });

  it("mixed recipes 2_6, 3_4 and 4_6 give lm_head and the use_more_bits layers their high bits", async () => {
    for (const [mixed, low, high] of [["2_6", 2, 6], ["3_4", 3, 4], ["4_6", 4, 6]] as const) {
      const out = join(dir, "out", `mixed-${mixed}`);
      const report = await convertToMlx({ source: TINY_LLAMA, output: out, bits: low, mixed });
      // 6 layers: use_more_bits for layers 2 and 5 -> 4 modules, plus lm_head.
      expect(report.layers.quantized).toEqual({ [String(low)]: 39, [String(high)]: 5 });
      const quantization = readMlxFolder(out).config["quantization"] as Record<string, { bits: number }>;
      expect(quantization["model.layers.5.mlp.down_proj"]!.bits).toBe(high);
      expect(quantization["model.layers.4.mlp.down_proj"]!.bits).toBe(low);
      expect(quantization["model.embed_tokens"]!.bits).toBe(low);
    }
  });
});

describe("the output folder", () => {
  it("refuses a non-empty folder, replaces it when asked, and never touches a folder that is not a model", async () => {
    const output = join(dir, "out", "existing");
    mkdirSync(output, { recursive: true });
    writeFileSync(join(output, "notes.txt"), "mine");
    await expect(convertToMlx({ source: TINY_LLAMA, output, bits: 8 })).rejects.toThrow(/does not look like a model folder/);
    await expect(convertToMlx({ source: TINY_LLAMA, output, bits: 8, overwrite: true })).rejects.toThrow(/does not look like a model folder/);
    expect(readdirSync(output)).toEqual(["notes.txt"]);

    const model = join(dir, "out", "replace");
    await convertToMlx({ source: TINY_LLAMA, output: model, bits: 8 });
    await expect(convertToMlx({ source: TINY_LLAMA, output: model, bits: 4 })).rejects.toThrow(/the output already exists/);
    const report = await convertToMlx({ source: TINY_LLAMA, output: model, bits: 4, overwrite: true });
    expect((readMlxFolder(model).config["quantization"] as { bits: number }).bits).toBe(4);
    expect(report.output).toBe(model);
    expect(readdirSync(join(dir, "out")).filter((name) => name.startsWith("."))).toEqual([]);
  });

  it("accepts an empty folder, and refuses a file in the way", async () => {
    const empty = join(dir, "out", "empty");
    mkdirSync(empty, { recursive: true });
    await convertToMlx({ source: TINY_LLAMA, output: empty, bits: 2 });
    expect(readdirSync(empty)).toContain("model.safetensors");
    const file = join(dir, "out", "a-file");
    writeFileSync(file, "x");
    await expect(convertToMlx({ source: TINY_LLAMA, output: file, bits: 2 })).rejects.toThrow(/a file is in the way/);
  });

  it("reports progress up to the total", async () => {
    const seen: number[] = [];
    let total = 0;
    await convertToMlx({
      source: TINY_LLAMA,
      output: join(dir, "out", "progress"),
      bits: 4,
      onProgress: ({ doneBytes, totalBytes }) => {
        seen.push(doneBytes);
        total = totalBytes;
      },
    });
    expect(seen.length).toBeGreaterThan(10);
    expect(seen.every((value, i) => i === 0 || value > seen[i - 1]!)).toBe(true);
    expect(seen.at(-1)).toBe(total);
  });
});

describe("CLI helpers for --to mlx", () => {
  it("parse --bits, --group-size and --mixed with defaults and flag-named errors", () => {
    expect(parseMlxFlags({})).toEqual({ bits: 4, groupSize: 64 });
    expect(parseMlxFlags({ mixed: "3_6" })).toEqual({ bits: 3, groupSize: 64, mixed: "3_6" });
    expect(parseMlxFlags({ mixed: "mixed_2_6", bits: "2", groupSize: "32" })).toEqual({ bits: 2, groupSize: 32, mixed: "2_6" });
    expect(parseMlxFlags({ bits: "1.58" })).toEqual({ bits: 1.58, groupSize: 64 });
    expect(() => parseMlxFlags({ bits: "16" })).toThrow(/--bits for --to mlx must be one of 2, 3, 4, 5, 6, 8, 1.58/);
    expect(() => parseMlxFlags({ mixed: "3_6", bits: "4" })).toThrow(/leave out --bits or give --bits 3/);
    expect(() => parseMlxFlags({ groupSize: "48" })).toThrow(/--group-size must be one of 32, 64, 128/);
    expect(() => parseMlxFlags({ mixed: "5_8" })).toThrow(/--mixed must be one of/);
    expect(defaultMlxOutput("/models/TinyLlama", { bits: 4, groupSize: 64 })).toMatch(/\/TinyLlama-mlx-4bit$/);
    expect(defaultMlxOutput("/models/TinyLlama/", { bits: 3, groupSize: 32, mixed: "3_6" })).toMatch(/\/TinyLlama-mlx-mixed_3_6-g32$/);
    const text = mlxSummary(
      { output: "/x", architecture: "llama", bits: 4, groupSize: 64, tensors: 145, shards: 1, bytes: 3840512, bitsPerWeight: 4.5056, decisions: [{ tensor: "a.weight", message: "kept in BF16: reasons" }] },
      (bytes) => `${bytes} B`,
    );
    expect(text).toBe("wrote /x\n  llama, MLX affine 4-bit, group size 64, 145 tensors in 1 file, 3840512 B, 4.51 bits/weight\n  1 decision:\n    a.weight: kept in BF16: reasons\n");
  });
});
