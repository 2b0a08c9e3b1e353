/**
 * Source tensor -> ONNX initializers, streamed: rows are read, converted and written
 * a chunk at a time (a whole tensor only where it must be transposed for MatMul).
 */
import { UserError } from "../../errors.js";
import { countNonFinite, decodeFloats, encodeFloats } from "../../quant/float.js";
import type { SourceTensor } from "../../readers/source-tensor.js";
import { bytesOf, type ExternalData } from "./external-data.js";
import { kBlocks, quantizeNBits, zeroPointRowBytes, type NBitsLayout, type NBitsMethod } from "./nbits.js";
import { ElementType, type TensorProto } from "./proto.js";
import { TernaryScan } from "../../quant/ternary.js";

/** Source bytes per chunk. */
const CHUNK_BYTES = 16 << 20;

export type FloatStorage = "F32" | "F16";

const STORAGE_TYPE: Record<FloatStorage, ElementType> = { F32: ElementType.FLOAT, F16: ElementType.FLOAT16 };

/** Counts of value problems, turned into warnings by the converter. */
export interface ValueStats {
  nonFinite: number;
  overflowedToF16: number;
}

function elementBytes(source: SourceTensor): number {
  const count = source.shape.reduce((a, b) => a * b, 1);
  return count === 0 ? 4 : source.byteLength / count;
}

/** Whole rows of the tensor as float32, about CHUNK_BYTES of source at a time. */
async function* floatRows(source: SourceTensor, stats?: ValueStats): AsyncGenerator<{ firstRow: number; rows: number; values: Float32Array }> {
  const rowLength = source.shape.at(-1) ?? 1;
  const totalRows = source.shape.slice(0, -1).reduce((a, b) => a * b, 1);
  const rowBytes = rowLength * elementBytes(source);
  const perChunk = Math.max(1, Math.floor(CHUNK_BYTES / Math.max(1, rowBytes)));
  for (let row = 0; row < totalRows; row += perChunk) {
    const rows = Math.min(perChunk, totalRows - row);
    const raw = await source.read(row * rowBytes, rows * rowBytes);
    if (stats) stats.nonFinite += countNonFinite(raw, source.dtype);
    yield { firstRow: row, rows, values: decodeFloats(raw, source.dtype) };
  }
}

function encodeStorage(values: Float32Array, storage: FloatStorage, stats?: ValueStats): Uint8Array {
  if (storage === "F32") return bytesOf(values);
  const encoded = encodeFloats(values, "F16");
  if (stats) stats.overflowedToF16 += countNonFinite(encoded, "F16") - countNonFiniteF32(values);
  return encoded;
}

function countNonFiniteF32(values: Float32Array): number {
  let count = 0;
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i]!)) count++;
  return count;
}

/** The tensor as it is stored (same shape), in `storage`. */
export async function writeFloatTensor(writer: ExternalData, name: string, source: SourceTensor, storage: FloatStorage, stats?: ValueStats): Promise<TensorProto> {
  return writer.write(name, STORAGE_TYPE[storage], source.shape, mapChunks(floatRows(source, stats), ({ values }) => encodeStorage(values, storage, stats)));
}

/** Values computed here (rotary caches), written as float32. */
export async function writeComputed(writer: ExternalData, name: string, dims: readonly number[], values: Float32Array): Promise<TensorProto> {
  return writer.write(name, ElementType.FLOAT, dims, [bytesOf(values)]);
}

/**
 * A PyTorch Linear weight [N, K] as MatMul's right-hand side [K, N]. Transposing needs
 * the whole tensor, so this holds it once as float32 (the only whole-tensor step).
 */
