import type { FileHandle } from "node:fs/promises";
import { UserError } from "../errors.js";

/** fs reads are limited to 2 GiB per call; embeddings of large models exceed that. */
const MAX_READ_CHUNK = 1 << 30;

/** Reads exactly `length` bytes at `position`, or says which file and tensor ended early. */
export async function readFully(handle: FileHandle, position: number, length: number, where: { file: string; tensor: string }): Promise<Buffer> {
  const buffer = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(buffer, done, Math.min(MAX_READ_CHUNK, length - done), position + done);
    if (bytesRead === 0) throw new UserError("file ends inside the tensor's data (truncated, or changed while being read?)", where);
    done += bytesRead;
  }
  return buffer;
}
