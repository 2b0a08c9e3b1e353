/**
 * Block quantization in the layout of ONNX Runtime's MatMulNBits (com.microsoft):
 * for a Linear weight W of shape [N, K] (PyTorch's [out, in]),
 *   B           uint8 [N, kBlocks, blockSize * bits / 8]   codes packed along K, lowest bits first
 *   scales      float [N, kBlocks]
 *   zero_points uint8 [N, ceil(kBlocks * bits / 8)]        optional; default 2^(bits-1)
 * and W[n, k] = (code - zero_point) * scale.
 *
 * 4-bit uses GGUF Q4_0's math and 8-bit Q8_0's: with blocks of 32 the codes and scales
 * come straight from the byte-exact ggml kernels (src/quant/kernels.ts) and are only
 * re-packed, so every dequantized weight equals the GGUF's bit for bit. Other block sizes
 * run the same formulas here (max-magnitude scale, fp16-rounded, ggml's rounding).
 * Ternary weights are 2-bit codes {0, 1, 2} with zero point 1 and one scale s per tensor.
 */
import { f16BitsToF32, f32ToF16Bits } from "../../quant/float.js";
import { GgmlType, quantizeRows } from "../../quant/kernels.js";

export type NBits = 2 | 4 | 8;

export interface NBitsLayout {
  readonly bits: NBits;
  readonly blockSize: number;
  /** Input features (row length of the PyTorch weight). */
  readonly k: number;
  /** Output features (rows). */
  readonly n: number;
}

export const kBlocks = (layout: NBitsLayout): number => Math.ceil(layout.k / layout.blockSize);
const blobSize = (layout: NBitsLayout): number => (layout.blockSize * layout.bits) / 8;
export const zeroPointRowBytes = (layout: NBitsLayout): number => Math.ceil((kBlocks(layout) * layout.bits) / 8);

/** Quantized rows: B bytes and one scale per block (row-major), plus packed zero points if not the default. */
interface NBitsRows {
  readonly data: Uint8Array;
  readonly scales: Float32Array;
  readonly zeroPoints?: Uint8Array;
}

export type NBitsMethod =
  /** GGUF Q4_0 math: d = max / -8 (the signed value of largest magnitude), code = min(15, trunc(x / d + 8.5)). */
  | { readonly kind: "q4_0" }
  /** GGUF Q8_0 math: d = amax / 127, q = round(x / d), code = q + 128. */
  | { readonly kind: "q8_0" }
  /** Ternary: code = round(x / scale) + 1 clamped to {0, 1, 2}, zero point 1, one scale for the whole tensor. */
  | { readonly kind: "ternary"; readonly scale: number };

export function methodBits(method: NBitsMethod): NBits {
  return method.kind === "q4_0" ? 4 : method.kind === "q8_0" ? 8 : 2;
}

/**
 * Quantizes whole rows of `values` (row-major, rows x layout.k). `forceGeneric` skips the
 * ggml kernels for blocks of 32 (tests use it to check the generic path against them).
 */
export function quantizeNBits(values: Float32Array, layout: NBitsLayout, method: NBitsMethod, options: { forceGeneric?: boolean } = {}): NBitsRows {
  if (methodBits(method) !== layout.bits) throw new Error(`internal: ${method.kind} is ${methodBits(method)}-bit, layout says ${layout.bits}`);
  if (values.length % layout.k !== 0) throw new Error(`internal: ${values.length} values are not whole rows of ${layout.k}`);
  const rows = values.length / layout.k;
  const useKernel = !options.forceGeneric && layout.blockSize === 32 && layout.k % 32 === 0 && method.kind !== "ternary";
  if (useKernel) return method.kind === "q4_0" ? fromGgmlQ4_0(values, layout, rows) : fromGgmlQ8_0(values, layout, rows);
  return quantizeGeneric(values, layout, rows, method);
}

/** Q4_0 block: fp16 d, then 16 bytes whose low nibbles are values 0..15 and high nibbles 16..31. */
function fromGgmlQ4_0(values: Float32Array, layout: NBitsLayout, rows: number): NBitsRows {
  const ggml = quantizeRows(GgmlType.Q4_0, values, layout.k);
  const blocks = rows * kBlocks(layout);
  const data = new Uint8Array(blocks * 16);
  const scales = new Float32Array(blocks);
  for (let b = 0; b < blocks; b++) {
    const src = b * 18;
    scales[b] = f16BitsToF32(ggml[src]! | (ggml[src + 1]! << 8));
    const dst = b * 16;
    for (let j = 0; j < 16; j++) {
      // MatMulNBits: byte j holds element 2j (low nibble) and 2j + 1 (high nibble).
      const e0 = 2 * j;
      const e1 = 2 * j + 1;
      data[dst + j] = q4Code(ggml, src + 2, e0) | (q4Code(ggml, src + 2, e1) << 4);
    }
  }
  return { data, scales };
}

function q4Code(ggml: Uint8Array, qs: number, element: number): number {
  return element < 16 ? ggml[qs + element]! & 0x0f : ggml[qs + element - 16]! >> 4;
}

