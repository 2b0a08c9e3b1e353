import type { FileHandle } from "node:fs/promises";

/** fs writes are limited to 2 GiB per call, and a call may write less than it was given. */
const MAX_WRITE_CHUNK = 1 << 30;

/** Writes all of `bytes` at `position`; returns the position just after them. */
export async function writeFully(handle: FileHandle, bytes: Uint8Array, position: number): Promise<number> {
  let done = 0;
  while (done < bytes.byteLength) {
    const { bytesWritten } = await handle.write(bytes, done, Math.min(bytes.byteLength - done, MAX_WRITE_CHUNK), position + done);
    done += bytesWritten;
  }
  return position + done;
}
