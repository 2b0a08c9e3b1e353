/**
 * Block quantization kernels (Rust compiled to WebAssembly SIMD, `kernels/` →
 * `wasm/edgequant_kernels.wasm`). Output is byte-identical to ggml's reference quantizers,
 * i.e. what `ggml_quantize_chunk` writes without an importance matrix, and dequantization
 * matches ggml's `to_float` bit for bit.
 *
 * One module instance per thread (module state is per worker in Node), created on first use.
 * Large inputs are processed in chunks of whole rows; the module's memory grows to fit.
 */

import { readFileSync } from "node:fs";
import { GgmlType, ggmlType, ggmlTypeName, rowBytes } from "./ggml-types.js";

export { GgmlType };

interface KernelExports {
  readonly memory: WebAssembly.Memory;
  eq_heap_base(): number;
  eq_quantize(type: number, src: number, dst: number, count: number): number;
  eq_dequantize(type: number, src: number, dst: number, count: number): number;
  /** Elements per block of a type, 0 if the module has no kernel for it. */
  eq_block_size(type: number): number;
  /** Bytes per block of a type, 0 if the module has no kernel for it. */
  eq_block_bytes(type: number): number;
  /** The module's types: eq_type_at(0 .. eq_type_count() - 1) are their ggml ids. */
  eq_type_count(): number;
  eq_type_at(index: number): number;
}

/** The block-quantized types the kernels handle; the float types F32, F16 and BF16 are handled too. */
export const KERNEL_TYPES: readonly GgmlType[] = [
  GgmlType.Q4_0,
  GgmlType.Q4_1,
  GgmlType.Q5_0,
  GgmlType.Q5_1,
  GgmlType.Q8_0,
  GgmlType.Q2_K,
  GgmlType.Q3_K,
  GgmlType.Q4_K,
  GgmlType.Q5_K,
  GgmlType.Q6_K,
  GgmlType.TQ1_0,
  GgmlType.TQ2_0,
];
const HANDLED: ReadonlySet<GgmlType> = new Set([GgmlType.F32, GgmlType.F16, GgmlType.BF16, ...KERNEL_TYPES]);

/** ggml's block layout of a type the kernels handle. */
function layout(type: GgmlType): { readonly block: number; readonly bytes: number } {
  if (!HANDLED.has(type)) throw new Error(`no quantization kernel for ggml type ${ggmlTypeName(type)}`);
  const { blockSize, typeSize } = ggmlType(type);
  return { block: blockSize, bytes: typeSize };
}

const WASM_URL = new URL("../../wasm/edgequant_kernels.wasm", import.meta.url);

let instance: KernelExports | undefined;

function kernels(): KernelExports {
  if (!instance) {
    // Synchronous on purpose: the API is synchronous and the module is small (tens of KB).
    const module = new WebAssembly.Module(readFileSync(WASM_URL));
    const exports = new WebAssembly.Instance(module, {}).exports as unknown as KernelExports;
    checkLayouts(exports);
    instance = exports;
  }
  return instance;
}

/** A module built from other kernels than this file expects would write wrongly sized rows. */
function checkLayouts(k: KernelExports): void {
  const theirs = Array.from({ length: k.eq_type_count() }, (_, i) => (k.eq_type_at(i) >>> 0) as GgmlType);
  const ours = [...HANDLED].filter((type) => type !== GgmlType.F32);
  const problems = ours
    .filter((type) => k.eq_block_size(type) !== layout(type).block || k.eq_block_bytes(type) !== layout(type).bytes)
    .map((type) => `${ggmlTypeName(type)}: ${k.eq_block_size(type)} elements in ${k.eq_block_bytes(type)} bytes there, ${layout(type).block} in ${layout(type).bytes} here`);
  for (const type of theirs) if (!HANDLED.has(type)) problems.push(`${ggmlTypeName(type)}: implemented by the module but unknown here`);
  if (problems.length > 0) throw new Error(`${WASM_URL.pathname} does not match src/quant/kernels.ts (rebuild with npm run build:wasm): ${problems.join("; ")}`);
}

/** Tuning knobs; results never depend on them. */
interface KernelOptions {
  /** Upper bound on the f32 elements handed to WASM per call (rounded to whole rows, at least one row). */
  readonly chunkElements?: number;
}

const DEFAULT_CHUNK_ELEMENTS = 1 << 18; // 1 MiB of f32 per call

const align16 = (n: number): number => Math.ceil(n / 16) * 16;

/** Makes sure `bytes` bytes above the heap base are addressable; returns the base address. */
function reserve(k: KernelExports, bytes: number): number {
  const base = align16(k.eq_heap_base());
  const needed = base + bytes;
  const have = k.memory.buffer.byteLength;
  if (needed > have) k.memory.grow(Math.ceil((needed - have) / 65536));
  return base;
}

function chunkRows(rowLength: number, rows: number, options?: KernelOptions): number {
  const limit = options?.chunkElements ?? DEFAULT_CHUNK_ELEMENTS;
  if (!(limit > 0)) throw new Error(`chunkElements must be positive, got ${limit}`);
  return Math.max(1, Math.min(rows, Math.floor(limit / rowLength)));
}

