// Content digests for caches of test inputs: a cached file is reused only while everything that
// made it is byte for byte the same. Timestamps are never consulted: a checkout, a copy or a
// rebuild changes them without changing the content, and an edit can keep them.

import { createHash, type Hash } from "node:crypto";
import { closeSync, existsSync, openSync, readdirSync, readSync, statSync } from "node:fs";
import { join, relative, sep } from "node:path";

export const REPO_ROOT = join(import.meta.dirname, "..", "..");

const CHUNK = 16 << 20;

function hashFile(hash: Hash, path: string): void {
  const fd = openSync(path, "r");
  try {
    const buffer = Buffer.allocUnsafe(CHUNK);
    for (;;) {
      const read = readSync(fd, buffer, 0, CHUNK, null);
      if (read === 0) break;
      hash.update(buffer.subarray(0, read));
    }
  } finally {
    closeSync(fd);
  }
}

function filesUnder(path: string): string[] {
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path)
    .sort()
    .flatMap((name) => filesUnder(join(path, name)));
}

/**
 * SHA-256 over the relative path and bytes of every file under `paths` (files or folders,
 * relative to `root`), in sorted order. Paths that do not exist are hashed as absent.
 */
export function contentDigest(paths: readonly string[], root = REPO_ROOT): string {
  const hash = createHash("sha256");
  for (const path of [...paths].sort()) {
    const absolute = join(root, path);
    if (!existsSync(absolute)) {
      hash.update(`absent ${path}\0`);
      continue;
    }
    for (const file of filesUnder(absolute)) {
      hash.update(`${relative(root, file).split(sep).join("/")}\0${statSync(file).size}\0`);
      hashFile(hash, file);
    }
  }
  return hash.digest("hex");
}

/** What converts a checkpoint: the source tree, the WASM kernels and the locked dependencies. */
export const CONVERTER_FILES = ["src", "wasm", "package-lock.json"] as const;

let converter: string | undefined;

/** The converter's content digest (computed once per process: the tree does not change under a test run). */
export function converterDigest(): string {
  converter ??= contentDigest(CONVERTER_FILES);
  return converter;
}

/** Every file of a model folder, by content (the folder's own location does not count). */
export function folderDigest(folder: string): string {
  return contentDigest(readdirSync(folder), folder);
}
