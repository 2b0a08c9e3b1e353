import type { PlannedTensor } from "../plan/gguf.js";
import type { FloatDtype } from "../readers/dtypes.js";
import { SAFETENSORS_DTYPES } from "../readers/dtypes.js";
import type { SourceTensor } from "../readers/source-tensor.js";
import { convertFloats, countNonFinite, decodeFloats, encodeFloats } from "./float.js";
import { UserError } from "../errors.js";
import { GgmlType, ggmlTypeName } from "./ggml-types.js";
import { dequantizeRows, quantizeRows } from "./kernels.js";
import { TernaryScan } from "./ternary.js";
import type { KernelPool } from "./pool.js";

/** Value problems found while encoding a tensor, reported as warnings. */
interface EncodingStats {
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

interface EncodeOptions {
  /** Runs the block quantizers; required for block-quantized types. */
  readonly pool?: KernelPool;
  /** Quantize non-ternary weights to TQ1_0/TQ2_0 anyway (lossy); otherwise they are refused. */
  readonly allowLossyTernary?: boolean;
}

/**
 * Reads a planned tensor's source and yields it encoded in its output type,
 * a chunk of whole rows at a time, counting value problems into `stats`.
 */
export async function* encodeTensor(tensor: PlannedTensor, stats: EncodingStats, options: EncodeOptions = {}): AsyncGenerator<Uint8Array> {
  const { pool } = options;
  const floatOutput = FLOAT_OUTPUT[tensor.type];
  const origin = tensor.origin;
  const rowLength = tensor.shape.at(-1) ?? 1;
  if (origin.kind === "generated") {
    yield floatOutput ? encodeFloats(origin.values, floatOutput) : await quantizer(pool)(tensor.type, origin.values, rowLength);
    return;
  }
  const source = origin.tensor;
  // Shifted values are float32, or F16 for F16 sources (see `shifted`).
  const dtype: FloatDtype = origin.add === undefined || source.dtype === "F16" ? source.dtype : "F32";
  const chunks = origin.add === undefined ? sourceChunks(source, origin.ropeHeads) : shifted(sourceChunks(source, origin.ropeHeads), source.dtype, origin.add);
  if (floatOutput) {
    for await (const raw of chunks) {
      const nonFinite = countNonFinite(raw, dtype);
      stats.nonFiniteInSource += nonFinite;
      const encoded = convertFloats(raw, dtype, floatOutput);
      if (encoded !== raw) stats.overflowed += countNonFinite(encoded, floatOutput) - nonFinite;
      yield encoded;
    }
    return;
  }
  // Quantize chunk k on the workers while chunk k+1 is read and decoded here.
  const quantize = quantizer(pool);
  const ternaryGuard = TERNARY_TYPES.has(tensor.type) && !options.allowLossyTernary ? new TernaryGuard(tensor) : undefined;
  let inFlight: Promise<Uint8Array> | undefined;
  for await (const raw of chunks) {
    stats.nonFiniteInSource += countNonFinite(raw, dtype);
    const values = decodeFloats(raw, dtype);
    ternaryGuard?.check(values, rowLength);
    const next = quantize(tensor.type, values, rowLength);
    if (inFlight) yield await inFlight;
    inFlight = next;
  }
  if (inFlight) yield await inFlight;
}

const TERNARY_TYPES: ReadonlySet<GgmlType> = new Set([GgmlType.TQ1_0, GgmlType.TQ2_0]);

/**
 * TQ1_0/TQ2_0 are lossless only for weights that are already {-s, 0, +s}. A tensor that is
 * not is refused with what ternarising it would cost, measured with the real kernels.
 */
class TernaryGuard {
  private readonly scan = new TernaryScan();

  constructor(private readonly tensor: PlannedTensor) {}

  check(values: Float32Array, rowLength: number) {
    if (this.scan.check(values)) return;
    const restored = dequantizeRows(this.tensor.type, quantizeRows(this.tensor.type, values, rowLength), values.length);
    let error = 0;
    let energy = 0;
    for (let i = 0; i < values.length; i++) {
      error += (restored[i]! - values[i]!) ** 2;
      energy += values[i]! ** 2;
    }
    const relative = energy === 0 ? 0 : Math.sqrt(error / energy);
    const source = this.tensor.origin.kind === "source" ? this.tensor.origin.tensor : undefined;
    throw new UserError(
      `not ternary: its weights are not all -s, 0 or +s, so ${ggmlTypeName(this.tensor.type)} would change them by ${(100 * relative).toFixed(1)}% (relative RMS error). ` +
        "1.58-bit output is lossless only for ternary checkpoints (BitNet b1.58, BitCPM, ternary fine-tunes); for a normally trained model use --bits 4 (q4_k_m), " +
        "or pass --allow-lossy-ternary to quantize it anyway",
      { ...(source ? { file: source.file } : {}), tensor: source?.name ?? this.tensor.name },
    );
  }
}

function quantizer(pool: KernelPool | undefined): KernelPool["quantizeRows"] {
  if (!pool) throw new Error("internal: block quantization needs a kernel pool");
  return (type, values, rowLength) => pool.quantizeRows(type, values, rowLength);
}

/**
 * Adds `add` to every value as llama.cpp's converter does in torch: BF16 is widened to float32
 * first, F16 stays F16 (the sum is rounded back to F16). Chunks come out in float32, or F16 for F16.
 */
async function* shifted(chunks: AsyncGenerator<Uint8Array>, dtype: FloatDtype, add: number): AsyncGenerator<Uint8Array> {
  for await (const raw of chunks) {
    const values = decodeFloats(raw, dtype);
    for (let i = 0; i < values.length; i++) values[i] = values[i]! + add;
    yield dtype === "F16" ? encodeFloats(values, "F16") : encodeFloats(values, "F32");
  }
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
function interleaveRopeRows(raw: Uint8Array, shape: readonly number[], heads: number, elementBytes: number): Uint8Array {
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
