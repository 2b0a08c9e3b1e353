// Independent model of MLX's affine quantization and of an MLX model folder, for tests.
//
// Written from MLX's own source, sharing no code with src/:
//   - ml-explore/mlx, mlx/backend/cpu/quantized.cpp `quantize` (the CPU kernel of
//     mx.quantize in affine mode), mlx/backend/common/quantized.h (pack factor and
//     bytes per pack), mlx/ops.cpp `affine_quantize` (allowed bits / group sizes and
//     the output shapes: uint32 [.., in * bits / 32], scales and biases [.., in / group]);
//   - ml-explore/mlx-lm, mlx_lm/utils.py (load_model's per-layer quantization lookup,
//     save_model's index) for reading a converted folder back.
//
// Deliberately written in a different style from the converter: float32 rounding goes
// through a Float32Array store, packing builds each MLX "pack" as a BigInt and stores
// its bytes little-endian, unpacking reads bytes back the way MLX's kernels do.

import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { bf16BitsToFloat, floatToBf16Bits, floatToHalfBits, halfBitsToFloat } from "./safetensors.js";

export type ReferenceFloat = "F32" | "F16" | "BF16";

const store = new Float32Array(1);
/** Rounds a double to float32, as storing it in a C float does. */
function toF32(x: number): number {
  store[0] = x;
  return store[0]!;
}

/** std::rint in round-to-nearest-even mode. */
export function rintEven(x: number): number {
  const below = Math.floor(x);
  const fraction = x - below;
  if (fraction < 0.5) return below;
  if (fraction > 0.5) return below + 1;
  return below % 2 === 0 ? below : below + 1;
}

/** Rounds a value to what a `dtype` tensor can hold (static_cast<T> from float). */
export function castTo(dtype: ReferenceFloat, x: number): number {
  if (dtype === "F32") return toF32(x);
  if (dtype === "F16") return halfBitsToFloat(floatToHalfBits(x));
  return bf16BitsToFloat(floatToBf16Bits(x));
}

/** The bits `dtype` stores for x (after the float32 -> dtype cast). */
export function dtypeBits(dtype: ReferenceFloat, x: number): number {
  if (dtype === "F16") return floatToHalfBits(x);
  if (dtype === "BF16") return floatToBf16Bits(x);
  const view = new DataView(new ArrayBuffer(4));
  view.setFloat32(0, x, true);
  return view.getUint32(0, true);
}

export interface ReferenceGroup {
  /** Quantized integers, one per input value. */
  readonly q: number[];
  /** float32 scale and bias, before the cast to the weight dtype. */
  readonly scale: number;
  readonly bias: number;
  /** Which paths of the kernel this group took, so tests can show their coverage. */
  readonly path: {
    readonly minIsEdge: boolean;
    readonly q0Zero: boolean;
    readonly epsFloor: boolean;
    readonly ties: number;
    readonly clamped: number;
    /** Values whose (w - bias) / scale is NaN (a constant group beyond 1e-7 * FLT_MAX, where edge / scale overflows). */
    readonly nan: number;
  };
}

/**
 * One group through MLX's CPU `quantize` (mlx/backend/cpu/quantized.cpp): the inputs are
 * values of the weight dtype, all arithmetic is float32.
 */
export function referenceQuantizeGroup(values: readonly number[], bits: number): ReferenceGroup {
  const levels = toF32(2 ** bits - 1);
  const eps = toF32(1e-7);
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  // The edge with the larger magnitude is represented exactly: the scale is negated
  // when it is the maximum, so that q = 0 always maps to the edge.
  const minIsEdge = Math.abs(lo) > Math.abs(hi);
  const range = toF32(toF32(hi - lo) / levels);
  const epsFloor = range < eps;
  let scale = epsFloor ? eps : range;
  if (!minIsEdge) scale = -scale;
  const edge = minIsEdge ? lo : hi;
  const q0 = rintEven(toF32(edge / scale));
  let bias = 0;
  if (q0 !== 0) {
    // Rescale so that zero is a grid point: edge - q0 * scale == 0.
    scale = toF32(edge / q0);
    bias = edge;
  }
  let ties = 0;
  let clamped = 0;
  let nan = 0;
  const q = values.map((v) => {
    const exact = toF32(toF32(v - bias) / scale);
    if (Number.isNaN(exact)) {
      // The kernel casts NaN to an integer: undefined in C++, 0 on Apple silicon (fcvtzu).
      nan++;
      return 0;
    }
    if (exact - Math.floor(exact) === 0.5) ties++;
    const r = rintEven(exact);
    const c = Math.min(Math.max(r, 0), levels);
    if (c !== r) clamped++;
    return c;
  });
  return { q, scale, bias, path: { minIsEdge, q0Zero: q0 === 0, epsFloor, ties, clamped, nan } };
}

