import type { FloatDtype } from "../readers/dtypes.js";

/**
 * Float conversions with the exact rounding ggml uses: round to nearest, ties
 * to even, NaN kept quiet. Byte-exact output matters because users compare
 * our files with llama.cpp's.
 */

const scratch = new DataView(new ArrayBuffer(4));

function f32Bits(value: number): number {
  scratch.setFloat32(0, value, true);
  return scratch.getUint32(0, true);
}

/** IEEE binary16 bits of a float32, round-to-nearest-even (what F16C and ggml's software path do). */
export function f32ToF16Bits(value: number): number {
  return f32BitsToF16Bits(f32Bits(value));
}

function f32BitsToF16Bits(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  const mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 | (mantissa >>> 13) : 0);
  const halfExponent = exponent - 127 + 15;
  if (halfExponent >= 0x1f) return sign | 0x7c00;
  if (halfExponent <= 0) {
    // Subnormal half (or zero): shift the implicit-one mantissa into place, then round.
    if (halfExponent < -10) return sign;
    const full = mantissa | 0x800000;
    const shift = 14 - halfExponent;
    const truncated = full >>> shift;
    const remainder = full & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    const roundUp = remainder > halfway || (remainder === halfway && (truncated & 1) === 1);
    return sign | (truncated + (roundUp ? 1 : 0));
  }
  const truncated = (halfExponent << 10) | (mantissa >>> 13);
  const remainder = mantissa & 0x1fff;
  const roundUp = remainder > 0x1000 || (remainder === 0x1000 && (truncated & 1) === 1);
  // A carry out of the mantissa correctly bumps the exponent, up to infinity.
  return sign | (truncated + (roundUp ? 1 : 0));
}

const F16_TO_F32 = (() => {
  const table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exponent = (h >>> 10) & 0x1f;
    const mantissa = h & 0x3ff;
    if (exponent === 0) table[h] = sign * mantissa * 2 ** -24;
    else if (exponent === 0x1f) table[h] = mantissa ? Number.NaN : sign * Number.POSITIVE_INFINITY;
    else table[h] = sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
  }
  return table;
})();

export function f16BitsToF32(bits: number): number {
  return F16_TO_F32[bits & 0xffff]!;
}

/** bfloat16 bits of a float32 as ggml_compute_fp32_to_bf16 computes them. */
export function f32ToBf16Bits(value: number): number {
  return f32BitsToBf16Bits(f32Bits(value));
}

function f32BitsToBf16Bits(bits: number): number {
  if ((bits & 0x7fffffff) > 0x7f800000) return (bits >>> 16) | 64;
  return ((bits + (0x7fff + ((bits >>> 16) & 1))) >>> 16) & 0xffff;
}

/** Decodes a little-endian tensor of a float dtype into float32 values. */
export function decodeFloats(bytes: Uint8Array, dtype: FloatDtype): Float32Array {
  switch (dtype) {
    case "F32":
      return new Float32Array(alignedBuffer(bytes), 0, bytes.byteLength / 4);
    case "F16": {
      const halves = new Uint16Array(alignedBuffer(bytes), 0, bytes.byteLength / 2);
      const out = new Float32Array(halves.length);
      for (let i = 0; i < halves.length; i++) out[i] = F16_TO_F32[halves[i]!]!;
      return out;
    }
    case "BF16": {
      const halves = new Uint16Array(alignedBuffer(bytes), 0, bytes.byteLength / 2);
      const out = new Uint32Array(halves.length);
      for (let i = 0; i < halves.length; i++) out[i] = halves[i]! << 16;
      return new Float32Array(out.buffer);
    }
  }
}

/** Encodes float32 values as little-endian F32, F16 or BF16 bytes. */
export function encodeFloats(values: Float32Array, dtype: FloatDtype): Uint8Array {
  switch (dtype) {
    case "F32":
      return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    case "F16":
    case "BF16": {
      // Work on the float32 bit patterns directly: far faster than a DataView per element.
      const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
      const convert = dtype === "F16" ? f32BitsToF16Bits : f32BitsToBf16Bits;
      const out = new Uint16Array(values.length);
      for (let i = 0; i < values.length; i++) out[i] = convert(bits[i]!);
      return new Uint8Array(out.buffer);
    }
  }
}

/**
 * 16-bit to 16-bit conversions are a pure function of 65536 inputs: a table
 * makes BF16 -> F16 (the common case for Hub checkpoints) one load per value.
 */
const halfToHalfTables = new Map<string, Uint16Array>();
function halfToHalfTable(from: "F16" | "BF16", to: "F16" | "BF16"): Uint16Array {
  const key = `${from}>${to}`;
  let table = halfToHalfTables.get(key);
  if (!table) {
    const all = new Uint16Array(65536).map((_, i) => i);
    table = new Uint16Array(alignedBuffer(encodeFloats(decodeFloats(new Uint8Array(all.buffer), from), to)));
    halfToHalfTables.set(key, table);
  }
  return table;
}

/** Converts little-endian float bytes between dtypes, with ggml's rounding. */
export function convertFloats(bytes: Uint8Array, from: FloatDtype, to: FloatDtype): Uint8Array {
  if (from === to) return bytes;
  if (from !== "F32" && to !== "F32") {
    const table = halfToHalfTable(from, to);
    const input = new Uint16Array(alignedBuffer(bytes), 0, bytes.byteLength / 2);
    const out = new Uint16Array(input.length);
    for (let i = 0; i < input.length; i++) out[i] = table[input[i]!]!;
    return new Uint8Array(out.buffer);
  }
  return encodeFloats(decodeFloats(bytes, from), to);
}

/** Counts NaN and ±Inf by their all-ones exponent, without decoding. */
export function countNonFinite(bytes: Uint8Array, dtype: FloatDtype): number {
  let count = 0;
  if (dtype === "F32") {
    const words = new Uint32Array(alignedBuffer(bytes), 0, bytes.byteLength / 4);
    for (let i = 0; i < words.length; i++) if ((words[i]! & 0x7f800000) === 0x7f800000) count++;
  } else {
    const mask = dtype === "F16" ? 0x7c00 : 0x7f80;
    const halves = new Uint16Array(alignedBuffer(bytes), 0, bytes.byteLength / 2);
    for (let i = 0; i < halves.length; i++) if ((halves[i]! & mask) === mask) count++;
  }
  return count;
}

/**
 * An ArrayBuffer holding exactly `bytes`, starting at offset 0: typed-array views
 * need aligned offsets, and small Node Buffers live inside a shared pool.
 */
function alignedBuffer(bytes: Uint8Array): ArrayBufferLike {
  const exact = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength;
  return exact ? bytes.buffer : new Uint8Array(bytes).buffer;
}

/** C's rint in the default rounding mode (numpy's round, torch.round): the nearest integer, ties to even. */
export function roundHalfToEven(x: number): number {
  const nearest = Math.round(x); // ties toward +infinity
  return nearest - x === 0.5 && nearest % 2 !== 0 ? nearest - 1 : nearest;
}
