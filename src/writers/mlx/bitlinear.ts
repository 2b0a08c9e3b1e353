/**
 * Encodes a ternary linear weight as mlx-lm's BitLinear stores it (layout: ../../plan/mlx-bitlinear.ts):
 * the ternary values, cast to the model's float dtype, become codes trit + 1 packed four to a byte
 * along the output dimension (row r of out rows at bits 2 * floor(r / (out / 4)) of packed row
 * r mod out / 4), and their one magnitude s the weight_scale. Rows are read a chunk at a time; the
 * packed tensor (a sixteenth of the float32 weight) is filled in memory, since every chunk of rows
 * touches bits of every packed byte row, and written once.
 */

import { UserError } from "../../errors.js";
import { SAFETENSORS_DTYPES } from "../../readers/dtypes.js";
import { convertFloats, countNonFinite, decodeFloats, encodeFloats } from "../../quant/float.js";
import { TernaryScan } from "../../quant/ternary.js";
import type { MlxUnit } from "../../plan/mlx.js";
import { CHUNK_VALUES, writeAt, type EncodeContext, type UnitResult } from "./encode.js";

export async function encodeBitLinear(unit: MlxUnit, context: EncodeContext): Promise<UnitResult> {
  const { source, dtype } = unit;
  const [rows, columns] = source.shape as [number, number];
  const packedRows = rows / 4;
  const packed = new Uint8Array(packedRows * columns);
  const sourceBytes = SAFETENSORS_DTYPES[source.dtype].bytes;
  const rowsPerChunk = Math.max(1, Math.floor(CHUNK_VALUES / columns));
  const scan = new TernaryScan();
  let nonFiniteInSource = 0;
  for (let row = 0; row < rows; row += rowsPerChunk) {
    const chunkRows = Math.min(rowsPerChunk, rows - row);
    const raw = await source.read(row * columns * sourceBytes, chunkRows * columns * sourceBytes);
    nonFiniteInSource += countNonFinite(raw, source.dtype);
    const values = decodeFloats(convertFloats(raw, source.dtype, dtype), dtype);
    if (!scan.check(values)) {
      throw new UserError(`a BitLinear weight must be ternary (0 or ±s) once ternarised, but it holds ${scan.offender}${scan.scale === undefined ? "" : ` besides 0 and ±${scan.scale}`}`, {
        file: source.file,
        tensor: source.name,
      });
    }
    for (let r = 0; r < chunkRows; r++) {
      const target = row + r;
      const shift = 2 * Math.floor(target / packedRows);
      const base = (target % packedRows) * columns;
      const offset = r * columns;
      for (let c = 0; c < columns; c++) {
        const v = values[offset + c]!;
        packed[base + c]! |= (v === 0 ? 1 : v > 0 ? 2 : 0) << shift;
      }
    }
    context.onChunk(chunkRows * columns * sourceBytes);
  }
  const weight = unit.outputs[0]!;
  const weightScale = unit.outputs[1]!;
  await writeAt(context, weight.name, 0, packed);
  // An all-zero weight has no magnitude; mlx-lm's own initial weight_scale is 1.
  await writeAt(context, weightScale.name, 0, encodeFloats(Float32Array.of(scan.scale ?? 1), dtype));
  return { nonFiniteInSource, overflowed: 0 };
}
