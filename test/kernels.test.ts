// The WASM quantization kernels against ggml itself (libggml-base through koffi): same bytes
// as ggml_quantize_chunk(imatrix = NULL), same floats as ggml's to_float, on property-generated
// rows covering the paths ggml special-cases (zero groups, constant rows, outliers, subnormal
// and near-overflow scales, rounding ties, signed zeros, NaN/Inf).

import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { GgmlType, ggmlTypeName } from "../src/quant/ggml-types.js";
import { KERNEL_TYPES, dequantizeRows, f32ToBf16, f32ToF16, quantizeRows } from "../src/quant/kernels.js";
import { KernelPool } from "../src/quant/pool.js";
import { requireGgml, type GgmlOracle } from "./support/ggml-oracle.js";

// Without ggml this suite has nothing to compare against: it fails here, naming the missing library.
const ggml: GgmlOracle = requireGgml();

const BLOCK: Record<number, number> = {
  [GgmlType.Q4_0]: 32, [GgmlType.Q4_1]: 32, [GgmlType.Q5_0]: 32, [GgmlType.Q5_1]: 32, [GgmlType.Q8_0]: 32,
  [GgmlType.Q2_K]: 256, [GgmlType.Q3_K]: 256, [GgmlType.Q4_K]: 256, [GgmlType.Q5_K]: 256, [GgmlType.Q6_K]: 256,
  [GgmlType.TQ1_0]: 256, [GgmlType.TQ2_0]: 256,
};
const blockOf = (type: GgmlType): number => BLOCK[type] ?? 1;

/** Blocks compared per type in one run; every quantized type must reach MIN_BLOCKS. */
const MIN_BLOCKS = 10_000;
const BLOCKS_PER_CASE = 128;
/** EDGEQUANT_KERNEL_SOAK=N multiplies the property runs for a longer hunt. */
const SOAK = Math.max(1, Number(process.env["EDGEQUANT_KERNEL_SOAK"] ?? 1) || 1);
const RUNS = (Math.ceil(MIN_BLOCKS / BLOCKS_PER_CASE) + 10) * SOAK;

// ---------------------------------------------------------------------------------------
// Input generation: fast-check picks the recipe, a seeded PRNG fills the floats (fast, and
// the recipe shrinks).

const KINDS = [
  "normal", "uniform", "positive", "negative", "zeros", "signedZeros", "constant", "outliers",
  "subnormal", "tiny", "huge", "smallInts", "halves", "sparse", "nonFinite",
] as const;
type Kind = (typeof KINDS)[number];

interface Recipe {
  readonly seed: number;
  readonly kinds: readonly Kind[];
  /** Decimal exponent of the typical magnitude. */
  readonly exponent: number;
  /** Per-segment exponent jitter. */
  readonly spread: number;
  /** Elements per kind segment (sub-block sized or larger, so K-quant groups differ). */
  readonly segment: number;
}

const recipeArb = (kinds: readonly Kind[] = KINDS): fc.Arbitrary<Recipe> =>
  fc.record({
    seed: fc.integer({ min: 0, max: 0x7fffffff }),
    kinds: fc.uniqueArray(fc.constantFrom(...kinds), { minLength: 1, maxLength: 4 }),
    exponent: fc.integer({ min: -44, max: 37 }),
    spread: fc.integer({ min: 0, max: 8 }),
    segment: fc.constantFrom(16, 32, 64, 256, 1024),
  });

function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    // mulberry32
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function fill(recipe: Recipe, count: number): Float32Array {
  const out = new Float32Array(count);
  const rnd = prng(recipe.seed);
  const gauss = (): number => Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
  for (let start = 0; start < count; start += recipe.segment) {
    const end = Math.min(count, start + recipe.segment);
    const kind = recipe.kinds[Math.floor(rnd() * recipe.kinds.length)]!;
    const e = recipe.exponent + Math.round((rnd() * 2 - 1) * recipe.spread);
    const scale = Math.min(3e38, 10 ** Math.max(-45, Math.min(38, e)));
    const c = (rnd() < 0.5 ? -1 : 1) * scale * (0.5 + rnd());
    for (let i = start; i < end; i++) out[i] = value(kind, scale, c, rnd, gauss);
    if (kind === "outliers") {
      for (let k = 1 + Math.floor(rnd() * 3); k > 0; k--) out[start + Math.floor(rnd() * (end - start))] = (rnd() < 0.5 ? -1 : 1) * scale * 10 ** (2 + rnd() * 5);
    }
    if (kind === "nonFinite") {
      for (let k = 1 + Math.floor(rnd() * 3); k > 0; k--) out[start + Math.floor(rnd() * (end - start))] = [Number.NaN, Infinity, -Infinity][Math.floor(rnd() * 3)]!;
    }
  }
  return out;
}

