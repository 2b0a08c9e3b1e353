// Every --json output carries a schema version and validates against its JSON Schema in
// formats/ (ajv, strict): convert for each format, inspect of a checkpoint and a GGUF (arrays in
// full, or cut by --max-array), fit. Scripts can rely on the shape, and a change to it is seen here.
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Ajv } from "ajv";
import { afterAll, describe, expect, it } from "vitest";
import { REPO_ROOT, TINY_LLAMA, runCli, tempDir } from "./support/cli.js";

const dir = tempDir();
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// strictRequired off: the oneOf branches require the section named by "format", defined at the top level.
const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false, allowUnionTypes: true });
const validator = (name: string) => ajv.compile(JSON.parse(readFileSync(join(REPO_ROOT, "formats", name), "utf8")) as object);
const validate = { convert: validator("convert.schema.json"), inspect: validator("inspect.schema.json"), plan: validator("plan.schema.json"), fit: new Ajv({ allErrors: true, strict: false }).compile(JSON.parse(readFileSync(join(REPO_ROOT, "formats/fit-manifest.schema.json"), "utf8")) as object) };

function json(args: readonly string[]): Record<string, unknown> {
  const result = runCli([...args, "--json"]);
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as Record<string, unknown>;
}

function expectValid(kind: keyof typeof validate, value: unknown): void {
  const check = validate[kind];
  expect(check(value), JSON.stringify(check.errors, null, 2)).toBe(true);
}

const gguf = join(dir, "tiny-q8_0.gguf");

describe("convert --json: one shape for every format, validated by formats/convert.schema.json", () => {
  it.each([
    ["gguf", gguf, ["--scheme", "q8_0"]],
    ["onnx", join(dir, "tiny-onnx"), ["--bits", "4"]],
    ["mlx", join(dir, "tiny-mlx"), ["--bits", "4"]],
  ] as const)("%s", (format, output, flags) => {
    const report = json(["convert", TINY_LLAMA, "--to", format, ...flags, "-o", output, "--no-progress"]);
    expectValid("convert", report);
    expect(report).toMatchObject({ schema: "edgequant-convert/v1", format, output, source: { uri: TINY_LLAMA, path: TINY_LLAMA }, fit: `${output}.fit.json` });
    expect(Object.keys(report[format] as object).length).toBeGreaterThan(0);
  });
});

describe("inspect --json: formats/inspect.schema.json, GGUF arrays in full or cut by --max-array", () => {
  it("a checkpoint folder", () => {
    expectValid("inspect", json(["inspect", TINY_LLAMA]));
  });

  it("a GGUF: the vocabulary in full with each key's GGUF type", () => {
    const report = json(["inspect", gguf]) as { metadata: Record<string, unknown>; metadataTypes: Record<string, string> };
    expectValid("inspect", report);
    expect(report.metadata["tokenizer.ggml.tokens"]).toHaveLength(4096);
    expect(report.metadataTypes).toMatchObject({ "tokenizer.ggml.tokens": "ARRAY[STRING]", "llama.block_count": "UINT32", "general.name": "STRING" });
  });

  it("--max-array 5 cuts the arrays and says their full lengths", () => {
    const report = json(["inspect", gguf, "--max-array", "5"]) as { metadata: Record<string, unknown[]>; truncatedArrays: Record<string, number> };
    expectValid("inspect", report);
    expect(report.metadata["tokenizer.ggml.tokens"]).toHaveLength(5);
    expect(report.truncatedArrays).toEqual({ "tokenizer.ggml.tokens": 4096, "tokenizer.ggml.scores": 4096, "tokenizer.ggml.token_type": 4096 });
  });

  it("--max-array takes a whole number", () => {
    const result = runCli(["inspect", gguf, "--max-array", "many"]);
    expect(result.stderr).toContain("--max-array must be a whole number of items, got 'many'");
    expect(result.code).toBe(2);
  });
});

describe("fit --json: formats/fit-manifest.schema.json", () => {
  it("the GGUF's fit on one device", () => {
    expectValid("fit", json(["fit", gguf, "--devices", "raspberry-pi-5-8gb", "--ctx", "2048"]));
  });
});

describe("plan --json: formats/plan.schema.json, its manifest formats/fit-manifest.schema.json", () => {
  it("every format's candidates on two devices", () => {
    const report = json(["plan", TINY_LLAMA, "--devices", "iphone-15-pro,raspberry-pi-5-8gb", "--ctx", "256"]);
    expectValid("plan", report);
    expectValid("fit", report["manifest"]);
    expect(report["schema"]).toBe("edgequant-plan/v1");
  });
});
