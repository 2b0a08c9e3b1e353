import { UserError } from "../errors.js";
import type { FloatDtype } from "./dtypes.js";

/** Far beyond any real layer (the widest are ~50k): config widths and tensor rows are bounded by it. */
export const MAX_WIDTH = 1 << 24;

/** Rows are read whole, so a header claiming a row longer than any layer is refused before anything is sized by it. */
export function checkRowLength(shape: readonly number[], where: { readonly file: string; readonly tensor: string }): void {
  const row = shape[shape.length - 1] ?? 1;
  if (row > MAX_WIDTH) throw new UserError(`its rows of ${row} values are longer than any layer's (at most ${MAX_WIDTH}); the header's shape [${shape.join(", ")}] is wrong`, where);
}

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