/** MLX's pack geometry (mlx/backend/common/quantized.h): values per pack and bytes per pack. */
export function packGeometry(bits: number): { values: number; bytes: number } {
  if (bits === 3 || bits === 5) return { values: 8, bytes: bits };
  if (bits === 6) return { values: 4, bytes: 3 };
  return { values: 32 / bits, bytes: 4 };
}

/**
 * Packs quantized integers as MLX's CPU kernel does: value k of a pack goes to bit
 * k * bits of the pack; 2/4/8-bit packs are one uint32, 3/5/6-bit packs are 3 or 5
 * bytes; the byte buffer is read as little-endian uint32 words.
 */
export function referencePack(q: readonly number[], bits: number): Uint32Array {
  const { values, bytes } = packGeometry(bits);
  if (q.length % values !== 0) throw new Error(`referencePack: ${q.length} values do not fill whole packs`);
  const packs = q.length / values;
  const buffer = new Uint8Array(packs * bytes);
  for (let p = 0; p < packs; p++) {
    let pack = 0n;
    for (let k = 0; k < values; k++) pack |= BigInt(q[p * values + k]!) << BigInt(k * bits);
    for (let b = 0; b < bytes; b++) buffer[p * bytes + b] = Number((pack >> BigInt(8 * b)) & 0xffn);
  }
  if (buffer.length % 4 !== 0) throw new Error("referencePack: packed bytes do not fill whole uint32 words");
  const view = new DataView(buffer.buffer);
  const words = new Uint32Array(buffer.length / 4);
  for (let i = 0; i < words.length; i++) words[i] = view.getUint32(4 * i, true);
  return words;
}

/**
 * Reads quantized integers back from uint32 words the way MLX's kernels read them:
 * bytes of the little-endian words, then per pack (one byte holding 8/bits values
 * for 2/4/8 bits, 3 or 5 bytes for 3/5/6 bits) the values from the low bits up.
 */
export function referenceUnpack(words: Uint32Array, bits: number, count: number): number[] {
  const bytes = new Uint8Array(words.length * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < words.length; i++) view.setUint32(4 * i, words[i]!, true);
  const mask = (1 << bits) - 1;
  const out: number[] = [];
  if (bits === 2 || bits === 4 || bits === 8) {
    for (let i = 0; out.length < count; i++) {
      let byte = bytes[i]!;
      for (let k = 0; k < 8 / bits && out.length < count; k++) {
        out.push(byte & mask);
        byte >>= bits;
      }
    }
    return out;
  }
  const { values, bytes: perPack } = packGeometry(bits);
  for (let p = 0; out.length < count; p++) {
    let pack = 0;
    for (let b = perPack - 1; b >= 0; b--) pack = pack * 256 + bytes[p * perPack + b]!;
    for (let k = 0; k < values && out.length < count; k++) {
      out.push(Math.floor(pack / 2 ** (k * bits)) % 2 ** bits);
    }
  }
  return out;
}

export interface ReferenceMatrix {
  readonly words: Uint32Array;
  /** Scales and biases as the bits of `dtype`. */
  readonly scaleBits: number[];
  readonly biasBits: number[];
  readonly q: number[];
  readonly groups: ReferenceGroup[];
}

/** A whole [rows, cols] weight of dtype `dtype` (values already representable in it). */
export function referenceQuantizeMatrix(values: ArrayLike<number>, cols: number, groupSize: number, bits: number, dtype: ReferenceFloat): ReferenceMatrix {
  const q: number[] = [];
  const scaleBits: number[] = [];
  const biasBits: number[] = [];
  const groups: ReferenceGroup[] = [];
  if (cols % groupSize !== 0 || values.length % cols !== 0) throw new Error("referenceQuantizeMatrix: shape not divisible by the group size");
  for (let start = 0; start < values.length; start += groupSize) {
    const group = referenceQuantizeGroup(Array.from({ length: groupSize }, (_, i) => values[start + i]!), bits);
    groups.push(group);
    q.push(...group.q);
    scaleBits.push(dtypeBits(dtype, group.scale));
    biasBits.push(dtypeBits(dtype, group.bias));
  }
  return { words: referencePack(q, bits), scaleBits, biasBits, q, groups };
}

