import type { FileHandle } from "node:fs/promises";
import { writeFully } from "../write-fully.js";
import { ELEMENT_BYTES, externalTensor, type ElementType, type TensorProto } from "./proto.js";

/** Offsets of large tensors are page-aligned so that ONNX Runtime can memory-map them. */
const PAGE = 4096;
const LARGE = 1 << 16;
const SMALL_ALIGN = 64;

/**
 * Appends initializers' bytes to the external data file (`model.onnx_data`), one chunk
 * at a time as they are produced, and returns the TensorProto that points at them.
 * Nothing but the chunk being written is held in memory.
 */
export class ExternalDataWriter {
  private position = 0;

  constructor(
    private readonly handle: FileHandle,
    /** File name relative to the .onnx file, as written in each tensor's `location`. */
    readonly location: string,
  ) {}

  get bytes(): number {
    return this.position;
  }

  /** Writes one tensor from `chunks` (concatenated in order, `dims` x element size bytes in all). */
  async write(name: string, elemType: ElementType, dims: readonly number[], chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<TensorProto> {
    const expected = dims.reduce((a, b) => a * b, 1) * ELEMENT_BYTES[elemType];
    const align = expected >= LARGE ? PAGE : SMALL_ALIGN;
    const offset = Math.ceil(this.position / align) * align;
    let written = 0;
    for await (const chunk of chunks) {
      if (chunk.byteLength === 0) continue;
      await writeFully(this.handle, chunk, offset + written);
      written += chunk.byteLength;
    }
    if (written !== expected) throw new Error(`internal: tensor '${name}' produced ${written} bytes, ${expected} expected for shape [${dims.join(", ")}]`);
    this.position = offset + written;
    return externalTensor(name, elemType, dims, this.location, offset, written);
  }
}

/** Bytes of a typed array, as a Uint8Array view. */
export function bytesOf(values: Float32Array | Uint16Array | Uint8Array | BigInt64Array): Uint8Array {
  return values instanceof Uint8Array ? values : new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}
