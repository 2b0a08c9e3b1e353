// Minimal safetensors reader/writer used only by the test oracle and the synthetic
// checkpoint generator. Deliberately independent of anything under src/.
//
// File layout (https://github.com/huggingface/safetensors):
//   u64 little-endian N | N bytes of JSON header | raw tensor bytes
// The header maps tensor names to {dtype, shape, data_offsets: [begin, end]}, with
// offsets relative to the first byte after the header, plus an optional "__metadata__".

import { closeSync, ftruncateSync, openSync, readFileSync, writeFileSync, writeSync } from "node:fs";

export type SafetensorsDtype = "F32" | "F16" | "BF16";

export interface DecodedTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  data: Float32Array;
}

const BYTES_PER_ELEMENT: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2 };

function isSupportedDtype(dtype: string): dtype is SafetensorsDtype {
  return dtype === "F32" || dtype === "F16" || dtype === "BF16";
}

// ---------------------------------------------------------------------------
// Half-precision codecs

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** IEEE 754 binary16 bit pattern -> number. */
export function halfBitsToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24; // zero / subnormal
  if (exponent === 0x1f) return mantissa === 0 ? sign * Infinity : NaN;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** number -> IEEE 754 binary16 bit pattern, round-to-nearest-even. */
export function floatToHalfBits(value: number): number {
  if (Number.isNaN(value)) return 0x7e00;
  const sign = value < 0 || Object.is(value, -0) ? 0x8000 : 0;
  const abs = Math.abs(value);
  if (abs === 0) return sign;
  if (abs >= 65520) return sign | 0x7c00; // rounds to infinity
  if (abs < 2 ** -14) {
    // subnormal: value = m * 2^-24, m in [0, 1023]
    const m = roundHalfEven(abs / 2 ** -24);
    return sign | m; // m may reach 1024 == smallest normal, which is the right encoding
  }
  let exponent = Math.floor(Math.log2(abs));
  // guard against log2 rounding at exact powers of two
  if (2 ** exponent > abs) exponent -= 1;
  if (2 ** (exponent + 1) <= abs) exponent += 1;
  let mantissa = roundHalfEven((abs / 2 ** exponent - 1) * 1024);
  if (mantissa === 1024) {
    mantissa = 0;
    exponent += 1;
  }
  if (exponent > 15) return sign | 0x7c00;
  return sign | ((exponent + 15) << 10) | mantissa;
}

function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const diff = x - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** bfloat16 bit pattern -> number (exact: bf16 is the top half of an f32). */
export function bf16BitsToFloat(bits: number): number {
  u32Scratch[0] = (bits & 0xffff) << 16;
  return f32Scratch[0]!;
}

/** number -> bfloat16 bit pattern, via f32, round-to-nearest-even. */
export function floatToBf16Bits(value: number): number {
  f32Scratch[0] = value;
  const bits = u32Scratch[0]!;
  if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x007fffff) !== 0) return 0x7fc0; // NaN
  const lsb = (bits >>> 16) & 1;
  return ((bits + 0x7fff + lsb) >>> 16) & 0xffff;
}

/** Round a value to what the given dtype can store (what a writer followed by a reader yields). */
export function roundToDtype(value: number, dtype: SafetensorsDtype): number {
  switch (dtype) {
    case "F32":
      return Math.fround(value);
    case "F16":
      return halfBitsToFloat(floatToHalfBits(value));
    case "BF16":
      return bf16BitsToFloat(floatToBf16Bits(value));
  }
}

// ---------------------------------------------------------------------------
// Reading

interface HeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/** A parsed safetensors file; tensors are decoded to Float32 on demand. */
export class SafetensorsFile {
  readonly path: string;
  private readonly bytes: Buffer;
  private readonly dataStart: number;
  private readonly entries: Map<string, HeaderEntry>;
  readonly metadata: Record<string, string>;

  constructor(path: string) {
    this.path = path;
    this.bytes = readFileSync(path);
    if (this.bytes.length < 8) throw new Error(`${path}: too short to be a safetensors file`);
    const headerLength = Number(this.bytes.readBigUInt64LE(0));
    if (8 + headerLength > this.bytes.length) throw new Error(`${path}: header length ${headerLength} exceeds file size`);
    const header = JSON.parse(this.bytes.subarray(8, 8 + headerLength).toString("utf8")) as Record<string, unknown>;
    this.dataStart = 8 + headerLength;
    this.entries = new Map();
    this.metadata = {};
    for (const [name, value] of Object.entries(header)) {
      if (name === "__metadata__") {
        Object.assign(this.metadata, value as Record<string, string>);
        continue;
      }
      const entry = value as HeaderEntry;
      const [begin, end] = entry.data_offsets;
      if (!(begin >= 0 && end >= begin && this.dataStart + end <= this.bytes.length)) {
        throw new Error(`${path}: tensor ${name} has out-of-range data_offsets [${begin}, ${end}]`);
      }
      this.entries.set(name, entry);
    }
  }