function value(kind: Kind, scale: number, c: number, rnd: () => number, gauss: () => number): number {
  switch (kind) {
    case "normal": case "outliers": case "nonFinite": return gauss() * scale;
    case "uniform": return (rnd() * 2 - 1) * scale;
    case "positive": return (0.1 + rnd()) * scale;
    case "negative": return -(0.1 + rnd()) * scale;
    case "zeros": return 0;
    case "signedZeros": return rnd() < 0.5 ? -0 : 0;
    case "constant": return c;
    case "subnormal": return (rnd() * 2 - 1) * 1.1754942e-38 * 10 ** (-rnd() * 7);
    case "tiny": return gauss() * 1e-38 * 10 ** (-rnd() * 6);
    case "huge": return (rnd() * 2 - 1) * 3.4e38;
    case "smallInts": return Math.round((rnd() * 2 - 1) * 8) * 2 ** Math.round(Math.log2(scale) || 0);
    case "halves": return (Math.round((rnd() * 2 - 1) * 64) / 2) * 2 ** Math.round(Math.log2(scale) || 0);
    case "sparse": return rnd() < 0.9 ? 0 : gauss() * scale;
  }
}

// ---------------------------------------------------------------------------------------
// Comparison helpers: report the first differing block, never just "not equal".

function firstByteMismatch(ours: Uint8Array, theirs: Uint8Array, blockBytes: number): string | undefined {
  if (ours.length !== theirs.length) return `length ${ours.length} vs ggml ${theirs.length}`;
  for (let i = 0; i < ours.length; i++) {
    if (ours[i] !== theirs[i]) {
      const b = Math.floor(i / blockBytes);
      const slice = (a: Uint8Array): string => Array.from(a.subarray(b * blockBytes, (b + 1) * blockBytes)).join(",");
      return `block ${b}, byte ${i - b * blockBytes}:\n ours [${slice(ours)}]\n ggml [${slice(theirs)}]`;
    }
  }
  return undefined;
}

/** Bitwise comparison of floats (NaN payloads and signed zeros count). */
function firstFloatMismatch(ours: Float32Array, theirs: Float32Array): string | undefined {
  if (ours.length !== theirs.length) return `length ${ours.length} vs ggml ${theirs.length}`;
  const a = new Uint32Array(ours.buffer, ours.byteOffset, ours.length);
  const b = new Uint32Array(theirs.buffer, theirs.byteOffset, theirs.length);
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) return `element ${i}: ours ${ours[i]} (0x${a[i]!.toString(16)}) vs ggml ${theirs[i]} (0x${b[i]!.toString(16)})`;
  }
  return undefined;
}

function firstHalfMismatch(ours: Uint16Array, theirs: Uint16Array, input: Float32Array): string | undefined {
  for (let i = 0; i < ours.length; i++) {
    if (ours[i] !== theirs[i]) return `element ${i} (${input[i]}): ours 0x${ours[i]!.toString(16)} vs ggml 0x${theirs[i]!.toString(16)}`;
  }
  return ours.length === theirs.length ? undefined : "length differs";
}

const rowShapes = (type: GgmlType): fc.Arbitrary<number> => fc.constantFrom(1, 2, 4, 8, 16, 32, 64, 128).map((blocksPerRow) => blocksPerRow * blockOf(type));

// ---------------------------------------------------------------------------------------

