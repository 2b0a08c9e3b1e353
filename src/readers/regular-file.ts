import { statSync } from "node:fs";
import { UserError } from "../errors.js";

/**
 * Refuses a path that is not a regular file before anything opens it: a folder gives EISDIR
 * deep inside a reader, and opening a FIFO or a device for reading blocks forever. Symlinks
 * are followed (the Hub cache is made of them); a missing file is the caller's to handle.
 */
export function checkRegularFile(path: string, what = "file"): void {
  let kind: string;
  try {
    const info = statSync(path);
    if (info.isFile()) return;
    kind = info.isDirectory() ? "a folder" : info.isFIFO() ? "a named pipe" : info.isSocket() ? "a socket" : "a device";
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
    throw new UserError(`cannot read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, { file: path });
  }
  throw new UserError(`expected a ${what}, found ${kind}`, { file: path });
}
