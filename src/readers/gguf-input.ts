import { open, type FileHandle } from "node:fs/promises";
import { GGUFValueType } from "@huggingface/gguf";
import { UserError } from "../errors.js";
import { GgmlType, ggmlTypeName, tensorBytes } from "../quant/ggml-types.js";
import type { GgufMetadata, GgufValue } from "../writers/gguf/metadata.js";
import type { FloatDtype } from "./dtypes.js";
import { readGgufHeader } from "./gguf-header.js";
import { readFully } from "./read-fully.js";
import { checkRowLength, type SourceTensor } from "./source-tensor.js";

const FLOAT_TYPES: Partial<Record<GgmlType, FloatDtype>> = { [GgmlType.F32]: "F32", [GgmlType.F16]: "F16", [GgmlType.BF16]: "BF16" };

/** An F32/F16/BF16 GGUF to re-quantize: its metadata as written, its tensors read on demand. */
export interface GgufInput {
  readonly path: string;
  readonly metadata: GgufMetadata;
  readonly tensors: readonly SourceTensor[];
  close(): Promise<void>;
}

export async function openGgufInput(path: string): Promise<GgufInput> {
  const parsed = await readGgufHeader(path);
  const metadata: GgufMetadata = new Map();
  for (const [key, entry] of Object.entries(parsed.typedMetadata)) {
    if (key === "version" || key === "tensor_count" || key === "kv_count") continue;
    metadata.set(key, toValue(key, entry as { value: unknown; type: GGUFValueType; subType?: GGUFValueType }, path));
  }
  checkAlignment(metadata, path);
  const dataStart = Number(parsed.tensorDataOffset);
  // Every tensor's type is checked before the file is opened, so a refusal leaks no handle.
  const floats = parsed.tensorInfos.map((info) => {
    const type = info.dtype as unknown as GgmlType;
    const dtype = FLOAT_TYPES[type];
    if (!dtype) {
      throw new UserError(`tensor is already ${ggmlTypeName(type)}: edgequant quantizes from F32, F16 or BF16 only (re-quantizing compounds the error)`, {
        file: path,
        tensor: info.name,
      });
    }
    checkRowLength(info.shape.map(Number).reverse(), { file: path, tensor: info.name });
    return { info, type, dtype };
  });
  const handle: FileHandle = await open(path, "r");
  const tensors = floats.map(({ info, type, dtype }): SourceTensor => {
    const shape = info.shape.map(Number).reverse();
    const fileOffset = dataStart + Number(info.offset);
    return {
      name: info.name,
      file: path,
      dtype,
      shape,
      byteLength: tensorBytes(type, shape),
      read: (offset, length) => readFully(handle, fileOffset + offset, length, { file: path, tensor: info.name }),
    };
  });
  return { path, metadata, tensors, close: () => handle.close() };
}

/** The writer pads to the input's alignment, so it is checked here as llama.cpp's gguf.cpp checks it. */
function checkAlignment(metadata: GgufMetadata, file: string): void {
  const value = metadata.get("general.alignment")?.value;
  if (value === undefined) return;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value <= 0 || (value & (value - 1)) !== 0 || value > 1 << 30) {
    throw new UserError(`metadata key 'general.alignment' must be a power of two, got ${JSON.stringify(value)}`, { file });
  }
}

function toValue(key: string, entry: { value: unknown; type: GGUFValueType; subType?: GGUFValueType }, file: string): GgufValue {
  if (entry.type !== GGUFValueType.ARRAY) return { type: entry.type, value: entry.value } as GgufValue;
  if (entry.subType === undefined || entry.subType === GGUFValueType.ARRAY) {
    throw new UserError(`metadata key '${key}' is a nested array, which edgequant does not carry over`, { file });
  }
  return { type: GGUFValueType.ARRAY, itemType: entry.subType, value: entry.value } as GgufValue;
}