describe("quantization kernels vs ggml (libggml-base)", () => {
  test("ggml's type enum and layouts line up with ours", () => {
    for (const type of KERNEL_TYPES) {
      expect(ggml.typeName(type).toLowerCase()).toBe(ggmlTypeName(type).toLowerCase());
      expect(quantizeRows(type, new Float32Array(blockOf(type)), blockOf(type)).length).toBe(ggml.rowSize(type, blockOf(type)));
    }
  });

  for (const type of KERNEL_TYPES) {
    const name = ggmlTypeName(type);
    const blockBytes = (): number => ggml.rowSize(type, blockOf(type));

    test(`${name}: bytes and dequantized floats equal ggml's on generated rows`, () => {
      let blocks = 0;
      fc.assert(
        fc.property(recipeArb(), rowShapes(type), (recipe, rowLength) => {
          const values = fill(recipe, BLOCKS_PER_CASE * blockOf(type));
          const ours = quantizeRows(type, values, rowLength);
          const theirs = ggml.quantize(type, values, rowLength);
          const bytesDiffer = firstByteMismatch(ours, theirs, blockBytes());
          if (bytesDiffer) throw new Error(`${name} quantization differs from ggml at ${bytesDiffer}`);
          const floatsDiffer = firstFloatMismatch(dequantizeRows(type, theirs, values.length), ggml.dequantize(type, theirs, values.length));
          if (floatsDiffer) throw new Error(`${name} dequantization differs from ggml at ${floatsDiffer}`);
          blocks += values.length / blockOf(type);
        }),
        { numRuns: RUNS },
      );
      expect(blocks).toBeGreaterThanOrEqual(MIN_BLOCKS);
      console.log(`${name}: ${blocks} blocks quantized and dequantized, 0 mismatches`);
    });

    test(`${name}: dequantizing arbitrary bytes (any fp16 scale, NaN and Inf included) equals ggml's to_float`, () => {
      let blocks = 0;
      fc.assert(
        fc.property(fc.integer({ min: 0, max: 0x7fffffff }), (seed) => {
          const rnd = prng(seed);
          const bytes = new Uint8Array(BLOCKS_PER_CASE * blockBytes()).map(() => Math.floor(rnd() * 256));
          const count = BLOCKS_PER_CASE * blockOf(type);
          const differ = firstFloatMismatch(dequantizeRows(type, bytes, count), ggml.dequantize(type, bytes, count));
          if (differ) throw new Error(`${name} dequantization of random bytes differs at ${differ}`);
          blocks += BLOCKS_PER_CASE;
        }),
        { numRuns: RUNS },
      );
      expect(blocks).toBeGreaterThanOrEqual(MIN_BLOCKS);
    });

    test(`${name}: hand-picked edge rows`, () => {
      const n = blockOf(type);
      const rows: Float32Array[] = [];
      const row = (f: (i: number) => number): void => void rows.push(Float32Array.from({ length: n }, (_, i) => f(i)));
      row(() => 0);
      row(() => -0);
      row((i) => (i === 0 ? -0 : 0));
      row((i) => (i === n - 1 ? -0 : 0));
      row(() => 1);
      row(() => -3.5);
      row(() => 1e-45);
      row(() => -1.1754942e-38);
      row(() => 3.4028235e38);
      row(() => -3.4028235e38);
      row((i) => (i % 2 ? 3.4028235e38 : -3.4028235e38));
      row((i) => (i === 7 ? 1 : 0));
      row((i) => (i === 7 ? -1 : 0));
      row((i) => (i === 3 ? -2 : i === 9 ? 2 : 0.5)); // |max| tie with opposite signs: the first wins
      row((i) => (i === 3 ? 2 : i === 9 ? -2 : 0.5));
      row((i) => (i % 17) - 8);
      row((i) => ((i % 33) - 16) / 2);
      row((i) => ((i * 7) % 64) - 32);
      row((i) => (i < n / 2 ? 0 : (i % 5) - 2));
      row((i) => (i === 5 ? 1e30 : Math.sin(i) * 1e-3));
      row((i) => (i === 5 ? Number.NaN : Math.sin(i)));
      row((i) => (i === 0 ? Number.NaN : Math.sin(i)));
      row((i) => (i === n - 1 ? Number.NaN : Math.sin(i)));
      row((i) => (i === 5 ? Infinity : Math.sin(i)));
      row((i) => (i === 5 ? -Infinity : Math.sin(i)));
      row((i) => (i === 1 ? Infinity : i === 2 ? -Infinity : 0));
      row(() => Number.NaN);
      row(() => Infinity);
      row((i) => Math.sin(i) * 1e-40);
      row((i) => Math.sin(i) * 2e-39);
      row((i) => Math.sin(i) * 3e-39);
      row((i) => 1 + i * 2 ** -20);
      const values = new Float32Array(rows.length * n);
      rows.forEach((r, i) => values.set(r, i * n));
      const theirs = ggml.quantize(type, values, n);
      const differ = firstByteMismatch(quantizeRows(type, values, n), theirs, blockBytes());
      if (differ) throw new Error(`${name} differs from ggml on edge rows at ${differ}`);
      expect(firstFloatMismatch(dequantizeRows(type, theirs, values.length), ggml.dequantize(type, theirs, values.length))).toBeUndefined();
    });
  }

  test("F16 and BF16: row conversion equals ggml's on arbitrary float bit patterns", () => {
    let elements = 0;
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0x7fffffff }), recipeArb(), (seed, recipe) => {
        const rnd = prng(seed);
        const bits = new Uint32Array(2048).map(() => Math.floor(rnd() * 4294967296));
        const values = new Float32Array(bits.buffer);
        values.set(fill(recipe, 1024), 1024); // half raw bit patterns, half realistic values
        for (const [ours, theirs, chunk] of [
          [f32ToF16(values), ggml.f32ToF16(values), ggml.quantize(GgmlType.F16, values, values.length)],
          [f32ToBf16(values), ggml.f32ToBf16(values), ggml.quantize(GgmlType.BF16, values, values.length)],
        ] as const) {
          const differ = firstHalfMismatch(ours, theirs, values) ?? firstHalfMismatch(ours, new Uint16Array(chunk.buffer), values);
          if (differ) throw new Error(differ);
        }
        elements += values.length;
      }),
      { numRuns: 20 },
    );
    expect(elements).toBeGreaterThanOrEqual(MIN_BLOCKS);
  });

  test("F16 and BF16: every one of the 65536 halves converts back to ggml's float", () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const bytes = new Uint8Array(all.buffer);
    for (const type of [GgmlType.F16, GgmlType.BF16]) {
      expect(firstFloatMismatch(dequantizeRows(type, bytes, 65536), ggml.dequantize(type, bytes, 65536))).toBeUndefined();
    }
  });
});