export async function writeTransposed(writer: ExternalData, name: string, source: SourceTensor, storage: FloatStorage, stats?: ValueStats): Promise<TensorProto> {
  const [n, k] = source.shape as [number, number];
  const perChunk = Math.max(1, Math.floor(CHUNK_BYTES / 4 / n));
  // Read when the writer asks for the bytes (never, when only the layout is planned).
  async function* chunks(): AsyncGenerator<Uint8Array> {
    const raw = await source.read(0, source.byteLength);
    if (stats) stats.nonFinite += countNonFinite(raw, source.dtype);
    const values = decodeFloats(raw, source.dtype);
    for (let first = 0; first < k; first += perChunk) {
      const rows = Math.min(perChunk, k - first);
      const out = new Float32Array(rows * n);
      for (let r = 0; r < rows; r++) {
        const column = first + r;
        for (let i = 0; i < n; i++) out[r * n + i] = values[i * k + column]!;
      }
      yield encodeStorage(out, storage, stats);
    }
  }
  return writer.write(name, STORAGE_TYPE[storage], [k, n], chunks());
}

interface NBitsTensors {
  readonly b: TensorProto;
  readonly scales: TensorProto;
  readonly zeroPoints?: TensorProto;
}

/**
 * A Linear weight [N, K] as MatMulNBits' B [N, kBlocks, blob], scales and (for ternary) zero
 * points; `flat` writes B as [N, kBlocks * blob] for GatherBlockQuantized (same bytes).
 */
export async function writeNBits(
  writer: ExternalData,
  baseName: string,
  source: SourceTensor,
  layout: NBitsLayout,
  method: NBitsMethod,
  stats?: ValueStats,
  options: { flat?: boolean } = {},
): Promise<NBitsTensors> {
  const perRow = kBlocks(layout);
  const scales = new Float32Array(layout.n * perRow);
  const zpRow = zeroPointRowBytes(layout);
  // Known from the method alone, so a planned layout has the same tensors as a written one.
  const zeroPoints = method.kind === "ternary" ? new Uint8Array(layout.n * zpRow) : undefined;
  const data = mapChunks(floatRows(source, stats), ({ firstRow, rows, values }) => {
    const quantized = quantizeNBits(values, layout, method);
    scales.set(quantized.scales, firstRow * perRow);
    if (Boolean(quantized.zeroPoints) !== Boolean(zeroPoints)) throw new Error(`internal: ${method.kind} zero points not as planned`);
    if (quantized.zeroPoints) zeroPoints!.set(quantized.zeroPoints, firstRow * zpRow);
    return quantized.data;
  });
  const blob = (layout.blockSize * layout.bits) / 8;
  const b = await writer.write(`${baseName}.qweight`, ElementType.UINT8, options.flat ? [layout.n, perRow * blob] : [layout.n, perRow, blob], data);
  const scalesProto = await writer.write(`${baseName}.scales`, ElementType.FLOAT, [layout.n, perRow], [bytesOf(scales)]);
  if (!zeroPoints) return { b, scales: scalesProto };
  const zp = await writer.write(`${baseName}.qzeros`, ElementType.UINT8, [layout.n, zpRow], [zeroPoints]);
  return { b, scales: scalesProto, zeroPoints: zp };
}

/** One pass over the tensor: its ternary scale if every value is in {-s, 0, +s}, else its mean |w|. */
export async function ternaryStatistics(source: SourceTensor): Promise<{ exact: number | undefined; absMean: number }> {
  const scan = new TernaryScan();
  let sum = 0;
  let count = 0;
  for await (const { values } of floatRows(source)) {
    scan.check(values);
    for (let i = 0; i < values.length; i++) sum += Math.abs(values[i]!);
    count += values.length;
  }
  return { exact: scan.exactScale, absMean: count === 0 ? 0 : sum / count };
}

async function* mapChunks<T>(input: AsyncIterable<T>, map: (item: T) => Uint8Array): AsyncGenerator<Uint8Array> {
  for await (const item of input) yield map(item);
}

export function expectShape(source: SourceTensor, shape: readonly number[]): void {
  if (source.shape.length !== shape.length || source.shape.some((d, i) => d !== shape[i])) {
    throw new UserError(`expected shape [${shape.join(", ")}], found [${source.shape.join(", ")}]`, { file: source.file, tensor: source.name });
  }
}
