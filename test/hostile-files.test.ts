// Files that are not what their names say: folder entries that are folders or named pipes,
// shard names that point at the folder itself, an index that is `null`, are refused with the file
// named and exit 2, before anything blocks or is written. A GGUF input that is refused leaves no
// file handle open; one whose metadata fit cannot model still converts.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { convertToGguf } from "../src/convert/gguf.js";
import { UserError } from "../src/errors.js";
import { resolveScheme } from "../src/quant/schemes.js";
import { openGgufInput } from "../src/readers/gguf-input.js";
import { GgmlType } from "../src/quant/ggml-types.js";
import { str, u32 } from "../src/writers/gguf/metadata.js";
import { writeGguf } from "../src/writers/gguf/writer.js";
import { TINY_LLAMA, copyFixture, expectRefused, runCli, tempDir } from "./support/cli.js";

const outDir = tempDir();
afterAll(() => rmSync(outDir, { recursive: true, force: true }));

function withIndex(index: unknown): string {
  const dir = copyFixture(TINY_LLAMA);
  writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify(index));
  return dir;
}

describe("folder entries that are not regular files are refused by name, never read", () => {
  it("model.safetensors that is a folder", () => {
    const dir = copyFixture(TINY_LLAMA);
    rmSync(join(dir, "model.safetensors"));
    mkdirSync(join(dir, "model.safetensors"));
    expectRefused(dir, /model\.safetensors: expected a safetensors file, found a folder/);
  });

  it("model.safetensors that is a named pipe (opening it would block forever)", () => {
    const dir = copyFixture(TINY_LLAMA);
    rmSync(join(dir, "model.safetensors"));
    execFileSync("mkfifo", [join(dir, "model.safetensors")]);
    expectRefused(dir, /model\.safetensors: expected a safetensors file, found a named pipe/);
  });

  it("tokenizer.json that is a named pipe", () => {
    const dir = copyFixture(TINY_LLAMA);
    execFileSync("mkfifo", [join(dir, "tokenizer.json")]);
    expectRefused(dir, /tokenizer\.json: expected a file, found a named pipe/);
  });

  it("a .jinja chat template that is a folder", () => {
    const dir = copyFixture(TINY_LLAMA);
    mkdirSync(join(dir, "additional_chat_templates", "tool_use.jinja"), { recursive: true });
    expectRefused(dir, /tool_use\.jinja: expected a chat template file, found a folder/);
  });

  it("config.json that is a folder", () => {
    const dir = copyFixture(TINY_LLAMA);
    rmSync(join(dir, "config.json"));
    mkdirSync(join(dir, "config.json"));
    expectRefused(dir, /config\.json: expected a JSON file, found a folder/);
  });
});

describe("model.safetensors.index.json is validated before any shard is opened", () => {
  it("an index that is null", () => {
    expectRefused(withIndex(null), /model\.safetensors\.index\.json: missing 'weight_map'/);
  });

  it.each([[".."], ["."], [""], ["sub/model.safetensors"]])("a shard named %j", (shard) => {
    expectRefused(withIndex({ weight_map: { "model.embed_tokens.weight": shard } }), /model\.safetensors\.index\.json: invalid shard name/);
  });
});

describe("a refused GGUF input leaves no file handle open", () => {
  it("re-quantizing an already quantized GGUF 20 times in one process opens no descriptor for good", async () => {
    const quantized = join(outDir, "tiny-q8_0.gguf");
    await convertToGguf({ source: TINY_LLAMA, output: quantized, scheme: resolveScheme("q8_0") });
    const descriptors = () => readdirSync("/proc/self/fd").length;
    const before = descriptors();
    for (let i = 0; i < 20; i++) await expect(openGgufInput(quantized)).rejects.toThrow(UserError);
    expect(descriptors()).toBe(before);
  });
});

describe("a finished conversion is not turned into a failure by its fit step", () => {
  it("a GGUF input without embedding_length re-quantizes (exit 0, the model in place) and the missing fit manifest is a warning", async () => {
    const f16 = join(outDir, "tiny-f16.gguf");
    await convertToGguf({ source: TINY_LLAMA, output: f16, scheme: resolveScheme("f16") });
    const bytes = readFileSync(f16);
    const key = Buffer.from("llama.embedding_length");
    const at = bytes.indexOf(key);
    expect(at).toBeGreaterThan(0);
    bytes[at + key.length - 1] = "X".charCodeAt(0); // llama.embedding_lengtX: an unknown key, the real one gone
    const broken = join(outDir, "broken.gguf");
    writeFileSync(broken, bytes);
    const output = join(outDir, "requantized.gguf");
    const result = runCli(["convert", broken, "--to", "gguf", "--scheme", "q8_0", "-o", output, "--no-progress"]);
    expect(result.code, result.stderr).toBe(0);
    expect(existsSync(output)).toBe(true);
    expect(result.stderr).toContain(`warning: the model is written, but not its fit manifest: ${output}: GGUF has no llama.embedding_length`);
  });
});