// ---------------------------------------------------------------------------
// Reading an MLX model folder

export interface StoredTensor {
  readonly name: string;
  readonly file: string;
  readonly dtype: string;
  readonly shape: number[];
  readonly bytes: Uint8Array;
}

export interface MlxFolder {
  readonly config: Record<string, unknown>;
  readonly index: { metadata: Record<string, number>; weight_map: Record<string, string> } | undefined;
  readonly tensors: Map<string, StoredTensor>;
  /** `__metadata__` of each shard file. */
  readonly fileMetadata: Map<string, Record<string, string>>;
  /** Data bytes per shard file, summed over its tensors. */
  readonly fileDataBytes: Map<string, number>;
}

/** Parses every model*.safetensors of a folder (as mlx-lm's loader globs them) and its JSON files. */
export function readMlxFolder(dir: string, files?: readonly string[]): MlxFolder {
  const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as Record<string, unknown>;
  const indexPath = join(dir, "model.safetensors.index.json");
  const index = existsSync(indexPath) ? (JSON.parse(readFileSync(indexPath, "utf8")) as MlxFolder["index"]) : undefined;
  const shardFiles = files ?? [...new Set(index ? Object.values(index.weight_map) : ["model.safetensors"])];
  const tensors = new Map<string, StoredTensor>();
  const fileMetadata = new Map<string, Record<string, string>>();
  const fileDataBytes = new Map<string, number>();
  for (const file of shardFiles) {
    const raw = readFileSync(join(dir, file));
    const headerLength = Number(raw.readBigUInt64LE(0));
    const header = JSON.parse(raw.subarray(8, 8 + headerLength).toString("utf8")) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
    const dataStart = 8 + headerLength;
    let total = 0;
    for (const [name, entry] of Object.entries(header)) {
      if (name === "__metadata__") {
        fileMetadata.set(file, entry as unknown as Record<string, string>);
        continue;
      }
      if (tensors.has(name)) throw new Error(`readMlxFolder: ${name} stored twice`);
      const [begin, end] = entry.data_offsets;
      if (dataStart + end > raw.length) throw new Error(`readMlxFolder: ${file}: ${name} runs past the end of the file`);
      const bytes = new Uint8Array(end - begin);
      bytes.set(raw.subarray(dataStart + begin, dataStart + end));
      tensors.set(name, { name, file, dtype: entry.dtype, shape: entry.shape, bytes });
      total += end - begin;
    }
    fileDataBytes.set(file, total);
  }
  return { config, index, tensors, fileMetadata, fileDataBytes };
}

/** A stored float tensor's values. */
export function floatValues(tensor: StoredTensor): Float64Array {
  const view = new DataView(tensor.bytes.buffer, tensor.bytes.byteOffset, tensor.bytes.byteLength);
  if (tensor.dtype === "F32") return Float64Array.from({ length: tensor.bytes.length / 4 }, (_, i) => view.getFloat32(4 * i, true));
  const decode = tensor.dtype === "F16" ? halfBitsToFloat : tensor.dtype === "BF16" ? bf16BitsToFloat : undefined;
  if (!decode) throw new Error(`floatValues: ${tensor.name} is ${tensor.dtype}`);
  return Float64Array.from({ length: tensor.bytes.length / 2 }, (_, i) => decode(view.getUint16(2 * i, true)));
}

/** A stored U32 tensor's words. */
export function wordValues(tensor: StoredTensor): Uint32Array {
  if (tensor.dtype !== "U32") throw new Error(`wordValues: ${tensor.name} is ${tensor.dtype}`);
  const view = new DataView(tensor.bytes.buffer, tensor.bytes.byteOffset, tensor.bytes.byteLength);
  return Uint32Array.from({ length: tensor.bytes.length / 4 }, (_, i) => view.getUint32(4 * i, true));
}

/**
 * The quantization settings mlx-lm's load_model gives module `path`: its own entry in
 * config["quantization"] if there is one, else the global group_size / bits.
 */
export function moduleQuantization(config: Record<string, unknown>, path: string): { group_size: number; bits: number; mode: string } {
  const block = config["quantization"] as Record<string, unknown>;
  const own = block[path];
  if (typeof own === "object" && own !== null) return own as { group_size: number; bits: number; mode: string };
  return { group_size: block["group_size"] as number, bits: block["bits"] as number, mode: (block["mode"] as string | undefined) ?? "affine" };
}

