import { cpSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { convertToGguf } from "../src/convert/gguf.js";
import { UserError } from "../src/errors.js";
import { openCheckpoint } from "../src/readers/checkpoint.js";
import { SafetensorsFile } from "../src/readers/safetensors.js";
import { resolveScheme } from "../src/quant/schemes.js";
import { TINY_LLAMA, tempDir } from "./support/cli.js";

const dir = tempDir();
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function safetensorsBytes(header: object, data: Uint8Array): Buffer {
  const json = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([length, json, data]);
}

/** Splits the tiny Llama's single file into two shards plus an index, as `save_pretrained` does for big models. */
function shardedCopy(): string {
  // Named like the fixture so general.name, and so the whole file, can match.
  const target = join(tempDir(), "tiny-llama");
  cpSync(TINY_LLAMA, target, { recursive: true });
  const bytes = readFileSync(join(target, "model.safetensors"));
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString()) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  delete (header as Record<string, unknown>)["__metadata__"];
  const names = Object.keys(header);
  const halves = [names.slice(0, names.length / 2), names.slice(names.length / 2)];
  const weightMap: Record<string, string> = {};
  halves.forEach((part, i) => {
    const file = `model-0000${i + 1}-of-00002.safetensors`;
    const shardHeader: Record<string, unknown> = {};
    const chunks: Buffer[] = [];
    let offset = 0;
    for (const name of part) {
      const { dtype, shape, data_offsets: [begin, end] } = header[name]!;
      chunks.push(bytes.subarray(8 + headerLength + begin, 8 + headerLength + end));
      shardHeader[name] = { dtype, shape, data_offsets: [offset, offset + end - begin] };
      offset += end - begin;
      weightMap[name] = file;
    }
    writeFileSync(join(target, file), safetensorsBytes(shardHeader, Buffer.concat(chunks)));
  });
  rmSync(join(target, "model.safetensors"));
  writeFileSync(join(target, "model.safetensors.index.json"), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  return target;
}

describe("sharded checkpoints read exactly like single files", () => {
  it("a two-shard copy converts to a byte-identical GGUF", async () => {
    const scheme = resolveScheme({ scheme: "f16" });
    const single = join(dir, "single.gguf");
    const sharded = join(dir, "sharded.gguf");
    await convertToGguf({ source: TINY_LLAMA, output: single, scheme });
    await convertToGguf({ source: shardedCopy(), output: sharded, scheme });
    expect(readFileSync(sharded).equals(readFileSync(single))).toBe(true);
  });

  it("a .safetensors file can be given directly; its folder supplies config and tokenizer", async () => {
    const checkpoint = await openCheckpoint(join(TINY_LLAMA, "model.safetensors"));
    expect(checkpoint.tensors.size).toBe(57);
    expect(checkpoint.config["model_type"]).toBe("llama");
    await checkpoint.close();
  });
});

describe("the safetensors header parser accepts valid files and rejects anything else with a UserError", () => {
  const dtypeBytes = { F32: 4, F16: 2, BF16: 2 } as const;
  const tensorSpec = fc.record({
    dtype: fc.constantFrom("F32", "F16", "BF16") as fc.Arbitrary<keyof typeof dtypeBytes>,
    shape: fc.array(fc.integer({ min: 0, max: 6 }), { maxLength: 3 }),
  });

  it("property: any valid header round-trips names, dtypes, shapes and data", async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.dictionary(fc.string({ minLength: 1, maxLength: 12 }).filter((s) => s !== "__metadata__"), tensorSpec, { maxKeys: 6 }), async (specs) => {
        // Null prototype: a tensor may be called "__proto__" or "constructor".
        const header: Record<string, unknown> = Object.create(null);
        const chunks: Buffer[] = [];
        let offset = 0;
        for (const [name, { dtype, shape }] of Object.entries(specs)) {
          const bytes = shape.reduce((a, b) => a * b, 1) * dtypeBytes[dtype];
          header[name] = { dtype, shape, data_offsets: [offset, offset + bytes] };
          chunks.push(Buffer.alloc(bytes, name.length));
          offset += bytes;
        }
        const path = join(dir, `valid-${n++}.safetensors`);
        writeFileSync(path, safetensorsBytes(header, Buffer.concat(chunks)));
        const file = await SafetensorsFile.open(path);
        try {
          expect([...file.tensors.keys()].sort()).toEqual(Object.keys(specs).sort());
          for (const [name, { dtype, shape }] of Object.entries(specs)) {
            expect(file.tensors.get(name)).toMatchObject({ dtype, shape });
            expect((await file.read(name)).every((b) => b === name.length)).toBe(true);
          }
        } finally {
          await file.close();
        }
      }),
      { numRuns: 300 },
    );
  });

  it("property: corrupting any byte of the header or truncating the file never crashes the parser", async () => {
    const valid = safetensorsBytes({ a: { dtype: "F32", shape: [2, 3], data_offsets: [0, 24] }, b: { dtype: "BF16", shape: [4], data_offsets: [24, 32] } }, Buffer.alloc(32));
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: valid.length - 1 }), fc.integer({ min: 0, max: 255 }), fc.boolean(), async (position, value, truncate) => {
        const corrupted = Buffer.from(valid);
        corrupted[position] = value;
        const path = join(dir, `corrupt-${n++}.safetensors`);
        writeFileSync(path, truncate ? corrupted.subarray(0, position) : corrupted);
        try {
          await (await SafetensorsFile.open(path)).close();
        } catch (error) {
          expect(error).toBeInstanceOf(UserError);
          expect((error as Error).message).toContain(path);
        }
      }),
      { numRuns: 300 },
    );
  });
});
