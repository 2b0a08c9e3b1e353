// Acceptance 5 of the MLX writer: a ternary checkpoint at bits 1.58 is stored as 2-bit affine
// groups with scale = s and bias = -s, and dequantizes to the source weights exactly.

import { existsSync, readdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { convertToMlx } from "../src/convert/mlx.js";
import { UserError } from "../src/errors.js";
import { TINY_LLAMA, TINY_LLAMA_TERNARY, tempDir } from "./support/cli.js";
import { dequantizeMlxFolder, floatValues, readMlxFolder } from "./support/mlx-reference.js";
import { SafetensorsFile } from "./support/safetensors.js";

const dir = tempDir("edgequant-mlx-ternary-");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const LINEAR = /^model\.layers\.\d+\.(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)\.weight$/;

describe("bits 1.58 on a ternary checkpoint", () => {
  it("dequantizes to the source weights exactly (tiny-llama-ternary)", async () => {
    const output = join(dir, "ternary");
    const report = await convertToMlx({ source: TINY_LLAMA_TERNARY, output, bits: 1.58 });
    const folder = readMlxFolder(output);
    expect(folder.config["quantization"]).toEqual({ group_size: 64, bits: 2, mode: "affine" });
    const source = new SafetensorsFile(join(TINY_LLAMA_TERNARY, "model.safetensors"));
    const dequantized = dequantizeMlxFolder(folder);

    let compared = 0;
    let mismatches = 0;
    let ternaryTensors = 0;
    for (const name of source.names()) {
      const original = source.read(name);
      const ours = dequantized.get(name);
      expect(ours, name).toBeDefined();
      expect(ours!.shape).toEqual(original.shape);
      for (let i = 0; i < original.data.length; i++) if (ours!.data[i] !== original.data[i]) mismatches++;
      compared += original.data.length;
      if (LINEAR.test(name)) {
        ternaryTensors++;
        const module = name.slice(0, -".weight".length);
        expect(folder.tensors.get(`${module}.weight`)!.dtype).toBe("U32");
        // One scale s for the tensor: every group stores scale s and bias -s.
        const scales = floatValues(folder.tensors.get(`${module}.scales`)!);
        const biases = floatValues(folder.tensors.get(`${module}.biases`)!);
        const s = original.data.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
        expect(scales.every((x) => x === s)).toBe(true);
        expect(biases.every((x) => x === -s)).toBe(true);
      }
    }
    console.log(`[mlx-ternary] ${compared} weights compared, ${mismatches} mismatches; ${ternaryTensors} ternary tensors at 2 bits, ${report.bitsPerWeight.toFixed(3)} bits per weight`);
    expect(mismatches).toBe(0);
    expect(ternaryTensors).toBe(42);
    // Embeddings and lm_head are not ternary in BitNet-style models: kept in BF16, and said so.
    expect(folder.tensors.get("model.embed_tokens.weight")!.dtype).toBe("BF16");
    expect(folder.tensors.get("lm_head.weight")!.dtype).toBe("BF16");
    expect(report.decisions.map((d) => [d.tensor, d.action])).toEqual([
      ["model.embed_tokens.weight", "kept-float"],
      ["lm_head.weight", "kept-float"],
    ]);
    expect(report.layers).toEqual({ quantized: { "1.58": 42 }, float: 2 });
  });

  it("refuses a checkpoint that is not ternary and leaves nothing behind", async () => {
    const output = join(dir, "refused", "model");
    const error = await convertToMlx({ source: TINY_LLAMA, output, bits: 1.58 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect((error as Error).message).toMatch(/needs a ternary checkpoint/);
    expect((error as Error).message).toMatch(/model\.layers\.0\./);
    expect(existsSync(output)).toBe(false);
    expect(readdirSync(dirname(output))).toEqual([]);
  });

  it("ternarizes a non-ternary checkpoint when the loss is accepted, and lists every such tensor", async () => {
    const output = join(dir, "lossy");
    const report = await convertToMlx({ source: TINY_LLAMA, output, bits: 1.58, allowLossyTernary: true });
    const lossy = report.decisions.filter((d) => d.action === "lossy-ternary");
    expect(lossy).toHaveLength(42);
    const folder = readMlxFolder(output);
    const dequantized = dequantizeMlxFolder(folder);
    // Every group holds at most three values: -s, 0, +s.
    const weight = dequantized.get("model.layers.3.mlp.up_proj.weight")!;
    for (let g = 0; g < weight.data.length; g += 64) {
      const distinct = new Set(Array.from(weight.data.subarray(g, g + 64)).map((x) => Math.abs(x)));
      expect(distinct.size).toBeLessThanOrEqual(2);
    }
  });
});