/**
 * Quantizes rows of `rowLength` floats into ggml type `type` (a quantized type, F16, BF16 or
 * F32). `values.length` must be a multiple of `rowLength`, and `rowLength` of the block size.
 * Returns the rows' bytes back to back, exactly as ggml_quantize_chunk lays them out.
 */
export function quantizeRows(type: GgmlType, values: Float32Array, rowLength: number, options?: KernelOptions): Uint8Array {
  const out = new Uint8Array(quantizedSize(type, values.length, rowLength));
  quantizeRowsInto(type, values, rowLength, out, options);
  return out;
}

/** Bytes that `quantizeRows(type, values, rowLength)` returns for `count` values. */
export function quantizedSize(type: GgmlType, count: number, rowLength: number): number {
  if (!Number.isInteger(rowLength) || rowLength <= 0) throw new Error(`row length must be a positive integer, got ${rowLength}`);
  if (count % rowLength !== 0) throw new Error(`${count} values are not a whole number of rows of ${rowLength}`);
  layout(type); // throws for types without a kernel
  return (count / rowLength) * rowBytes(type, rowLength); // rowBytes checks rowLength against the block size
}

/** Like quantizeRows, writing into `out` (exactly quantizedSize bytes) instead of a new array. */
export function quantizeRowsInto(type: GgmlType, values: Float32Array, rowLength: number, out: Uint8Array, options?: KernelOptions): void {
  const size = quantizedSize(type, values.length, rowLength);
  if (out.byteLength !== size) throw new Error(`output holds ${out.byteLength} bytes, ${size} needed`);
  const rows = values.length / rowLength;
  const rowSize = size / Math.max(1, rows);
  if (type === GgmlType.F32) {
    out.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
    return;
  }
  if (rows === 0) return;

  const k = kernels();
  const perCall = chunkRows(rowLength, rows, options);
  const inBytes = align16(perCall * rowLength * 4);
  const base = reserve(k, inBytes + perCall * rowSize);
  const src = base;
  const dst = base + inBytes;
  for (let row = 0; row < rows; row += perCall) {
    const n = Math.min(perCall, rows - row);
    const count = n * rowLength;
    new Float32Array(k.memory.buffer, src, count).set(values.subarray(row * rowLength, row * rowLength + count));
    const written = k.eq_quantize(type, src, dst, count) >>> 0;
    if (written !== n * rowSize) throw new Error(`internal: WASM quantizer for ${ggmlTypeName(type)} wrote ${written} bytes, expected ${n * rowSize}`);
    out.set(new Uint8Array(k.memory.buffer, dst, written), row * rowSize);
  }
}

/**
 * Expands `count` elements of ggml type `type` stored in `bytes` back to floats, as ggml's
 * `to_float` does. `count` must be a whole number of blocks and `bytes` exactly their size.
 */
export function dequantizeRows(type: GgmlType, bytes: Uint8Array, count: number, options?: KernelOptions): Float32Array {
  const out = new Float32Array(count);
  dequantizeRowsInto(type, bytes, out, options);
  return out;
}

/** Like dequantizeRows, filling `out` (its length is the element count). */
export function dequantizeRowsInto(type: GgmlType, bytes: Uint8Array, out: Float32Array, options?: KernelOptions): void {
  const count = out.length;
  const { block, bytes: typeSize } = layout(type);
  if (count % block !== 0) throw new Error(`${count} elements are not a whole number of ${ggmlTypeName(type)} blocks of ${block}`);
  const blocks = count / block;
  if (bytes.byteLength !== blocks * typeSize) throw new Error(`${count} ${ggmlTypeName(type)} elements take ${blocks * typeSize} bytes, got ${bytes.byteLength}`);
  if (type === GgmlType.F32) {
    new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(bytes);
    return;
  }
  if (blocks === 0) return;

  const k = kernels();
  const perCall = Math.max(1, Math.min(blocks, Math.floor((options?.chunkElements ?? DEFAULT_CHUNK_ELEMENTS) / block)));
  const inBytes = align16(perCall * typeSize);
  const base = reserve(k, inBytes + perCall * block * 4);
  const src = base;
  const dst = base + inBytes;
  for (let first = 0; first < blocks; first += perCall) {
    const n = Math.min(perCall, blocks - first);
    new Uint8Array(k.memory.buffer, src, n * typeSize).set(bytes.subarray(first * typeSize, (first + n) * typeSize));
    const read = k.eq_dequantize(type, src, dst, n * block) >>> 0;
    if (read !== n * typeSize) throw new Error(`internal: WASM dequantizer for ${ggmlTypeName(type)} read ${read} bytes, expected ${n * typeSize}`);
    out.set(new Float32Array(k.memory.buffer, dst, n * block), first * block);
  }
}

function halves(bytes: Uint8Array): Uint16Array {
  return new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2);
}

/** IEEE half bits of each value, as ggml_fp32_to_fp16_row computes them (NaN → 0x7e00 | sign). */
export function f32ToF16(values: Float32Array, options?: KernelOptions): Uint16Array {
  return halves(quantizeRows(GgmlType.F16, values, 1, options));
}

/** bfloat16 bits of each value, as ggml_fp32_to_bf16_row_ref computes them. */
export function f32ToBf16(values: Float32Array, options?: KernelOptions): Uint16Array {
  return halves(quantizeRows(GgmlType.BF16, values, 1, options));
}
