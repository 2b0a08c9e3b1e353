// Settings that the CLI and recipes share (src/options.ts): a bad value is refused with exit 2
// before any work, a good one reaches the model, and the recipe schema allows exactly the
// values the CLI does.
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { UserError } from "../src/errors.js";
import { ACCURACY_LEVELS, ONNX_BITS, ONNX_GROUP_SIZES, parseAccuracyLevel, parseByteSize, parseOnnxBits, parseThreads } from "../src/options.js";
import { recipeSchema } from "../src/pipeline/recipe.js";
import { resolveScheme } from "../src/quant/schemes.js";
import { MLX_BITS, MLX_GROUP_SIZES } from "../src/writers/mlx/affine.js";
import { MIXED_RECIPES } from "../src/writers/mlx/recipes.js";
import { decodeModel } from "../src/writers/onnx/proto.js";
import { TINY_LLAMA, listFiles, runCli, tempDir } from "./support/cli.js";

const outDir = tempDir();
afterAll(() => rmSync(outDir, { recursive: true, force: true }));

describe("--accuracy-level takes 0, 1 or 4 and nothing else", () => {
  for (const value of ["abc", "2", "", "4.0", "-1"]) {
    it(`'${value}' exits 2 with the allowed values, writing nothing`, () => {
      const output = join(outDir, `bad-${value || "empty"}`);
      const result = runCli(["convert", TINY_LLAMA, "--to", "onnx", "--bits", "4", "--accuracy-level", value, "-o", output, "--no-progress"]);
      expect(result.stderr).toContain("error: --accuracy-level must be 0, 1 or 4");
      expect(result.stderr).toContain(`got '${value}'`);
      expect(result.stderr).not.toMatch(/\n\s+at /);
      expect(result.code).toBe(2);
      expect(existsSync(output)).toBe(false);
      expect(listFiles(outDir).filter((name) => name.startsWith(".") || name.includes("partial"))).toEqual([]);
    });
  }

  it("is checked before a Hub source is fetched", () => {
    // Offline, an uncached hf: source would fail on its own; the flag must be refused first.
    const result = runCli(["convert", "hf:example/not-in-any-cache", "--to", "onnx", "--accuracy-level", "abc", "--no-progress"], { shellPrefix: `HF_HUB_OFFLINE=1 HF_HUB_CACHE=${join(outDir, "empty-cache")}` });
    expect(result.stderr).toMatch(/^error: --accuracy-level must be 0, 1 or 4\b.*; got 'abc'$/m);
    expect(result.code).toBe(2);
  });

  it("a valid level is the MatMulNBits attribute of every quantized matmul", () => {
    const output = join(outDir, "level-1");
    const result = runCli(["convert", TINY_LLAMA, "--to", "onnx", "--bits", "4", "--accuracy-level", "1", "-o", output, "--no-progress"]);
    expect(result.stderr).not.toMatch(/^error/m);
    expect(result.code).toBe(0);
    const model = decodeModel(readFileSync(join(output, "model.onnx")));
    const matmuls = (model.graph?.node ?? []).filter((node) => node.opType === "MatMulNBits");
    expect(matmuls.length).toBeGreaterThan(0);
    for (const node of matmuls) {
      const level = node.attribute?.find((a) => a.name === "accuracy_level");
      expect(Number(level?.i)).toBe(1);
    }
  });
});

describe("the option parsers", () => {
  it("accept exactly the listed text forms", () => {
    expect(ACCURACY_LEVELS.map((level) => parseAccuracyLevel(String(level)))).toEqual([0, 1, 4]);
    expect(ONNX_BITS.map((bits) => parseOnnxBits(String(bits)))).toEqual([32, 16, 8, 4, 1.58]);
    for (const text of ["abc", "NaN", "0x4", "4e0", " "]) expect(() => parseAccuracyLevel(text)).toThrow(UserError);
    expect(() => parseOnnxBits("1.5")).toThrow(/--bits for --to onnx must be 32, 16, 8, 4 or 1\.58; got '1\.5'/);
  });

  it("sizes are whole M or G, as gguf-split takes them", () => {
    expect(parseByteSize("5G", "--split-max-size")).toBe(5e9);
    expect(parseByteSize("500M", "max-shard-size")).toBe(5e8);
    for (const text of ["0G", "2GB", "1.5G", "5g", "G", "5 G"]) expect(() => parseByteSize(text, "max-shard-size")).toThrow(/^max-shard-size takes a positive whole number of M or G/);
  });

  it("threads are a positive whole number", () => {
    expect(parseThreads("3")).toBe(3);
    for (const text of ["0", "-2", "1.5", "abc", "", "0x4"]) expect(() => parseThreads(text)).toThrow(/--threads must be a positive integer/);
  });
});

describe("recipes allow the values the CLI allows", () => {
  type Items = { properties: Record<string, { enum?: unknown[] }> };
  const outputs = (recipeSchema() as unknown as { properties: { outputs: { properties: Record<string, { items: Items }> } } }).properties.outputs;
  const keys = (kind: "onnx" | "mlx") => outputs.properties[kind]!.items.properties;
  const sorted = (values: readonly unknown[]) => [...values].map(Number).sort((a, b) => a - b);

  it("ONNX bits, group sizes and accuracy levels", () => {
    const onnx = keys("onnx");
    expect(sorted(onnx["bits"]!.enum!)).toEqual(sorted(ONNX_BITS));
    expect(sorted(onnx["group-size"]!.enum!)).toEqual(sorted(ONNX_GROUP_SIZES));
    expect(sorted(onnx["accuracy-level"]!.enum!)).toEqual(sorted(ACCURACY_LEVELS));
  });

  it("MLX bits, group sizes and mixed recipes", () => {
    const mlx = keys("mlx");
    expect(sorted(mlx["bits"]!.enum!)).toEqual(sorted([...MLX_BITS, 1.58]));
    expect(sorted(mlx["group-size"]!.enum!)).toEqual(sorted(MLX_GROUP_SIZES));
    expect([...mlx["mixed"]!.enum!].sort()).toEqual(Object.keys(MIXED_RECIPES).map((name) => `mixed_${name}`).sort());
  });
});

describe("resolveScheme reads a scheme name or the CLI's flags, and refuses what it does not understand", () => {
  it.each([
    ["q4_k_m", "q4_k_m"],
    ["Q4_K_M", "q4_k_m"],
    [{ bits: "4" }, "q4_k_m"],
    [{ scheme: "tq2_0" }, "tq2_0"],
    [{}, "f16"],
  ] as const)("%j is %s", (choice, name) => {
    expect(resolveScheme(choice).name).toBe(name);
  });

  it.each([["q4km"], [{ bits: "3" }], [{ scheme: "q4_k_m", bits: "4" }]] as const)("%j is refused", (choice) => {
    expect(() => resolveScheme(choice)).toThrow(UserError);
  });
});