describe("a GGUF input's general.alignment is checked as llama.cpp checks it", () => {
  // 0 is refused by the GGUF parser itself, 7 and 12 by our check (llama.cpp wants a power of two).
  it.each([
    [7, "metadata key 'general.alignment' must be a power of two, got 7"],
    [12, "metadata key 'general.alignment' must be a power of two, got 12"],
    [0, "not a readable GGUF file (general.alignment must be a positive integer, got 0)"],
  ])("alignment %i is refused with the key named, exit 2", async (alignment, message) => {
    const path = join(outDir, `align-${alignment}.gguf`);
    await writeGguf(path, new Map([["general.architecture", str("llama")], ["general.alignment", u32(8)]]), [
      { name: "t", type: GgmlType.F32, shape: [8], produce: async function* () { yield new Uint8Array(32); } },
    ]);
    // The key, its type (u32 = 4) and its value 8: patch the value in place.
    const bytes = readFileSync(path);
    const key = Buffer.from("general.alignment");
    const value = bytes.indexOf(key) + key.length + 4;
    expect(bytes.readUInt32LE(value)).toBe(8);
    bytes.writeUInt32LE(alignment, value);
    writeFileSync(path, bytes);
    await expect(openGgufInput(path)).rejects.toThrow(`${path}: ${message}`);
    expectRefused(path, new RegExp(`${path}: ${message.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`));
  });
});

describe("a GGUF header's counts and lengths are checked against the file's size before it is parsed", () => {
  // Found by the fuzzer: 393,228 tensors declared in a 354 kB file cost 600 MB and 8 s before any error,
  // and a file cut inside its header made the parser grow its buffer for 18 s.
  it.each([
    ["tensor", 8, 393_228n],
    ["metadata key", 16, 2n ** 40n],
  ])("a %s count far beyond what the file holds: convert and inspect refuse it at once, exit 2", async (what, offset, count) => {
    const path = join(outDir, `counts-${offset}.gguf`);
    await convertToGguf({ source: TINY_LLAMA, output: path, scheme: resolveScheme("q8_0") });
    const bytes = readFileSync(path);
    bytes.writeBigUInt64LE(count, offset);
    writeFileSync(path, bytes);
    const message = new RegExp(`${path}: not a readable GGUF file: the ${what} count at byte ${offset} is ${count}, which needs at least \\d+ bytes, but only \\d+ are left in the file`);
    expectRefused(path, message);
    const inspected = runCli(["inspect", path], { shellPrefix: "timeout 60" });
    expect(inspected.stderr).toMatch(message);
    expect(inspected.code).toBe(2);
  });

  it.each([
    ["cut inside the header (12 bytes)", (bytes: Buffer) => bytes.subarray(0, 12), /the tensor count at byte 8 needs 8 bytes, but the file ends at 12/],
    ["a string value 2^40 bytes long", (bytes: Buffer) => {
      const key = Buffer.from("tokenizer.ggml.model");
      bytes.writeBigUInt64LE(2n ** 40n, bytes.indexOf(key) + key.length + 4);
      return bytes;
    }, /metadata key \d+'s value's length at byte \d+ is 1099511627776, which needs at least 1099511627776 bytes/],
    ["an array of 2^40 tokens", (bytes: Buffer) => {
      const key = Buffer.from("tokenizer.ggml.tokens");
      bytes.writeBigUInt64LE(2n ** 40n, bytes.indexOf(key) + key.length + 4 + 4);
      return bytes;
    }, /metadata key \d+'s value's item count at byte \d+ is 1099511627776, which needs at least 8796093022208 bytes/],
  ])("%s: refused at once, naming where", async (_, mutate, message) => {
    const path = join(outDir, `cut-${Math.random().toString(36).slice(2)}.gguf`);
    await convertToGguf({ source: TINY_LLAMA, output: path, scheme: resolveScheme("q8_0") });
    writeFileSync(path, mutate(readFileSync(path)));
    expectRefused(path, message);
  });
});
