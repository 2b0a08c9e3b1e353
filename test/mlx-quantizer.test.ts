// Acceptance 1 and 2 of the MLX writer: our affine quantizer and packer against an
// independent model of MLX's CPU kernel (test/support/mlx-reference.ts, written from
// mlx/backend/cpu/quantized.cpp `quantize`), bit for bit.

import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { encodeFloats } from "../src/quant/float.js";
import { affineQuantize, type MlxBits } from "../src/writers/mlx/affine.js";
import { packBits, packedWords, unpackBits } from "../src/writers/mlx/pack.js";
import { castTo, dtypeBits, referencePack, referenceQuantizeGroup, referenceUnpack, rintEven, type ReferenceFloat } from "./support/mlx-reference.js";

const BITS: readonly MlxBits[] = [2, 3, 4, 5, 6, 8];
const DTYPES: readonly ReferenceFloat[] = ["F32", "F16", "BF16"];

/** What the property runs exercised, printed at the end for the report. */
const coverage = { groups: 0, nanGroups: 0, values: 0, ties: 0, minIsEdge: 0, maxIsEdge: 0, q0Zero: 0, epsFloor: 0, clamped: 0, allZero: 0, constant: 0, byDtype: { F32: 0, F16: 0, BF16: 0 } };

afterAll(() => {
  console.log(`[mlx-quantizer] agreements: ${JSON.stringify(coverage)}`);
});

interface Case {
  readonly dtype: ReferenceFloat;
  readonly bits: MlxBits;
  readonly values: number[];
}

/** Any finite value of `dtype`, by bit pattern (subnormals, huge values, both zeros). */
function anyFinite(dtype: ReferenceFloat): fc.Arbitrary<number> {
  if (dtype === "F32") {
    return fc.integer({ min: 0, max: 0xffffffff }).filter((b) => (b & 0x7f800000) !== 0x7f800000).map((b) => new Float32Array(new Uint32Array([b]).buffer)[0]!);
  }
  return fc.integer({ min: 0, max: 0xffff }).filter((b) => (dtype === "F16" ? (b & 0x7c00) !== 0x7c00 : (b & 0x7f80) !== 0x7f80)).map((b) =>
    dtype === "F16" ? castTo("F16", halfFromBits(b)) : new Float32Array(new Uint32Array([b << 16]).buffer)[0]!,
  );
}

