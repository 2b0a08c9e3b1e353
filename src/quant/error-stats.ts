import { open } from "node:fs/promises";
import { basename } from "node:path";
import { readGgufHeader } from "../readers/gguf-header.js";
import { resolveArchitecture } from "../arch/index.js";
import { UserError } from "../errors.js";
import { planFromCheckpoint, planFromGguf, type PlannedTensor } from "../plan/gguf.js";
import { openCheckpoint } from "../readers/checkpoint.js";
import { openGgufInput } from "../readers/gguf-input.js";
import { readFully } from "../readers/read-fully.js";
import { encodeTensor } from "./encode-tensor.js";
import { decodeFloats } from "./float.js";
import { GgmlType, ggmlTypeName, tensorBytes } from "./ggml-types.js";
import { dequantizeRows } from "./kernels.js";
import { resolveScheme } from "./schemes.js";

export interface TensorError {
  readonly name: string;
  readonly type: string;
  readonly rmse: number;
  readonly maxAbsError: number;
  /** RMSE divided by the RMS of the source values. */
  readonly relativeRmse: number;
}

/**
 * Dequantizes every tensor of a GGUF we wrote and compares it with the
 * source it came from (a checkpoint folder or an F32/F16/BF16 GGUF), one tensor
 * in memory at a time.
 */
export async function quantizationError(ggufPath: string, sourcePath: string): Promise<TensorError[]> {
  const parsed = await readGgufHeader(ggufPath);
  const handle = await open(ggufPath, "r");
  const f32 = resolveScheme({ scheme: "f32" });
  const source = sourcePath.endsWith(".gguf") ? await openGgufInput(sourcePath) : await openCheckpoint(sourcePath);
  try {
    const planned = "path" in source
      ? planFromGguf(source, f32).tensors
      : planFromCheckpoint(source, resolveArchitecture(source.config, source.configFile), f32, basename(source.directory)).tensors;
    const reference = new Map(planned.map((tensor) => [tensor.name, tensor]));
    const results: TensorError[] = [];
    for (const info of parsed.tensorInfos) {
      const original = reference.get(info.name);
      if (!original) throw new UserError(`the source has no tensor '${info.name}': is it the model this file was converted from?`, { file: sourcePath });
      const type = info.dtype as unknown as GgmlType;
      const shape = info.shape.map(Number).reverse();
      const bytes = await readFully(handle, Number(parsed.tensorDataOffset + info.offset), tensorBytes(type, shape), { file: ggufPath, tensor: info.name });
      results.push(compare(info.name, type, dequantize(type, bytes, shape), await referenceValues(original)));
    }
    return results;
  } finally {
    await handle.close();
    await source.close();
  }
}

function dequantize(type: GgmlType, bytes: Uint8Array, shape: readonly number[]): Float32Array {
  if (type === GgmlType.F32) return decodeFloats(bytes, "F32");
  if (type === GgmlType.F16) return decodeFloats(bytes, "F16");
  if (type === GgmlType.BF16) return decodeFloats(bytes, "BF16");
  return dequantizeRows(type, bytes, shape.reduce((a, b) => a * b, 1));
}

/** The source tensor in F32, in the GGUF's layout (RoPE rows interleaved where llama.cpp wants them). */
async function referenceValues(tensor: PlannedTensor): Promise<Float32Array> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of encodeTensor({ ...tensor, type: GgmlType.F32 }, { nonFiniteInSource: 0, overflowed: 0 })) chunks.push(chunk);
  return decodeFloats(Buffer.concat(chunks), "F32");
}

function compare(name: string, type: GgmlType, actual: Float32Array, expected: Float32Array): TensorError {
  let squaredError = 0;
  let squaredSource = 0;
  let maxAbsError = 0;
  for (let i = 0; i < expected.length; i++) {
    const error = actual[i]! - expected[i]!;
    squaredError += error * error;
    squaredSource += expected[i]! * expected[i]!;
    maxAbsError = Math.max(maxAbsError, Math.abs(error));
  }
  const rmse = Math.sqrt(squaredError / expected.length);
  const rms = Math.sqrt(squaredSource / expected.length);
  return { name, type: ggmlTypeName(type), rmse, maxAbsError, relativeRmse: rms === 0 ? 0 : rmse / rms };
}
