import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { TINY_LLAMA, runCli, tempDir } from "./support/cli.js";

const dir = tempDir();
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("the CLI teaches and reports", () => {
  it("--help lists the commands; convert --help shows examples for every format", () => {
    const top = runCli(["--help"]);
    expect(top.code).toBe(0);
    expect(top.stdout).toMatch(/convert \[options\] <source>/);
    expect(top.stdout).toMatch(/inspect \[options\] <path>/);
    const convert = runCli(["convert", "--help"]);
    expect(convert.code).toBe(0);
    for (const example of ["--to gguf --bits 4", "--bits 1.58", "--split-max-size", "--part 2/8", "--to onnx", "--to mlx"]) expect(convert.stdout).toContain(example);
  });

  it("--to onnx writes a model folder and a JSON report", () => {
    const output = join(dir, "tiny-onnx");
    const result = runCli(["convert", TINY_LLAMA, "--to", "onnx", "--bits", "4", "-o", output, "--json", "--no-progress"]);
    expect(result.code, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(report).toMatchObject({ schema: "edgequant-convert/v1", source: { uri: TINY_LLAMA }, format: "onnx", output, onnx: { bits: 4, layout: "genai" } });
    for (const file of ["model.onnx", "model.onnx_data", "genai_config.json", "config.json", "tokenizer.model"]) expect(existsSync(join(output, file)), file).toBe(true);
    expect(readdirSync(dir).filter((name) => name.includes("partial"))).toEqual([]);
  });
});

describe("--to mlx through the CLI", () => {
  it("writes an mlx-lm model folder and says what it decided", () => {
    const output = join(dir, "tiny-mlx");
    const result = runCli(["convert", TINY_LLAMA, "--to", "mlx", "--bits", "4", "--group-size", "64", "-o", output, "--json", "--no-progress"]);
    expect(result.code, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(report).toMatchObject({ schema: "edgequant-convert/v1", format: "mlx", output, mlx: { bits: 4, groupSize: 64 } });
    expect(existsSync(join(output, "config.json"))).toBe(true);
    const human = runCli(["convert", TINY_LLAMA, "--to", "mlx", "--mixed", "3_6", "-o", join(dir, "tiny-mlx-mixed"), "--no-progress"]);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/MLX affine mixed 3_6, group size 64/);
  });
});

describe("exit codes say whether anything was done", () => {
  it.each([
    [["--help"], 0],
    [["help"], 0],
    [["--version"], 0],
    [["convert", "--help"], 0],
    [[], 2],
    [["frobnicate"], 2],
  ] as const)("edgequant %j exits %i", (args, code) => {
    expect(runCli(args).code).toBe(code);
  });
});

describe("a reader that closes the pipe early is not an error", () => {
  it("`edgequant fit --json | head -1` exits 0 with no stack trace (the report is 300 kB, more than a pipe holds)", () => {
    const model = join(dir, "tiny-pipe.gguf");
    expect(runCli(["convert", TINY_LLAMA, "--to", "gguf", "-o", model, "--no-progress"]).code).toBe(0);
    const result = runCli(["fit", model, "--json"], { shellPrefix: "set -o pipefail;", pipeTo: "head -1" });
    expect(result.stdout.trim()).toBe("{");
    expect(result.stderr).not.toMatch(/EPIPE|\n\s+at /);
    expect(result.code).toBe(0);
  });
});

describe("an ONNX output folder may have any name", () => {
  it("-o <dir>/onnx (the name of transformers.js's subfolder) converts and fits", () => {
    const output = join(dir, "named", "onnx");
    const result = runCli(["convert", TINY_LLAMA, "--to", "onnx", "--bits", "4", "-o", output, "--no-progress"]);
    expect(result.code, result.stderr).toBe(0);
    expect(existsSync(`${output}.fit.json`)).toBe(true);
  });
});

describe("-o DIR for a GGUF writes the default name inside it, as convert_hf_to_gguf.py --outfile DIR does", () => {
  it.each([
    ["an existing folder", (folder: string) => (mkdirSync(folder, { recursive: true }), folder)],
    ["a path ending in /", (folder: string) => `${folder}/`],
  ])("%s", (_, given) => {
    const folder = join(dir, `gguf-into-${Math.random().toString(36).slice(2)}`);
    const result = runCli(["convert", TINY_LLAMA, "--to", "gguf", "--scheme", "q8_0", "-o", given(folder), "--no-progress"]);
    expect(result.code, result.stderr).toBe(0);
    expect(readdirSync(folder).sort()).toEqual(["tiny-llama-q8_0.gguf", "tiny-llama-q8_0.gguf.fit.json", "tiny-llama-q8_0.gguf.fit.svg"]);
  });
});

describe("an earlier output is replaced only with --force, the same rule for every format", () => {
  it.each([
    ["gguf", "model.gguf", ["--scheme", "q8_0"]],
    ["onnx", "model-onnx", ["--bits", "8"]],
    ["mlx", "model-mlx", ["--bits", "8"]],
  ] as const)("%s: refused without --force (the earlier output untouched), replaced with it", (format, name, flags) => {
    const output = join(dir, `again-${format}`, name);
    const convert = (...extra: string[]) => runCli(["convert", TINY_LLAMA, "--to", format, ...flags, "-o", output, "--no-progress", ...extra]);
    expect(convert().code).toBe(0);
    const before = statSync(output).mtimeMs;
    const refused = convert();
    expect(refused.stderr).toContain(`error: ${output}: the output already exists; choose another path, or replace it (--force; overwrite: true in the library)`);
    expect(refused.code).toBe(2);
    expect(statSync(output).mtimeMs).toBe(before);
    expect(readdirSync(join(dir, `again-${format}`)).filter((file) => file.includes(".partial"))).toEqual([]);
    const replaced = convert("--force");
    expect(replaced.code, replaced.stderr).toBe(0);
  });
});
