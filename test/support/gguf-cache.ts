// GGUFs converted once and reused across test runs (under .cache/bench/fit), keyed by content:
// the converter's files (src/, wasm/, package-lock.json), the source checkpoint's files and the
// scheme. Any change to any of them gives a new key, so a stale conversion is never reused.

import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { convertToGguf } from "../../src/convert/gguf.js";
import { resolveScheme } from "../../src/quant/schemes.js";
import { converterDigest, folderDigest, REPO_ROOT } from "./content-key.js";

export const GGUF_CACHE = join(REPO_ROOT, ".cache/bench/fit");

/** The cache key of converting `source` to `scheme`: hex SHA-256 of the three content digests. */
export function ggufCacheKey(source: string, scheme: string): string {
  return createHash("sha256").update(`converter ${converterDigest()}\nsource ${folderDigest(source)}\nscheme ${scheme}\n`).digest("hex");
}

/** Converts `source` to `scheme` once per content key; returns the cached file's path. */
export async function cachedGguf(source: string, name: string, scheme: string): Promise<string> {
  mkdirSync(GGUF_CACHE, { recursive: true });
  const prefix = `${name}-${scheme}-`;
  const output = join(GGUF_CACHE, `${prefix}${ggufCacheKey(source, scheme).slice(0, 32)}.gguf`);
  if (existsSync(output) && statSync(output).size > 0) return output;
  const partial = `${output}.partial-${process.pid}.gguf`;
  try {
    await convertToGguf({ source, output: partial, scheme: resolveScheme({ scheme }) });
    renameSync(partial, output);
  } finally {
    rmSync(partial, { force: true });
  }
  // Conversions under other keys are stale now: drop them rather than let the cache grow.
  for (const file of readdirSync(GGUF_CACHE)) {
    if (file.startsWith(prefix) && /^[0-9a-f]{32}\.gguf$/.test(file.slice(prefix.length)) && join(GGUF_CACHE, file) !== output) rmSync(join(GGUF_CACHE, file), { force: true });
  }
  return output;
}