  names(): string[] {
    return [...this.entries.keys()];
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  shape(name: string): number[] {
    const entry = this.entries.get(name);
    if (!entry) throw new Error(`${this.path}: no tensor named ${name}`);
    return [...entry.shape];
  }

  read(name: string): DecodedTensor {
    const entry = this.entries.get(name);
    if (!entry) throw new Error(`${this.path}: no tensor named ${name}`);
    const dtype = entry.dtype;
    if (!isSupportedDtype(dtype)) throw new Error(`${this.path}: tensor ${name} has unsupported dtype ${dtype}`);
    const count = entry.shape.reduce((a, b) => a * b, 1);
    const [begin, end] = entry.data_offsets;
    if (end - begin !== count * BYTES_PER_ELEMENT[dtype]) {
      throw new Error(`${this.path}: tensor ${name} byte length ${end - begin} does not match shape ${JSON.stringify(entry.shape)} x ${dtype}`);
    }
    // Copy into an aligned buffer so typed-array views are legal regardless of offset alignment.
    const aligned = new Uint8Array(end - begin);
    aligned.set(this.bytes.subarray(this.dataStart + begin, this.dataStart + end));
    const out = new Float32Array(count);
    if (dtype === "F32") {
      out.set(new Float32Array(aligned.buffer, 0, count));
    } else {
      const halves = new Uint16Array(aligned.buffer, 0, count);
      const decode = dtype === "F16" ? halfBitsToFloat : bf16BitsToFloat;
      for (let i = 0; i < count; i++) out[i] = decode(halves[i]!);
    }
    return { dtype, shape: [...entry.shape], data: out };
  }
}

// ---------------------------------------------------------------------------
// Writing

export interface FloatTensorToWrite {
  name: string;
  shape: number[];
  /** Values in row-major order; encoded to `dtype` on write. */
  data: Float32Array | Float64Array | number[];
  dtype: SafetensorsDtype;
}

/** A float tensor, or the raw bytes of an integer one (e.g. BitNet's packed uint8 weights). */
export type TensorToWrite = FloatTensorToWrite | { name: string; shape: number[]; data: Uint8Array; dtype: "U8" };

/** Writes a single-file safetensors checkpoint. Assumes a little-endian host (as does the reader). */
export function writeSafetensors(path: string, tensors: TensorToWrite[], metadata: Record<string, string> = { format: "pt" }): void {
  const header: Record<string, unknown> = { __metadata__: metadata };
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const tensor of tensors) {
    const count = tensor.shape.reduce((a, b) => a * b, 1);
    if (tensor.data.length !== count) {
      throw new Error(`writeSafetensors: ${tensor.name} has ${tensor.data.length} values for shape ${JSON.stringify(tensor.shape)}`);
    }
    let bytes: Uint8Array;
    if (tensor.dtype === "U8") {
      bytes = tensor.data;
    } else if (tensor.dtype === "F32") {
      bytes = new Uint8Array(Float32Array.from(tensor.data).buffer);
    } else {
      const encode = tensor.dtype === "F16" ? floatToHalfBits : floatToBf16Bits;
      const halves = new Uint16Array(count);
      for (let i = 0; i < count; i++) halves[i] = encode(tensor.data[i]!);
      bytes = new Uint8Array(halves.buffer);
    }
    header[tensor.name] = { dtype: tensor.dtype, shape: tensor.shape, data_offsets: [offset, offset + bytes.length] };
    chunks.push(bytes);
    offset += bytes.length;
  }
  let headerText = JSON.stringify(header);
  // Pad the header with spaces so the data section starts 8-byte aligned (as the reference writer does).
  const padding = (8 - ((8 + Buffer.byteLength(headerText)) % 8)) % 8;
  headerText += " ".repeat(padding);
  const headerBytes = Buffer.from(headerText, "utf8");
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(headerBytes.length));
  writeFileSync(path, Buffer.concat([prefix, headerBytes, ...chunks]));
}

/**
 * Rewrites a safetensors file with tensor `name` re-declared as `shape` x F32 and its bytes left
 * as a hole: a header claiming gigabytes costs no disk (the file is sparse), as a hostile one would.
 */
export function redeclareAsSparse(path: string, name: string, shape: readonly number[]): void {
  const bytes = readFileSync(path);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString("utf8")) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const data = 8 + headerLength;
  const entries = Object.entries(header).filter(([key]) => key !== "__metadata__");
  entries.sort((a, b) => a[1].data_offsets[0] - b[1].data_offsets[0]);
  const chunks: { bytes?: Buffer; length: number }[] = [];
  const next: Record<string, unknown> = {};
  let offset = 0;
  for (const [key, entry] of entries) {
    const redeclared = key === name;
    const length = redeclared ? shape.reduce((a, b) => a * b, 1) * 4 : entry.data_offsets[1] - entry.data_offsets[0];
    next[key] = redeclared ? { dtype: "F32", shape, data_offsets: [offset, offset + length] } : { ...entry, data_offsets: [offset, offset + length] };
    chunks.push(redeclared ? { length } : { bytes: bytes.subarray(data + entry.data_offsets[0], data + entry.data_offsets[1]), length });
    offset += length;
  }
  const json = Buffer.from(JSON.stringify(next));
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));
  const fd = openSync(path, "w");
  let position = writeSync(fd, Buffer.concat([prefix, json]), 0, undefined, 0);
  for (const chunk of chunks) {
    if (chunk.bytes) writeSync(fd, chunk.bytes, 0, chunk.length, position);
    position += chunk.length;
  }
  ftruncateSync(fd, position);
  closeSync(fd);
}