describe("quantization kernels: chunking and API", () => {
  test("bytes do not depend on how rows are chunked or split across calls", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...KERNEL_TYPES, GgmlType.F16, GgmlType.BF16),
        recipeArb(KINDS.filter((k) => k !== "nonFinite")),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 9 }),
        fc.integer({ min: 1, max: 5 }),
        (type, recipe, blocksPerRow, rows, rowsPerCall) => {
          const rowLength = blocksPerRow * blockOf(type);
          const values = fill(recipe, rows * rowLength);
          const whole = quantizeRows(type, values, rowLength);
          expect(quantizeRows(type, values, rowLength, { chunkElements: rowLength })).toEqual(whole);
          expect(quantizeRows(type, values, rowLength, { chunkElements: rowsPerCall * rowLength + 1 })).toEqual(whole);
          const parts: Uint8Array[] = [];
          for (let r = 0; r < rows; r += rowsPerCall) parts.push(quantizeRows(type, values.subarray(r * rowLength, Math.min(rows, r + rowsPerCall) * rowLength), rowLength));
          expect(Buffer.concat(parts)).toEqual(Buffer.from(whole));
          const back = dequantizeRows(type, whole, values.length);
          expect(dequantizeRows(type, whole, values.length, { chunkElements: blockOf(type) })).toEqual(back);
        },
      ),
      { numRuns: 60 },
    );
  });

  test("inputs larger than the WASM memory grow it and still match the chunked result", () => {
    const rowLength = 4096;
    const values = fill({ seed: 7, kinds: ["normal", "outliers"], exponent: -2, spread: 2, segment: 256 }, rowLength * 2048); // 32 MiB of f32
    const big = quantizeRows(GgmlType.Q4_K, values, rowLength, { chunkElements: values.length });
    expect(big).toEqual(quantizeRows(GgmlType.Q4_K, values, rowLength));
    expect(dequantizeRows(GgmlType.Q8_0, quantizeRows(GgmlType.Q8_0, values, rowLength), values.length).length).toBe(values.length);
  });

  test("the worker pool's bytes do not depend on the thread count", async () => {
    const rowLength = 1024;
    const values = fill({ seed: 11, kinds: ["normal", "outliers", "zeros", "tiny"], exponent: -2, spread: 6, segment: 64 }, rowLength * 37);
    const types = [GgmlType.Q4_K, GgmlType.Q8_0, GgmlType.Q3_K, GgmlType.TQ1_0];
    const single = types.map((type) => quantizeRows(type, values, rowLength));
    for (const threads of [1, 2, 3]) {
      const pool = new KernelPool({ threads });
      try {
        for (const [i, type] of types.entries()) {
          expect(Buffer.from(await pool.quantizeRows(type, values, rowLength)).equals(Buffer.from(single[i]!))).toBe(true);
        }
      } finally {
        await pool.destroy();
      }
    }
    types.forEach((type, i) => expect(Buffer.from(single[i]!).equals(Buffer.from(ggml.quantize(type, values, rowLength)))).toBe(true));
  });

  test("rejects rows that are not whole blocks, ragged inputs and types without a kernel", () => {
    expect(() => quantizeRows(GgmlType.Q4_K, new Float32Array(128), 128)).toThrow(/block size/);
    expect(() => quantizeRows(GgmlType.Q8_0, new Float32Array(48), 32)).toThrow(/whole number of rows/);
    expect(() => quantizeRows(GgmlType.IQ2_XXS, new Float32Array(256), 256)).toThrow();
    expect(() => dequantizeRows(GgmlType.Q8_0, new Uint8Array(33), 32)).toThrow(/34 bytes/);
    expect(quantizeRows(GgmlType.Q6_K, new Float32Array(0), 256).length).toBe(0);
  });
});
