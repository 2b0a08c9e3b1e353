import type { PlannedTensor } from "../plan/gguf-plan.js";
import type { FloatDtype } from "../readers/dtypes.js";
import { SAFETENSORS_DTYPES } from "../readers/dtypes.js";
import type { SourceTensor } from "../readers/source-tensor.js";
import { convertFloats, countNonFinite, decodeFloats, encodeFloats } from "./float.js";
import { GgmlType } from "./ggml-types.js";
import type { KernelPool } from "./pool.js";

/** Value problems found while encoding a tensor, reported as warnings. */
export interface EncodingStats {
  /** NaN/Inf values in the source. */
  nonFiniteInSource: number;
  /** Finite source values that became ±Inf because the output type's range is smaller (F16). */
  overflowed: number;
}

/** Source bytes read per chunk: large enough for fast I/O and busy workers, small against any model's memory. */
const CHUNK_BYTES = 16 << 20;

const FLOAT_OUTPUT: Partial<Record<GgmlType, FloatDtype>> = {
  [GgmlType.F32]: "F32",
  [GgmlType.F16]: "F16",
  [GgmlType.BF16]: "BF16",
};

/**
 * Reads a planned tensor's source and yields it encoded in its output type,
 * a chunk of whole rows at a time, counting value problems into `stats`.
 * Block-quantized types go through `pool` (required for them).
 */
export async function* encodeTensor(tensor: PlannedTensor, stats: EncodingStats, pool?: KernelPool): AsyncGenerator<Uint8Array> {
  const floatOutput = FLOAT_OUTPUT[tensor.type];
  const origin = tensor.origin;
  const rowLength = tensor.shape.at(-1) ?? 1;
  if (origin.kind === "generated") {
    yield floatOutput ? encodeFloats(origin.values, floatOutput) : await quantizer(pool)(tensor.type, origin.values, rowLength);
    return;
  }
  const source = origin.tensor;
  const chunks = sourceChunks(source, origin.ropeHeads);
  if (floatOutput) {
    for await (const raw of chunks) {
      const nonFinite = countNonFinite(raw, source.dtype);
      stats.nonFiniteInSource += nonFinite;
      const encoded = convertFloats(raw, source.dtype, floatOutput);
      if (encoded !== raw) stats.overflowed += countNonFinite(encoded, floatOutput) - nonFinite;
      yield encoded;
    }
    return;
  }
  // Quantize chunk k on the workers while chunk k+1 is read and decoded here.
  const quantize = quantizer(pool);
  let inFlight: Promise<Uint8Array> | undefined;
  for await (const raw of chunks) {
    stats.nonFiniteInSource += countNonFinite(raw, source.dtype);
    const next = quantize(tensor.type, decodeFloats(raw, source.dtype), rowLength);
    if (inFlight) yield await inFlight;
    inFlight = next;
  }
  if (inFlight) yield await inFlight;
}

function quantizer(pool: KernelPool | undefined): KernelPool["quantizeRows"] {
  if (!pool) throw new Error("internal: block quantization needs a kernel pool");
  return (type, values, rowLength) => pool.quantizeRows(type, values, rowLength);
}

/** The tensor's raw bytes in row chunks; RoPE-interleaved tensors (Q/K, a few MB) are read whole. */
async function* sourceChunks(source: SourceTensor, ropeHeads: number | undefined): AsyncGenerator<Uint8Array> {
  const elementBytes = SAFETENSORS_DTYPES[source.dtype].bytes;
  if (ropeHeads !== undefined) {
    yield interleaveRopeRows(await source.read(0, source.byteLength), source.shape, ropeHeads, elementBytes);
    return;
  }
  const rows = source.shape.length > 1 ? source.shape[0]! : 1;
  const rowBytes = source.byteLength / Math.max(rows, 1);
  const rowsPerChunk = Math.max(1, Math.floor(CHUNK_BYTES / Math.max(rowBytes, 1)));
  for (let row = 0; row < rows; row += rowsPerChunk) {
    const count = Math.min(rowsPerChunk, rows - row);
    yield source.read(row * rowBytes, count * rowBytes);
  }
}

/**
 * Reorders each head's rows from HF's rotate-half layout (first half, second
 * half) to the interleaved pairs llama.cpp's normal RoPE rotates:
 * new row 2i+j of a head = old row j*(rows/2)+i. Works on raw bytes, so on any dtype.
 */
export function interleaveRopeRows(raw: Uint8Array, shape: readonly number[], heads: number, elementBytes: number): Uint8Array {
  const rows = shape[0]!;
  const rowBytes = shape.slice(1).reduce((a, b) => a * b, 1) * elementBytes;
  const rowsPerHead = rows / heads;
  if (!Number.isInteger(rowsPerHead) || rowsPerHead % 2 !== 0) {
    throw new Error(`internal: ${rows} rows cannot be split into ${heads} heads of an even size`);
  }
  const half = rowsPerHead / 2;
  const out = new Uint8Array(raw.byteLength);
  for (let head = 0; head < heads; head++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const from = (head * rowsPerHead + j * half + i) * rowBytes;
        const to = (head * rowsPerHead + 2 * i + j) * rowBytes;
        out.set(raw.subarray(from, from + rowBytes), to);
      }
    }
  }
  return out;
}
