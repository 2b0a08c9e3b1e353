import { readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { gguf, GGMLQuantizationType, GGUFValueType } from "@huggingface/gguf";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { GgmlType, tensorBytes } from "../src/quant/ggml-types.js";
import { bool, f32, f32s, i32s, str, strings, u32, type GgufMetadata, type GgufValue } from "../src/writers/gguf/metadata.js";
import { writeGguf, type GgufTensorPlan } from "../src/writers/gguf/writer.js";
import { tempDir } from "./support/cli.js";

const dir = tempDir();
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function tensor(name: string, type: GgmlType, shape: number[], fill: number): GgufTensorPlan {
  return { name, type, shape, produce: async function* () { yield new Uint8Array(tensorBytes(type, shape)).fill(fill); } };
}

async function parse(path: string) {
  return gguf(path, { allowLocalFile: true, typedMetadata: true });
}

describe("GGUF v3 files we write are read back exactly by @huggingface/gguf", () => {
  it("every metadata value type round-trips with its type", async () => {
    const metadata: GgufMetadata = new Map<string, GgufValue>([
      ["general.architecture", str("llama")],
      ["u8", { type: GGUFValueType.UINT8, value: 255 }],
      ["i8", { type: GGUFValueType.INT8, value: -128 }],
      ["u16", { type: GGUFValueType.UINT16, value: 65535 }],
      ["i16", { type: GGUFValueType.INT16, value: -32768 }],
      ["u32", u32(4294967295)],
      ["i32", { type: GGUFValueType.INT32, value: -2147483648 }],
      ["f32", f32(0.5)],
      ["f64", { type: GGUFValueType.FLOAT64, value: Math.PI }],
      ["u64", { type: GGUFValueType.UINT64, value: 2n ** 64n - 1n }],
      ["i64", { type: GGUFValueType.INT64, value: -(2n ** 63n) }],
      ["bool", bool(true)],
      ["utf8", str("héllo ▁wörld 🦙")],
      ["strings", strings(["a", "", "▁b", "<0x0A>"])],
      ["floats", f32s(new Float32Array([-1000, 0, 1.5]))],
      ["ints", i32s([1, -2, 3])],
    ]);
    const path = join(dir, "types.gguf");
    await writeGguf(path, metadata, []);
    const parsed = await parse(path);
    for (const [key, expected] of metadata) {
      const actual = parsed.typedMetadata[key]!;
      expect(actual.type, key).toBe(expected.type);
      const value = expected.value;
      expect(actual.value, key).toEqual(ArrayBuffer.isView(value) || Array.isArray(value) ? [...(value as ArrayLike<number | string>) as never] : value);
    }
    expect(parsed.metadata.version).toBe(3);
  });

  it("tensor infos list shape innermost-first, offsets aligned to 32, data where the offsets say", async () => {
    const tensors = [
      tensor("a", GgmlType.F32, [3, 5], 1),
      tensor("b", GgmlType.F16, [7], 2),
      tensor("c", GgmlType.BF16, [2, 3, 4], 3),
    ];
    const path = join(dir, "tensors.gguf");
    await writeGguf(path, new Map([["general.architecture", str("llama")]]), tensors);
    const parsed = await parse(path);
    const bytes = readFileSync(path);
    // expected type ids from @huggingface/gguf's own enum, byte sizes from the formats (4 or 2 bytes a value)
    expect(parsed.tensorInfos.map((t) => [t.name, t.shape.map(Number), t.dtype])).toEqual([
      ["a", [5, 3], GGMLQuantizationType.F32],
      ["b", [7], GGMLQuantizationType.F16],
      ["c", [4, 3, 2], GGMLQuantizationType.BF16],
    ]);
    const valueBytes = [4, 2, 2];
    expect(Number(parsed.tensorDataOffset) % 32).toBe(0);
    for (const [i, info] of parsed.tensorInfos.entries()) {
      expect(Number(info.offset) % 32).toBe(0);
      const start = Number(parsed.tensorDataOffset + info.offset);
      const length = tensors[i]!.shape.reduce((a, b) => a * b, 1) * valueBytes[i]!;
      expect(bytes.subarray(start, start + length).every((b) => b === i + 1)).toBe(true);
    }
  });

  it("a vocabulary-sized header (150k strings, scores and types) round-trips", async () => {
    const tokens = Array.from({ length: 150_000 }, (_, i) => `tok${i}▁`);
    const path = join(dir, "vocab.gguf");
    await writeGguf(path, new Map([["tokens", strings(tokens)], ["scores", f32s(new Float32Array(150_000).fill(-1))], ["after", u32(7)]]), [tensor("t", GgmlType.F32, [1000], 9)]);
    const parsed = await parse(path);
    expect(parsed.typedMetadata["tokens"]?.value).toEqual(tokens);
    expect(parsed.typedMetadata["after"]?.value).toBe(7);
    expect(parsed.tensorInfos).toHaveLength(1);
  });

  it("general.alignment is honoured", async () => {
    const path = join(dir, "aligned.gguf");
    await writeGguf(path, new Map([["general.alignment", u32(64)]]), [tensor("a", GgmlType.F32, [3], 1), tensor("b", GgmlType.F32, [3], 2)]);
    const parsed = await parse(path);
    expect(Number(parsed.tensorDataOffset) % 64).toBe(0);
    expect(parsed.tensorInfos.map((t) => Number(t.offset))).toEqual([0, 64]);
  });

  it("property: arbitrary string/number metadata and tensor lists parse back unchanged", async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.dictionary(fc.string({ minLength: 1, maxLength: 20 }), fc.oneof(fc.string({ maxLength: 40 }), fc.nat({ max: 2 ** 32 - 1 })), { maxKeys: 8 }),
        fc.array(fc.tuple(fc.constantFrom(GgmlType.F32, GgmlType.F16, GgmlType.BF16), fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: 3 })), { maxLength: 6 }),
        async (entries, specs) => {
          const metadata: GgufMetadata = new Map(Object.entries(entries).map(([k, v]) => [k, typeof v === "string" ? str(v) : u32(v)]));
          const path = join(dir, `prop-${run++}.gguf`);
          await writeGguf(path, metadata, specs.map(([type, shape], i) => tensor(`t${i}`, type, shape, i)));
          const parsed = await parse(path);
          for (const [key, value] of metadata) expect(parsed.typedMetadata[key]?.value).toBe(value.value);
          expect(parsed.tensorInfos.map((t) => t.shape.map(Number).reverse())).toEqual(specs.map(([, shape]) => shape));
          rmSync(path);
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe("a failed write leaves nothing at the destination", () => {
  it("an error while producing a tensor removes the temporary file", async () => {
    const path = join(dir, "failed.gguf");
    const failing: GgufTensorPlan = { name: "x", type: GgmlType.F32, shape: [4], produce: async function* () { yield new Uint8Array(8); throw new Error("boom"); } };
    await expect(writeGguf(path, new Map(), [tensor("ok", GgmlType.F32, [4], 0), failing])).rejects.toThrow("boom");
    expect(readdirSync(dir).filter((name) => name.includes("failed"))).toEqual([]);
  });
});
