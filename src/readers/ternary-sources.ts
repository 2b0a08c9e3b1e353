import { UserError } from "../errors.js";
import { absmeanTernarise } from "../quant/ternary.js";
import { convertFloats, decodeFloats, encodeFloats } from "../quant/float.js";
import type { Checkpoint, CheckpointTensor } from "./checkpoint.js";
import { isFloatDtype } from "./dtypes.js";
import type { SourceTensor } from "./source-tensor.js";

/**
 * A BitNet b1.58 packed linear weight (as in
 * microsoft/bitnet-b1.58-2B-4T): uint8 [out/4, in], where row block k of the
 * output (rows k*out/4 ... (k+1)*out/4 - 1) sits at bits 2k..2k+1 of each byte,
 * code - 1 is the trit, and `weight_scale` holds 1/s. Unpacked to F32 on read:
 * (code - 1) / weight_scale, as transformers' BitLinear computes its weight.
 */
export function packedBitnetSource(weight: CheckpointTensor, scale: CheckpointTensor): SourceTensor {
  const [packedRows, columns] = weight.shape as [number, number];
  if (weight.dtype !== "U8" || weight.shape.length !== 2) {
    throw new UserError(`a packed BitNet weight must be U8 [out/4, in], got ${weight.dtype} [${weight.shape.join(", ")}]`, { file: weight.file.path, tensor: weight.name });
  }
  if (!isFloatDtype(scale.dtype) || scale.shape.reduce((a, b) => a * b, 1) !== 1) {
    throw new UserError(`weight_scale must be one float, got ${scale.dtype} [${scale.shape.join(", ")}]`, { file: scale.file.path, tensor: scale.name });
  }
  const rows = packedRows * 4;
  let inverseScale: number | undefined;
  return {
    name: weight.name,
    file: weight.file.path,
    dtype: "F32",
    shape: [rows, columns],
    byteLength: rows * columns * 4,
    async read(offset, length) {
      inverseScale ??= decodeFloats(await scale.file.read(scale.name), scale.dtype as "F32" | "F16" | "BF16")[0]!;
      const rowBytes = columns * 4;
      const firstRow = offset / rowBytes;
      const count = length / rowBytes;
      const out = new Float32Array(count * columns);
      for (let r = 0; r < count; r++) {
        const row = firstRow + r;
        const shift = 2 * Math.floor(row / packedRows);
        const packed = await weight.file.readRange(weight.fileOffset + (row % packedRows) * columns, columns, weight.name);
        // A float64 quotient of two float32s, stored to float32, is the float32 quotient.
        for (let c = 0; c < columns; c++) out[r * columns + c] = (((packed[c]! >> shift) & 3) - 1) / inverseScale;
      }
      return new Uint8Array(out.buffer);
    },
  };
}

/**
 * A BitNet master weight, ternarised as the model does on the fly (absmean over the
 * whole tensor) and rounded back to the checkpoint's dtype, as llama.cpp's converter
 * does. The mean needs the whole tensor: it is read once, kept while its chunks are
 * read in order, and released with the last one.
 */
export function absmeanTernarySource(source: SourceTensor): SourceTensor {
  let ternarised: Promise<Uint8Array> | undefined;
  return {
    ...source,
    async read(offset, length) {
      ternarised ??= source.read(0, source.byteLength).then((raw) => {
        const values = absmeanTernarise(decodeFloats(raw, source.dtype));
        return convertFloats(encodeFloats(values, "F32"), "F32", source.dtype);
      });
      const chunk = (await ternarised).subarray(offset, offset + length);
      if (offset + length === source.byteLength) ternarised = undefined;
      return chunk;
    },
  };
}

/** A BitNet linear weight as the model computes with it, from a checkpoint of either layout (src/arch/ternary-layout.ts). */
export function bitnetLinearSource(checkpoint: Checkpoint, weight: CheckpointTensor, layout: "packed" | "absmean"): SourceTensor {
  if (layout === "absmean") return absmeanTernarySource(weight.file.sourceTensor(weight));
  const scale = checkpoint.tensors.get(`${weight.name}_scale`);
  if (!scale) throw new UserError(`packed BitNet weight without its '${weight.name}_scale'`, { file: weight.file.path, tensor: weight.name });
  return packedBitnetSource(weight, scale);
}