function halfFromBits(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  return exponent === 0 ? sign * mantissa * 2 ** -24 : sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

const dtypeArb = fc.constantFrom(...DTYPES);
const bitsArb = fc.constantFrom(...BITS);
const groupSizeArb = fc.constantFrom(32, 64, 128);

/** Groups of a given shape, values cast to the dtype (they come from a tensor of that dtype). */
function groups(kind: (dtype: ReferenceFloat, size: number) => fc.Arbitrary<number[]>): fc.Arbitrary<Case> {
  return fc
    .tuple(dtypeArb, bitsArb, groupSizeArb)
    .chain(([dtype, bits, size]) => kind(dtype, size).map((values) => ({ dtype, bits, values: values.map((v) => castTo(dtype, v)) })));
}

/** Typical weights: a normal-ish spread at some magnitude, sometimes skewed negative or positive. */
const spread = groups((_dtype, size) =>
  fc
    .tuple(fc.integer({ min: -9, max: 3 }), fc.double({ min: -0.9, max: 0.9, noNaN: true }), fc.array(fc.double({ min: -1, max: 1, noNaN: true }), { minLength: size, maxLength: size }))
    .map(([exponent, skew, unit]) => unit.map((u) => (u + skew * Math.abs(u)) * 10 ** exponent)),
);

/** Small integers times a power of two: (w - bias) / scale lands exactly on .5 often. */
const grid = groups((_dtype, size) =>
  fc
    .tuple(fc.integer({ min: -12, max: 4 }), fc.integer({ min: 1, max: 40 }), fc.integer({ min: -40, max: 40 }))
    .chain(([exponent, width, offset]) =>
      fc.array(fc.integer({ min: -width, max: width }), { minLength: size, maxLength: size }).map((ks) => ks.map((k) => ((k + offset) / 2) * 2 ** exponent)),
    ),
);

/** Every value of the dtype, any magnitude. */
const raw = fc.tuple(dtypeArb, bitsArb, groupSizeArb).chain(([dtype, bits, size]) => fc.array(anyFinite(dtype), { minLength: size, maxLength: size }).map((values) => ({ dtype, bits, values })));

/** Near the 1e-7 floor on the scale: ranges below 1e-7 * (2^bits - 1), edges around 0.5e-7. */
const tiny = groups((_dtype, size) =>
  fc
    .tuple(fc.double({ min: -3e-7, max: 3e-7, noNaN: true }), fc.double({ min: 0, max: 2e-7, noNaN: true }))
    .chain(([centre, width]) => fc.array(fc.double({ min: -1, max: 1, noNaN: true }), { minLength: size, maxLength: size }).map((us) => us.map((u) => centre + u * width))),
);

/** All zeros, or one value repeated (the range is 0, so the scale is the 1e-7 floor). */
const flat = groups((dtype, size) => fc.oneof(fc.constant(0), anyFinite(dtype === "F32" ? "F16" : dtype)).map((c) => new Array<number>(size).fill(c)));

function check({ dtype, bits, values }: Case): void {
  const expected = referenceQuantizeGroup(values, bits);
  const out = { q: new Uint8Array(values.length), scales: new Float32Array(1), biases: new Float32Array(1) };
  const nan = affineQuantize(Float32Array.from(values), values.length, bits, out);
  expect(nan).toBe(expected.path.nan);
  expect(Array.from(out.q)).toEqual(expected.q);
  expect(Object.is(out.scales[0], expected.scale), `scale ${out.scales[0]} vs ${expected.scale}`).toBe(true);
  expect(Object.is(out.biases[0], expected.bias), `bias ${out.biases[0]} vs ${expected.bias}`).toBe(true);
  // Stored in the weight dtype (static_cast<T>), then packed.
  const scaleBytes = encodeFloats(out.scales, dtype);
  const biasBytes = encodeFloats(out.biases, dtype);
  const read = (bytes: Uint8Array) => (dtype === "F32" ? new DataView(bytes.buffer, bytes.byteOffset).getUint32(0, true) : new DataView(bytes.buffer, bytes.byteOffset).getUint16(0, true));
  expect(read(scaleBytes)).toBe(dtypeBits(dtype, expected.scale));
  expect(read(biasBytes)).toBe(dtypeBits(dtype, expected.bias));
  const words = new Uint32Array(packedWords(values.length, bits));
  packBits(out.q, bits, words);
  expect(Array.from(words)).toEqual(Array.from(referencePack(expected.q, bits)));

  coverage.groups++;
  coverage.values += values.length;
  coverage.byDtype[dtype]++;
  coverage.ties += expected.path.ties;
  if (expected.path.minIsEdge) coverage.minIsEdge++;
  else coverage.maxIsEdge++;
  if (expected.path.q0Zero) coverage.q0Zero++;
  if (expected.path.epsFloor) coverage.epsFloor++;
  coverage.clamped += expected.path.clamped;
  if (expected.path.nan > 0) coverage.nanGroups++;
  if (values.every((v) => v === 0)) coverage.allZero++;
  else if (values.every((v) => v === values[0])) coverage.constant++;
}

describe("MLX affine quantizer: ours equals an independent model of mlx/backend/cpu/quantized.cpp, bit for bit", () => {
  it("rint rounds half to even like std::rint", () => {
    const cases: [number, number][] = [[0.5, 0], [1.5, 2], [2.5, 2], [-0.5, -0], [-1.5, -2], [-2.5, -2], [3.4999, 3], [7.5, 8]];
    for (const [x, r] of cases) expect(Object.is(rintEven(x), r) || rintEven(x) === r).toBe(true);
    fc.assert(fc.property(fc.integer({ min: -1e6, max: 1e6 }), (k) => rintEven(k + 0.5) % 2 === 0 && rintEven(k + 0.25) === k && rintEven(k + 0.75) === k + 1));
  });

  it("typical weight groups, all bit widths, group sizes and source dtypes", () => {
    fc.assert(fc.property(spread, (c) => check(c)), { numRuns: 3000 });
  });

  it("grid-valued groups, where (w - bias) / scale ties at .5", () => {
    fc.assert(fc.property(grid, (c) => check(c)), { numRuns: 3000 });
  });

  it("arbitrary finite values of the dtype, any magnitude", () => {
    fc.assert(fc.property(raw, (c) => check(c)), { numRuns: 2000 });
  });

  it("tiny ranges at the 1e-7 floor on the scale, including the q0 = 0 branch", () => {
    fc.assert(fc.property(tiny, (c) => check(c)), { numRuns: 2000 });
  });

  it("all-zero and constant groups", () => {
    fc.assert(fc.property(flat, (c) => check(c)), { numRuns: 500 });
  });

  it("hand-picked edges: ties, |min| > |max|, q0 = 0", () => {
    const pad = (values: number[], size = 32) => [...values, ...new Array<number>(size - values.length).fill(values[0]!)];
    const cases: Case[] = [
      { dtype: "F32", bits: 2, values: pad([0, 1.5, 3]) }, // 1.5 -> exactly 1.5 on a 2-bit grid: tie to 2
      { dtype: "BF16", bits: 4, values: pad([-8, 1, 0.5, 2.5]) }, // |min| > |max|: min is exact
      { dtype: "F16", bits: 3, values: pad([castTo("F16", 3e-8), castTo("F16", -1e-8)]) }, // edge / 1e-7 rounds to 0
      { dtype: "F32", bits: 8, values: pad([0]) },
      { dtype: "BF16", bits: 6, values: pad([castTo("BF16", -0.0123)]) },
    ];
    for (const c of cases) check(c);
  });

  it("covered every path: ties, both edges, q0 = 0, the 1e-7 floor, clamping, zero and constant groups, each dtype", () => {
    for (const key of ["ties", "minIsEdge", "maxIsEdge", "q0Zero", "epsFloor", "allZero", "constant"] as const) expect(coverage[key], key).toBeGreaterThan(0);
    for (const dtype of DTYPES) expect(coverage.byDtype[dtype], dtype).toBeGreaterThan(100);
  });
});

describe("MLX packing: an independent reader gets the integers back from our uint32 words", () => {
  for (const bits of BITS) {
    it(`${bits}-bit rows (values cross word boundaries for 3, 5 and 6 bits)`, () => {
      let compared = 0;
      fc.assert(
        fc.property(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 3 }), fc.infiniteStream(fc.integer({ min: 0, max: 2 ** bits - 1 })), (rows, groupsOf32, stream) => {
          const count = rows * groupsOf32 * 32;
          const q = Uint8Array.from(stream.take(count));
          const words = new Uint32Array(packedWords(count, bits));
          packBits(q, bits, words);
          expect(words.length).toBe((count * bits) / 32);
          expect(referenceUnpack(words, bits, count)).toEqual(Array.from(q));
          expect(Array.from(unpackBits(words, bits, count))).toEqual(Array.from(q));
          expect(Array.from(words)).toEqual(Array.from(referencePack(Array.from(q), bits)));
          compared += count;
        }),
        { numRuns: 300 },
      );
      expect(compared).toBeGreaterThan(0);
    });
  }

  it("3-bit packs span 3 bytes, so the third value of a word straddles bytes and the 11th straddles words", () => {
    const q = Uint8Array.from({ length: 32 }, (_, i) => (i * 5 + 3) % 8);
    const words = new Uint32Array(3);
    packBits(q, 3, words);
    // value 10 occupies bits 30..32: its low two bits end word 0, its top bit starts word 1.
    expect((words[0]! >>> 30) | ((words[1]! & 1) << 2)).toBe(q[10]);
  });
});