/** Q8_0 block: fp16 d, then 32 int8 values; MatMulNBits' 8-bit codes are those plus 128. */
function fromGgmlQ8_0(values: Float32Array, layout: NBitsLayout, rows: number): NBitsRows {
  const ggml = quantizeRows(GgmlType.Q8_0, values, layout.k);
  const blocks = rows * kBlocks(layout);
  const data = new Uint8Array(blocks * 32);
  const scales = new Float32Array(blocks);
  for (let b = 0; b < blocks; b++) {
    const src = b * 34;
    scales[b] = f16BitsToF32(ggml[src]! | (ggml[src + 1]! << 8));
    for (let j = 0; j < 32; j++) data[b * 32 + j] = ggml[src + 2 + j]! ^ 0x80;
  }
  return { data, scales };
}

function quantizeGeneric(values: Float32Array, layout: NBitsLayout, rows: number, method: NBitsMethod): NBitsRows {
  const { k, blockSize, bits } = layout;
  const perRow = kBlocks(layout);
  const blob = blobSize(layout);
  const data = new Uint8Array(rows * perRow * blob);
  const scales = new Float32Array(rows * perRow);
  const block = new Float32Array(blockSize);
  const codes = new Uint8Array(blockSize);
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < perRow; b++) {
      const start = r * k + b * blockSize;
      const count = Math.min(blockSize, k - b * blockSize);
      block.fill(0);
      block.set(values.subarray(start, start + count));
      const index = r * perRow + b;
      scales[index] = quantizeBlock(block, codes, method);
      packCodes(codes, bits, data, index * blob);
    }
  }
  if (method.kind !== "ternary") return { data, scales };
  return { data, scales, zeroPoints: packedZeroPoints(rows, layout, 1) };
}

/** Fills `codes` for one block and returns its scale, as ggml's reference quantizers compute them (in float32). */
function quantizeBlock(block: Float32Array, codes: Uint8Array, method: NBitsMethod): number {
  const f = Math.fround;
  if (method.kind === "ternary") {
    const inverse = method.scale === 0 ? 0 : f(1 / method.scale);
    for (let i = 0; i < block.length; i++) codes[i] = Math.max(-1, Math.min(1, Math.round(f(block[i]! * inverse)))) + 1;
    return method.scale;
  }
  if (method.kind === "q4_0") {
    let amax = 0;
    let max = 0;
    for (let i = 0; i < block.length; i++) {
      const v = block[i]!;
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = f(max / -8);
    const id = d === 0 ? 0 : f(1 / d);
    for (let i = 0; i < block.length; i++) codes[i] = Math.min(15, Math.trunc(f(f(block[i]! * id) + 8.5)));
    return f16BitsToF32(f32ToF16Bits(d));
  }
  let amax = 0;
  for (let i = 0; i < block.length; i++) amax = Math.max(amax, Math.abs(block[i]!));
  const d = f(amax / 127);
  const id = d === 0 ? 0 : f(1 / d);
  // roundf: half away from zero.
  for (let i = 0; i < block.length; i++) {
    const x = f(block[i]! * id);
    codes[i] = (Math.sign(x) * Math.round(Math.abs(x)) + 128) & 0xff;
  }
  return f16BitsToF32(f32ToF16Bits(d));
}

/** Packs codes of `bits` bits, element i at bit (i * bits) % 8 of byte floor(i * bits / 8). */
function packCodes(codes: Uint8Array, bits: number, out: Uint8Array, offset: number): void {
  const perByte = 8 / bits;
  for (let i = 0; i < codes.length; i++) out[offset + Math.floor(i / perByte)]! |= codes[i]! << ((i % perByte) * bits);
}

/** Zero points `value` for every block of `rows` rows, packed as MatMulNBits wants them. */
function packedZeroPoints(rows: number, layout: NBitsLayout, value: number): Uint8Array {
  const perRow = zeroPointRowBytes(layout);
  const out = new Uint8Array(rows * perRow);
  const perByte = 8 / layout.bits;
  const blocks = kBlocks(layout);
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < blocks; b++) out[r * perRow + Math.floor(b / perByte)]! |= value << ((b % perByte) * layout.bits);
  }
  return out;
}

/** Expands MatMulNBits weights back to a [N, K] float32 matrix, exactly as the operator defines them. */
export function dequantizeNBits(layout: NBitsLayout, data: Uint8Array, scales: Float32Array, zeroPoints?: Uint8Array): Float32Array {
  const { n, k, bits, blockSize } = layout;
  const perRow = kBlocks(layout);
  const blob = blobSize(layout);
  const zpRow = zeroPointRowBytes(layout);
  const perByte = 8 / bits;
  const mask = (1 << bits) - 1;
  const out = new Float32Array(n * k);
  for (let r = 0; r < n; r++) {
    for (let b = 0; b < perRow; b++) {
      const index = r * perRow + b;
      const scale = scales[index]!;
      const zp = zeroPoints ? (zeroPoints[r * zpRow + Math.floor(b / perByte)]! >> ((b % perByte) * bits)) & mask : 1 << (bits - 1);
      for (let i = 0; i < blockSize && b * blockSize + i < k; i++) {
        const code = (data[index * blob + Math.floor(i / perByte)]! >> ((i % perByte) * bits)) & mask;
        out[r * k + b * blockSize + i] = Math.fround((code - zp) * scale);
      }
    }
  }
  return out;
}

