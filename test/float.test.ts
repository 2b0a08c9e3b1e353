import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeFloats, encodeFloats, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from "../src/quant/float.js";

/** Every finite float32, drawn by bit pattern so subnormals, huge values and ties all occur. */
const anyFloat32 = fc.integer({ min: 0, max: 0xffffffff }).map((bits) => new Float32Array(new Uint32Array([bits]).buffer)[0]!);

describe("F32 -> F16 rounds to the nearest half, ties to even (as F16C and ggml do)", () => {
  it("no other half is closer, and exact ties pick the even mantissa", () => {
    fc.assert(
      fc.property(anyFloat32, (x) => {
        const h = f32ToF16Bits(x);
        const y = f16BitsToF32(h);
        if (Number.isNaN(x)) return Number.isNaN(y);
        if (Math.abs(x) >= 65520) return y === Math.sign(x) * Infinity; // beyond the largest half's rounding boundary
        const error = Math.abs(y - x);
        for (const neighbour of [h - 1, h + 1]) {
          if ((neighbour & 0x7fff) > 0x7bff || neighbour < 0 || (neighbour & 0x8000) !== (h & 0x8000)) continue;
          const other = Math.abs(f16BitsToF32(neighbour) - x);
          if (other < error) return false;
          if (other === error && (h & 1) === 1) return false;
        }
        return true;
      }),
      { numRuns: 200_000 },
    );
  });

  it("every half converts back to itself through float32", () => {
    for (let h = 0; h < 0x10000; h++) {
      if ((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0) continue; // NaN payloads are canonicalised
      expect(f32ToF16Bits(f16BitsToF32(h))).toBe(h);
    }
  });
});

describe("F32 -> BF16 matches ggml_compute_fp32_to_bf16", () => {
  it("rounds to nearest even on the top 16 bits and keeps NaN quiet", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), (bits) => {
        const x = new Float32Array(new Uint32Array([bits]).buffer)[0]!;
        const b = f32ToBf16Bits(x);
        if ((bits & 0x7fffffff) > 0x7f800000) return b === (((bits >>> 16) | 64) & 0xffff);
        const upper = bits >>> 16;
        const lower = bits & 0xffff;
        const expected = lower > 0x8000 || (lower === 0x8000 && (upper & 1) === 1) ? (upper + 1) & 0xffff : upper;
        return b === expected;
      }),
      { numRuns: 200_000 },
    );
  });
});

describe("tensor byte encoding round-trips", () => {
  it("BF16 and F16 bytes decode and re-encode to the same bytes", () => {
    fc.assert(
      fc.property(fc.uint16Array({ minLength: 1, maxLength: 300 }), fc.constantFrom("F16" as const, "BF16" as const), (halves, dtype) => {
        const mask = dtype === "F16" ? 0x7c00 : 0x7f80;
        const finite = halves.map((h) => ((h & mask) === mask ? h & ~0x4000 : h));
        const bytes = new Uint8Array(finite.buffer);
        expect(encodeFloats(decodeFloats(bytes, dtype), dtype)).toEqual(bytes);
      }),
    );
  });

  it("decodes from an unaligned, pooled Buffer slice", () => {
    const pool = Buffer.alloc(64);
    pool.writeFloatLE(1.5, 3);
    pool.writeFloatLE(-2.25, 7);
    expect([...decodeFloats(pool.subarray(3, 11), "F32")]).toEqual([1.5, -2.25]);
  });
});
