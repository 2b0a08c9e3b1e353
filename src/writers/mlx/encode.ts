/**
 * Encodes one planned unit into its shard, a chunk of rows at a time: only a
 * few megabytes of one tensor are in memory, whatever the model's size. Each
 * output (weight, scales, biases) has a known place in the file, so every chunk
 * is written straight to its position.
 */

import type { FileHandle } from "node:fs/promises";
import { UserError } from "../../errors.js";
import { SAFETENSORS_DTYPES, type FloatDtype } from "../../readers/dtypes.js";
import { convertFloats, countNonFinite, decodeFloats, encodeFloats } from "../../quant/float.js";
import { affineQuantize, type AffineGroups, type MlxBits } from "./affine.js";
import { writeFully } from "../write-fully.js";
import { packBits, packedWords } from "./pack.js";
import type { MlxUnit, OutputTensor } from "../../plan/mlx.js";
import { TernaryScan } from "../../quant/ternary.js";
import { encodeLossyTernary, encodeTernary } from "./ternary.js";
import { encodeBitLinear } from "./bitlinear.js";

/** Source values per chunk: 4 Mi values, 16 MiB as float32. */
export const CHUNK_VALUES = 1 << 22;

export interface UnitResult {
  /** NaN / ±Inf in the source. */
  readonly nonFiniteInSource: number;
  /** Finite source values that the cast to a narrower float dtype turned into ±Inf. */
  readonly overflowed: number;
  /** Set when a ternary unit turned out not to be ternary and was ternarized lossily. */
  readonly lossyTernary?: { readonly firstOffender: number };
}

export interface EncodeContext {
  readonly handle: FileHandle;
  readonly offsets: ReadonlyMap<string, number>;
  readonly allowLossyTernary: boolean;
  /** Called with the source bytes consumed by each chunk. */
  readonly onChunk: (sourceBytes: number) => void;
}

export async function encodeUnit(unit: MlxUnit, context: EncodeContext): Promise<UnitResult> {
  if (unit.encoding.kind === "bitlinear") return encodeBitLinear(unit, context);
  if (unit.encoding.kind !== "ternary") return encodePass(unit, context, "direct");
  try {
    return await encodePass(unit, context, "exact-ternary");
  } catch (error) {
    if (!(error instanceof NotTernary)) throw error;
    if (!context.allowLossyTernary) {
      throw new UserError(
        `--bits 1.58 needs a ternary checkpoint (every linear weight of the decoder layers 0 or ±s), but this tensor holds ${error.value} ` +
          `besides ${error.scale === undefined ? "zeros" : `0 and ±${error.scale}`}. Use --bits 2 for MLX's 2-bit quantization, ` +
          "or allow lossy ternarization (allowLossyTernary) to round every weight to {-s, 0, +s} per group",
        { file: unit.source.file, tensor: unit.source.name },
      );
    }
    const result = await encodePass(unit, context, "lossy-ternary");
    return { ...result, lossyTernary: { firstOffender: error.value } };
  }
}

class NotTernary extends Error {
  constructor(
    readonly value: number,
    readonly scale: number | undefined,
  ) {
    super("not ternary");
  }
}

type Pass = "direct" | "exact-ternary" | "lossy-ternary";

async function encodePass(unit: MlxUnit, context: EncodeContext, pass: Pass): Promise<UnitResult> {
  const { source, dtype, encoding } = unit;
  const [rows, columns] = source.shape.length >= 2 ? [source.shape[0]!, source.shape.slice(1).reduce((a, b) => a * b, 1)] : [1, source.shape[0] ?? 1];
  const sourceBytesPerValue = bytesPerValue(source.dtype);
  const rowsPerChunk = Math.max(1, Math.floor(CHUNK_VALUES / Math.max(1, columns)));
  const scan = new TernaryScan();
  let nonFiniteInSource = 0;
  let overflowed = 0;

  for (let row = 0; row < rows; row += rowsPerChunk) {
    const chunkRows = Math.min(rowsPerChunk, rows - row);
    const count = chunkRows * columns;
    const raw = await source.read(row * columns * sourceBytesPerValue, count * sourceBytesPerValue);
    const sourceNonFinite = countNonFinite(raw, source.dtype);
    nonFiniteInSource += sourceNonFinite;
    const cast = convertFloats(raw, source.dtype, dtype);
    if (dtype !== source.dtype) overflowed += Math.max(0, countNonFinite(cast, dtype) - sourceNonFinite);

    if (encoding.kind === "float" || encoding.kind === "bitlinear") {
      await writeAt(context, unit.outputs[0]!.name, row * columns * bytesPerValue(dtype), cast);
    } else {
      const values = decodeFloats(cast, dtype);
      const groupSize = encoding.groupSize;
      const bits: MlxBits = encoding.kind === "affine" ? encoding.bits : 2;
      const groups = count / groupSize;
      const buffers: AffineGroups = { q: new Uint8Array(count), scales: new Float32Array(groups), biases: new Float32Array(groups) };
      if (pass === "direct") {
        affineQuantize(values, groupSize, bits, buffers);
      } else if (pass === "exact-ternary") {
        if (!scan.check(values)) throw new NotTernary(scan.offender!, scan.scale);
        encodeTernary(values, scan.scale ?? 0, groupSize, buffers);
        if (scan.scale === undefined) buffers.biases.fill(0);
      } else {
        encodeLossyTernary(values, groupSize, roundTo(dtype), buffers);
      }
      const words = new Uint32Array(packedWords(count, bits));
      packBits(buffers.q, bits, words);
      const wordsPerRow = packedWords(columns, bits);
      const groupsPerRow = columns / groupSize;
      const [weight, scales, biases] = unit.outputs as unknown as readonly [OutputTensor, OutputTensor, OutputTensor];
      await writeAt(context, weight.name, row * wordsPerRow * 4, new Uint8Array(words.buffer));
      await writeAt(context, scales.name, row * groupsPerRow * bytesPerValue(dtype), encodeFloats(buffers.scales, dtype));
      await writeAt(context, biases.name, row * groupsPerRow * bytesPerValue(dtype), encodeFloats(buffers.biases, dtype));
    }
    context.onChunk(count * sourceBytesPerValue);
  }
  return { nonFiniteInSource, overflowed };
}

function roundTo(dtype: FloatDtype): (x: number) => number {
  return (x) => decodeFloats(encodeFloats(Float32Array.of(x), dtype), dtype)[0]!;
}

function bytesPerValue(dtype: FloatDtype): number {
  return SAFETENSORS_DTYPES[dtype].bytes;
}

export async function writeAt(context: EncodeContext, output: string, offsetInTensor: number, bytes: Uint8Array): Promise<void> {
  const start = context.offsets.get(output);
  if (start === undefined) throw new Error(`no place planned for ${output}`);
  await writeFully(context.handle, bytes, start + offsetInTensor);
}
