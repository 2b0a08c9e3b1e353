import { rmSync } from "node:fs";
import { mkdir, open, rename, rm, type FileHandle } from "node:fs/promises";
import { dirname } from "node:path";
import { UserError } from "../errors.js";
import { partialPath, removeStalePartials } from "./partial-files.js";

/**
 * Writes `path` through a temporary file beside it, renamed into place only
 * when `write` finishes: a failed or interrupted conversion never leaves a
 * half-written model where the user expects a good one.
 */
export async function writeAtomically<T>(path: string, write: (handle: FileHandle) => Promise<T>): Promise<T> {
  const directory = dirname(path);
  const temporary = partialPath(path);
  removeStalePartials(path);
  await mkdir(directory, { recursive: true }).catch((cause: NodeJS.ErrnoException) => {
    // mkdir -p reports a file in the way as EEXIST.
    throw outputError(cause.code === "EEXIST" ? { ...cause, code: "ENOTDIR" } : cause, path);
  });
  const handle = await open(temporary, "w").catch((cause: NodeJS.ErrnoException) => {
    throw outputError(cause, path);
  });
  // 'exit' handlers cannot await, so the interrupted case (Ctrl-C) removes the file synchronously.
  const removeOnExit = () => rmSync(temporary, { force: true });
  process.once("exit", removeOnExit);
  try {
    const result = await write(asOutput(handle, path));
    await handle.sync();
    await handle.close();
    await rename(temporary, path).catch((cause: NodeJS.ErrnoException) => {
      throw outputError(cause, path);
    });
    return result;
  } catch (error) {
    await handle.close().catch(() => {});
    await rm(temporary, { force: true });
    throw error;
  } finally {
    process.off("exit", removeOnExit);
  }
}

/** A failed system call (ENOSPC, EACCES...), not one of Node's own ERR_* errors such as a too-large buffer. */
export function isErrno(error: unknown): error is NodeJS.ErrnoException {
  return error instanceof Error && typeof (error as NodeJS.ErrnoException).code === "string" && typeof (error as NodeJS.ErrnoException).syscall === "string";
}

/**
 * The output file as a writer sees it: a failed call on it (a full disk, say) is the output's
 * problem and said of `path`; whatever else the writer throws, such as an input that cannot be
 * read while it is being converted, stays the input's.
 */
export function asOutput(handle: FileHandle, path: string): FileHandle {
  return new Proxy(handle, {
    get(target, key) {
      const member: unknown = Reflect.get(target, key, target);
      if (typeof member !== "function") return member;
      return (...args: unknown[]) => {
        const result: unknown = member.apply(target, args);
        if (!(result instanceof Promise)) return result;
        return result.catch((cause: unknown) => {
          throw isErrno(cause) ? outputError(cause, path) : cause;
        });
      };
    },
  });
}

const OUTPUT_PROBLEMS: Record<string, string> = {
  ENOSPC: "no space left on the device",
  EDQUOT: "disk quota exceeded",
  EFBIG: "file too large for the file system",
  EACCES: "permission denied",
  EPERM: "permission denied",
  EROFS: "read-only file system",
  ENOTDIR: "a parent of the output path is not a directory",
  EISDIR: "the output path is a directory",
};

/** A write that failed, said of the output the user named (not of a hidden temporary). */
export function outputError(cause: NodeJS.ErrnoException, path: string): UserError {
  const problem = OUTPUT_PROBLEMS[cause.code ?? ""] ?? cause.message;
  return new UserError(`cannot write output: ${problem}; nothing was written`, { file: path });
}
