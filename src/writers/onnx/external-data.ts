import type { FileHandle } from "node:fs/promises";
import { writeFully } from "../write-fully.js";
import { ELEMENT_BYTES, externalTensor, type ElementType, type TensorProto } from "./proto.js";

/** Offsets of large tensors are page-aligned so that ONNX Runtime can memory-map them. */
const PAGE = 4096;
const LARGE = 1 << 16;
const SMALL_ALIGN = 64;

/** Where initializers' bytes go: the external data file, or (for `plan`) only its layout. */
export interface ExternalData {
  /** File name relative to the .onnx file, as written in each tensor's `location`. */
  readonly location: string;
  /** The file's size so far. */
  readonly bytes: number;
  /** One tensor from `chunks` (concatenated in order, `dims` x element size bytes in all). */
  write(name: string, elemType: ElementType, dims: readonly number[], chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<TensorProto>;
}

function tensorBytes(elemType: ElementType, dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1) * ELEMENT_BYTES[elemType];
}

function alignedOffset(position: number, bytes: number): number {
  const align = bytes >= LARGE ? PAGE : SMALL_ALIGN;
  return Math.ceil(position / align) * align;
}

/**
 * Appends initializers' bytes to the external data file (`model.onnx_data`), one chunk
 * at a time as they are produced, and returns the TensorProto that points at them.
 * Nothing but the chunk being written is held in memory.
 */
export class ExternalDataWriter implements ExternalData {
  private position = 0;

  constructor(
    private readonly handle: FileHandle,
    readonly location: string,
  ) {}

  get bytes(): number {
    return this.position;
  }

  async write(name: string, elemType: ElementType, dims: readonly number[], chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<TensorProto> {
    const expected = tensorBytes(elemType, dims);
    const offset = alignedOffset(this.position, expected);
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

/** The same file's layout, without producing a byte of it: every offset and length the writer would record. */
export class ExternalDataLayout implements ExternalData {
  private position = 0;

  constructor(readonly location: string) {}

  get bytes(): number {
    return this.position;
  }

  async write(name: string, elemType: ElementType, dims: readonly number[]): Promise<TensorProto> {
    const length = tensorBytes(elemType, dims);
    const offset = alignedOffset(this.position, length);
    this.position = offset + length;
    return externalTensor(name, elemType, dims, this.location, offset, length);
  }
}

/** Bytes of a typed array, as a Uint8Array view. */
export function bytesOf(values: Float32Array | Uint16Array | Uint8Array | BigInt64Array): Uint8Array {
  return values instanceof Uint8Array ? values : new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}
