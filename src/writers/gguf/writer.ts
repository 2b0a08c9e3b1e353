import { ggmlTypeName, tensorBytes, type GgmlType } from "../../quant/ggml-types.js";
import { writeAtomically } from "../atomic-file.js";
import { writeFully } from "../write-fully.js";
import { HeaderEncoder } from "./encode.js";
import type { GgufMetadata } from "./metadata.js";

const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
const GGUF_VERSION = 3;
export const DEFAULT_ALIGNMENT = 32;

/** A tensor's header entry. */
export interface GgufTensorEntry {
  readonly name: string;
  readonly type: GgmlType;
  /** PyTorch order, outermost first; GGUF stores the reverse (ggml's ne[0] is the row length). */
  readonly shape: readonly number[];
}

/** A tensor to write: its header entry, and a function that produces its bytes, in order, when its turn comes. */
export interface GgufTensorPlan extends GgufTensorEntry {
  /** Chunks of the tensor's bytes; chunking keeps memory bounded below the tensor's size. */
  readonly produce: () => AsyncIterable<Uint8Array>;
}

interface GgufWriteOptions {
  /** Called after each tensor's bytes reach the file, e.g. for progress. */
  onTensorWritten?: (tensor: GgufTensorPlan, bytes: number) => void;
}

/**
 * Writes a GGUF v3 file. Tensor data is produced and written chunk by chunk,
 * so memory stays bounded by the largest chunk. The header is written
 * first, which is possible because each tensor's size follows from its type
 * and shape alone.
 */
export async function writeGguf(
  path: string,
  metadata: GgufMetadata,
  tensors: readonly GgufTensorPlan[],
  options: GgufWriteOptions = {},
): Promise<{ bytes: number }> {
  const alignment = alignmentOf(metadata);
  const { header, sizes } = encodeHeader(metadata, tensors, alignment);
  return writeAtomically(path, async (handle) => {
    let position = await writeFully(handle, header, 0);
    for (const [i, tensor] of tensors.entries()) {
      let written = 0;
      for await (const chunk of tensor.produce()) {
        position = await writeFully(handle, chunk, position);
        written += chunk.byteLength;
      }
      if (written !== sizes[i]) {
        throw new Error(`internal: tensor '${tensor.name}' produced ${written} bytes, its ${ggmlTypeName(tensor.type)} header says ${sizes[i]}`);
      }
      position = await writeFully(handle, new Uint8Array(padding(position, alignment)), position);
      options.onTensorWritten?.(tensor, written);
    }
    return { bytes: position };
  });
}

/**
 * The file `writeGguf` writes for these keys and tensors, without their data: the exact header
 * bytes, where each tensor's data starts (relative to the data section) and the file's size.
 */
export function ggufLayout(metadata: GgufMetadata, tensors: readonly GgufTensorEntry[]): { header: Uint8Array; offsets: number[]; fileBytes: number } {
  const alignment = alignmentOf(metadata);
  const { header, sizes } = encodeHeader(metadata, tensors, alignment);
  const offsets: number[] = [];
  let position = 0;
  for (const size of sizes) {
    offsets.push(position);
    position += size + padding(position + size, alignment);
  }
  return { header, offsets, fileBytes: header.byteLength + position };
}

function alignmentOf(metadata: GgufMetadata): number {
  const entry = metadata.get("general.alignment");
  if (!entry) return DEFAULT_ALIGNMENT;
  if (typeof entry.value !== "number" || entry.value <= 0 || (entry.value & (entry.value - 1)) !== 0) {
    throw new Error(`internal: general.alignment must be a power of two, got ${String(entry.value)}`);
  }
  return entry.value;
}

function encodeHeader(metadata: GgufMetadata, tensors: readonly GgufTensorEntry[], alignment: number) {
  const out = new HeaderEncoder();
  out.u32(GGUF_MAGIC);
  out.u32(GGUF_VERSION);
  out.u64(tensors.length);
  out.u64(metadata.size);
  for (const [key, value] of metadata) {
    out.string(key);
    out.u32(value.type);
    out.value(value);
  }
  const sizes: number[] = [];
  let offset = 0;
  for (const tensor of tensors) {
    const bytes = tensorBytes(tensor.type, tensor.shape);
    sizes.push(bytes);
    out.string(tensor.name);
    out.u32(tensor.shape.length);
    for (const dim of [...tensor.shape].reverse()) out.u64(dim);
    out.u32(tensor.type);
    out.u64(offset);
    offset += bytes + padding(offset + bytes, alignment);
  }
  out.padTo(alignment);
  return { header: out.finish(), sizes };
}

function padding(position: number, alignment: number): number {
  return (alignment - (position % alignment)) % alignment;
}
