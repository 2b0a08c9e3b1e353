import type { FloatDtype } from "./dtypes.js";

/**
 * A float tensor in an input file (a safetensors shard or a GGUF), read on
 * demand so that only the bytes being converted are in memory.
 */
export interface SourceTensor {
  /** The name in the input file, for messages. */
  readonly name: string;
  readonly file: string;
  readonly dtype: FloatDtype;
  /** PyTorch order, outermost first. */
  readonly shape: readonly number[];
  readonly byteLength: number;
  /** Reads `length` bytes starting `offset` bytes into the tensor's data. */
  read(offset: number, length: number): Promise<Uint8Array>;
}
