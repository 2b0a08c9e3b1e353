import type { PlannedTensor } from "../plan/gguf-plan.js";
import type { FloatDtype } from "../readers/dtypes.js";
import { SAFETENSORS_DTYPES } from "../readers/dtypes.js";
import { decodeFloats, encodeFloats } from "./float.js";
import { GgmlType, ggmlTypeName } from "./ggml-types.js";

export interface EncodedTensor {
  readonly bytes: Uint8Array;
  /** NaN/Inf values in the source. */
  readonly nonFiniteInSource: number;
  /** Finite source values that became ±Inf because the output type's range is smaller (F16). */
  readonly overflowed: number;
}

const FLOAT_OUTPUT: Partial<Record<GgmlType, FloatDtype>> = {
  [GgmlType.F32]: "F32",
  [GgmlType.F16]: "F16",
  [GgmlType.BF16]: "BF16",
};

/** Reads a planned tensor's source and encodes it in its output type. */
export async function encodeTensor(tensor: PlannedTensor): Promise<EncodedTensor> {
  const outputDtype = FLOAT_OUTPUT[tensor.type];
  if (!outputDtype) throw new Error(`internal: no encoder for ${ggmlTypeName(tensor.type)} yet`);
  const origin = tensor.origin;
  if (origin.kind === "generated") {
    return { bytes: encodeFloats(origin.values, outputDtype), nonFiniteInSource: 0, overflowed: 0 };
  }
  const source = origin.tensor;
  let raw: Uint8Array = await source.file.read(source.name);
  if (origin.ropeHeads !== undefined) raw = interleaveRopeRows(raw, source.shape, origin.ropeHeads, SAFETENSORS_DTYPES[source.dtype].bytes);
  const dtype = source.dtype as FloatDtype;
  const nonFiniteInSource = countNonFinite(raw, dtype);
  if (dtype === outputDtype) return { bytes: raw, nonFiniteInSource, overflowed: 0 };
  const bytes = encodeFloats(decodeFloats(raw, dtype), outputDtype);
  return { bytes, nonFiniteInSource, overflowed: countNonFinite(bytes, outputDtype) - nonFiniteInSource };
}

/**
 * Reorders each head's rows from HF's rotate-half layout (first half, second
 * half) to the interleaved pairs llama.cpp's normal RoPE rotates:
 * new row 2i+j of a head = old row j*(rows/2)+i. Works on raw bytes, so on any dtype.
 */
export function interleaveRopeRows(raw: Uint8Array, shape: readonly number[], heads: number, elementBytes: number): Uint8Array {
  const rows = shape[0]!;
  const rowBytes = (shape.slice(1).reduce((a, b) => a * b, 1)) * elementBytes;
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

/** Counts NaN and ±Inf by their all-ones exponent, without decoding. */
export function countNonFinite(bytes: Uint8Array, dtype: FloatDtype): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let count = 0;
  if (dtype === "F32") {
    for (let i = 0; i < bytes.byteLength; i += 4) if ((view.getUint32(i, true) & 0x7f800000) === 0x7f800000) count++;
  } else {
    const mask = dtype === "F16" ? 0x7c00 : 0x7f80;
    for (let i = 0; i < bytes.byteLength; i += 2) if ((view.getUint16(i, true) & mask) === mask) count++;
  }
  return count;
}