/**
 * Every weight of an MLX folder as Hugging Face float tensors: `X.weight` dequantized
 * (w = scale * q + bias, in float32 as MLX computes it for float32 weights) where
 * `X.scales` exists, other tensors decoded as they are.
 */
export function dequantizeMlxFolder(folder: MlxFolder): Map<string, { shape: number[]; data: Float64Array }> {
  const out = new Map<string, { shape: number[]; data: Float64Array }>();
  for (const tensor of folder.tensors.values()) {
    if (tensor.name.endsWith(".scales") || tensor.name.endsWith(".biases") || tensor.name.endsWith(".weight_scale")) continue;
    const module = tensor.name.slice(0, tensor.name.lastIndexOf("."));
    const weightScale = folder.tensors.get(`${module}.weight_scale`);
    if (tensor.name.endsWith(".weight") && weightScale) {
      const { shape, data } = referenceBitLinear(tensor, weightScale);
      out.set(tensor.name, { shape, data });
      continue;
    }
    const scales = folder.tensors.get(`${module}.scales`);
    if (!tensor.name.endsWith(".weight") || !scales) {
      out.set(tensor.name, { shape: tensor.shape, data: floatValues(tensor) });
      continue;
    }
    const biases = folder.tensors.get(`${module}.biases`);
    if (!biases) throw new Error(`dequantizeMlxFolder: ${module} has scales but no biases`);
    const { group_size: groupSize, bits } = moduleQuantization(folder.config, module);
    const [rows, packed] = tensor.shape as [number, number];
    const cols = (packed * 32) / bits;
    if (scales.shape[1]! * groupSize !== cols) throw new Error(`dequantizeMlxFolder: ${module}: scales ${JSON.stringify(scales.shape)} do not fit ${cols} inputs in groups of ${groupSize}`);
    const q = referenceUnpack(wordValues(tensor), bits, rows * cols);
    const s = floatValues(scales);
    const b = floatValues(biases);
    const data = new Float64Array(rows * cols);
    for (let i = 0; i < data.length; i++) {
      const g = Math.floor(i / groupSize);
      data[i] = toF32(toF32(s[g]! * q[i]!) + b[g]!);
    }
    out.set(tensor.name, { shape: [rows, cols], data });
  }
  return out;
}

// ---------------------------------------------------------------------------
// BitNet's BitLinear (ml-explore/mlx-lm d78bf58, mlx_lm/models/bitlinear_layers.py)

/**
 * A BitLinear weight as mlx-lm's Metal kernel multiplies with it (bitlinear_layers.py:41-79):
 * thread row_idx < out/4 reads byte w = packed[row_idx * in + j] (line 60) and adds
 * v_j * (((w >> 2i) & 3) - 1) to sum[i] for i = 0..3 (lines 61-64); output row row_idx + i * out/4
 * gets sum[i] * scale (line 76), scale = weight_scale[0], or its inverse when invert_weight_scales
 * (line 74; false for the layers models/bitnet.py builds). So weight row o is lane floor(o / (out/4))
 * of packed row o mod (out/4), and the matrix is trit * scale, taken here in float32 (the kernel's
 * float). The packed shape is [(out + 3) / 4, in] (lines 110-111).
 */
export function referenceBitLinear(packed: StoredTensor, weightScale: StoredTensor, invert = false): { shape: number[]; data: Float64Array; trits: Int8Array; scale: number } {
  if (packed.dtype !== "U8" || packed.shape.length !== 2) throw new Error(`referenceBitLinear: ${packed.name} is ${packed.dtype} ${JSON.stringify(packed.shape)}, not U8 [out/4, in]`);
  if (weightScale.shape.length !== 1 || weightScale.shape[0] !== 1) throw new Error(`referenceBitLinear: ${weightScale.name} has shape ${JSON.stringify(weightScale.shape)}, not [1]`);
  const [quarter, inputs] = packed.shape as [number, number];
  const stored = floatValues(weightScale)[0]!;
  const scale = invert ? toF32(1 / stored) : stored;
  const rows = 4 * quarter;
  const trits = new Int8Array(rows * inputs);
  const data = new Float64Array(rows * inputs);
  for (let lane = 0; lane < 4; lane++) {
    for (let r = 0; r < quarter; r++) {
      const o = lane * quarter + r;
      for (let j = 0; j < inputs; j++) {
        const code = Math.floor(packed.bytes[r * inputs + j]! / 4 ** lane) % 4;
        trits[o * inputs + j] = code - 1;
        data[o * inputs + j] = toF32((code - 1) * scale);
      }
    }
  }
  return { shape: [rows, inputs], data, trits, scale };
}
