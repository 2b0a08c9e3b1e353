// MatMulNBits packing of src/writers/onnx/nbits.ts, without onnxruntime: the generic quantizer
// against the ggml-kernel path, and the codes decoded by the spec-written unpacker of
// test/support/matmul-nbits.ts (never by src/'s own dequantizer).

import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { quantizeNBits, type NBitsLayout, type NBitsMethod } from "../src/writers/onnx/nbits.js";
import { unpackNBits } from "./support/matmul-nbits.js";

describe("MatMulNBits packing", () => {
  const rowsOf = (k: number) => fc.array(fc.float({ min: -4, max: 4, noNaN: true }), { minLength: k * 3, maxLength: k * 3 }).map((a) => Float32Array.from(a));

  test.each([["q4_0", 4], ["q8_0", 8]] as const)("%s: the generic path equals the ggml kernel re-packed (blocks of 32)", (kind, bits) => {
    const layout: NBitsLayout = { bits, blockSize: 32, k: 64, n: 3 };
    fc.assert(
      fc.property(rowsOf(64), (values) => {
        const method: NBitsMethod = { kind };
        const kernel = quantizeNBits(values, layout, method);
        const generic = quantizeNBits(values, layout, method, { forceGeneric: true });
        expect(Buffer.from(generic.data).equals(Buffer.from(kernel.data))).toBe(true);
        expect(generic.scales).toEqual(kernel.scales);
      }),
      { numRuns: 200 },
    );
  });

  test("ternary 2-bit codes with zero point 1 reproduce {-s, 0, +s} exactly, any block size and ragged K", () => {
    for (const [blockSize, k] of [[16, 40], [32, 96], [128, 200]] as const) {
      const s = 0.0371;
      const values = Float32Array.from({ length: 5 * k }, (_, i) => [Math.fround(-s), 0, Math.fround(s)][(i * 7 + (i >> 3)) % 3]!);
      const layout: NBitsLayout = { bits: 2, blockSize, k, n: 5 };
      const q = quantizeNBits(values, layout, { kind: "ternary", scale: Math.fround(s) });
      expect(q.zeroPoints).toBeDefined();
      // decoded by the spec-written unpacker of test/support, not by src/'s own dequantizer
      expect(unpackNBits(layout, q.data, q.scales, q.zeroPoints)).toEqual(values);
    }
  });

  test("4-bit blocks of 64 and 128 keep Q4_0's error bound (|w - w'| <= d, and <= d/2 below 7.5 d)", () => {
    for (const blockSize of [64, 128]) {
      const layout: NBitsLayout = { bits: 4, blockSize, k: 256, n: 4 };
      const values = Float32Array.from({ length: 4 * 256 }, (_, i) => Math.sin(i * 12.9898) * (1 + (i % 17)));
      const q = quantizeNBits(values, layout, { kind: "q4_0" });
      const back = unpackNBits(layout, q.data, q.scales);
      for (let i = 0; i < values.length; i++) {
        const signed = q.scales[Math.floor(i / blockSize)]!;
        const d = Math.abs(signed);
        // fp16 rounding of d moves codes by at most a hair; the top code (7 d) caps positive values.
        const bound = values[i]! / signed > 7.4 ? d * 1.01 : d * 0.51;
        expect(Math.abs(values[i]! - back[i]!)).toBeLessThanOrEqual(bound + 1e-6);
      }
    }
  });
});

describe("the test unpacker (checked against onnxruntime in onnx-quantized.test.ts) on hand-packed bytes", () => {
  test("4-bit: low nibble first, default zero point 8, last block of a ragged row cut at K", () => {
    // one row, K = 40 in blocks of 32: codes 0..15,15..0 then 8 codes in a second block
    const codes = [...Array.from({ length: 16 }, (_, i) => i), ...Array.from({ length: 16 }, (_, i) => 15 - i), 0, 1, 2, 3, 12, 13, 14, 15];
    const b = new Uint8Array(32);
    codes.forEach((c, i) => (b[Math.floor(i / 32) * 16 + ((i % 32) >> 1)]! |= c << (4 * (i % 2))));
    expect(b[0]).toBe(0x10); // elements 0 (low) and 1 (high)
    const values = unpackNBits({ n: 1, k: 40, bits: 4, blockSize: 32 }, b, Float32Array.from([0.5, -2]));
    expect(Array.from(values)).toEqual(codes.map((c, i) => (c - 8) * (i < 32 ? 0.5 : -2)));
  });

  test("2-bit with packed zero points, and 8-bit with the default 128", () => {
    // two rows of K = 16 in blocks of 8: zero points 1, 2 | 3, 0 packed two bits each, low first
    const b = Uint8Array.from([0b11100100, 0b00011011, 0, 0xff, 0x55, 0xaa, 0b01010101, 0]);
    const zeroPoints = Uint8Array.from([1 | (2 << 2), 3]);
    const values = unpackNBits({ n: 2, k: 16, bits: 2, blockSize: 8 }, b, Float32Array.from([1, 10, 100, 1000]), zeroPoints);
    expect(Array.from(values.subarray(0, 8))).toEqual([0, 1, 2, 3, 3, 2, 1, 0].map((c) => c - 1));
    expect(Array.from(values.subarray(8, 16))).toEqual([0, 0, 0, 0, 3, 3, 3, 3].map((c) => (c - 2) * 10));
    expect(Array.from(values.subarray(16, 24))).toEqual([1, 1, 1, 1, 2, 2, 2, 2].map((c) => (c - 3) * 100));
    expect(Array.from(values.subarray(24, 32))).toEqual([1, 1, 1, 1, 0, 0, 0, 0].map((c) => c * 1000));
    expect(Array.from(unpackNBits({ n: 1, k: 4, bits: 8, blockSize: 4 }, Uint8Array.from([0, 127, 128, 255]), Float32Array.from([0.25])))).toEqual([-32, -0.25, 0, 31.75]);
  });
});
