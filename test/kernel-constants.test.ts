// The block constants compiled into the WASM kernels (the size-asserted #[repr(C)] structs in
// kernels/src/blocks.rs, exported as eq_block_size / eq_block_bytes) against the ggml type
// table @huggingface/gguf ships (GGML_QUANT_SIZES, bits per weight), against the TS tables
// that size rows (ggml-types.ts, kernels.ts), and against ggml itself when its library is
// available.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, test } from "vitest";
import { GgmlType, blockSize, ggmlTypeName, rowBytes } from "../src/quant/ggml-types.js";
import { KERNEL_TYPES, quantizeRows, quantizedSize } from "../src/quant/kernels.js";

const WASM_URL = new URL("../wasm/edgequant_kernels.wasm", import.meta.url);
import { requireGgml } from "./support/ggml-oracle.js";

interface TableExports {
  eq_block_size(type: number): number;
  eq_block_bytes(type: number): number;
  eq_type_count(): number;
  eq_type_at(index: number): number;
}

/** A fresh instance, so the test reads the module's own table rather than kernels.ts's. */
function moduleTable(): { readonly type: GgmlType; readonly block: number; readonly bytes: number }[] {
  const k = new WebAssembly.Instance(new WebAssembly.Module(readFileSync(WASM_URL)), {}).exports as unknown as TableExports;
  return Array.from({ length: k.eq_type_count() }, (_, i) => {
    const type = (k.eq_type_at(i) >>> 0) as GgmlType;
    return { type, block: k.eq_block_size(type), bytes: k.eq_block_bytes(type) };
  });
}

/**
 * GGML_QUANT_SIZES from @huggingface/gguf. Version 0.4.6 defines it in its ESM chunk but
 * leaves it out of the package's entry points, so it is read from the chunk the entry
 * imports when the public export is missing.
 */
async function ggmlQuantSizes(): Promise<Record<number, number>> {
  const entry = (await import("@huggingface/gguf")) as Record<string, unknown>;
  if (entry["GGML_QUANT_SIZES"]) return entry["GGML_QUANT_SIZES"] as Record<number, number>;
  const dist = dirname(createRequire(import.meta.url).resolve("@huggingface/gguf"));
  const esm = readFileSync(join(dist, "index.mjs"), "utf8");
  for (const [, chunk] of esm.matchAll(/from "\.\/([^"]+\.mjs)"/g)) {
    const module = (await import(pathToFileURL(join(dist, chunk!)).href)) as Record<string, unknown>;
    if (module["GGML_QUANT_SIZES"]) return module["GGML_QUANT_SIZES"] as Record<number, number>;
  }
  throw new Error(`GGML_QUANT_SIZES not found in @huggingface/gguf (${dist})`);
}

const table = moduleTable();
const sizes = await ggmlQuantSizes();
// ggml's own traits are the oracle: without the library the suite fails, naming it.
const oracle = requireGgml();

describe("WASM kernel block constants", () => {
  test("the module implements exactly the types kernels.ts sends it", () => {
    const ours = [...KERNEL_TYPES, GgmlType.F16, GgmlType.BF16].sort((a, b) => a - b);
    expect(table.map((t) => t.type).sort((a, b) => a - b)).toEqual(ours);
    expect(new Set(table.map((t) => t.type)).size).toBe(table.length);
  });

  for (const { type, block, bytes } of table) {
    const name = ggmlTypeName(type);

    test(`${name}: ${block} elements in ${bytes} bytes, as GGML_QUANT_SIZES and the TS tables have it`, () => {
      expect(sizes[type], `GGML_QUANT_SIZES has no ${name}`).toBeDefined();
      expect((bytes * 8) / block).toBe(sizes[type]);
      expect(blockSize(type)).toBe(block);
      expect(rowBytes(type, block)).toBe(bytes);
      expect(KERNEL_TYPES.includes(type) || block === 1).toBe(true);
      expect(quantizedSize(type, 4 * block, block)).toBe(4 * bytes);
      expect(quantizeRows(type, new Float32Array(4 * block), block).length).toBe(4 * bytes);
    });

    test(`${name}: equals ggml's own blck_size and type_size`, () => {
      expect(oracle.typeName(type).toLowerCase()).toBe(name.toLowerCase());
      expect(oracle.blockSize(type)).toBe(block);
      expect(oracle.typeSize(type)).toBe(bytes);
    });
  }
});
