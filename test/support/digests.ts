// Digests recomputed from the bytes on disk with node:crypto, for checking manifest.json: nothing
// here comes from src/, so a wrong digest in src/ cannot also be the expected value.
//
// The manifest's rule (README: "bytes, sha256"; src/pipeline/manifest.ts states it as the contract):
// an artifact of one file has that file's SHA-256; an artifact of several files has the SHA-256 of
// the listing `sha256sum` prints for them, "<hex>  <path>\n" per file, paths relative to the output
// folder and in byte order.

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";

export const sha256Hex = (bytes: Uint8Array | string): string => createHash("sha256").update(bytes).digest("hex");

/** The digest of an artifact made of `paths` (relative to `root`), from the files themselves. */
export function artifactDigestOf(root: string, paths: readonly string[]): string {
  const sorted = [...paths].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const hashes = sorted.map((path) => sha256Hex(readFileSync(join(root, path))));
  if (sorted.length === 1) return hashes[0]!;
  return sha256Hex(sorted.map((path, i) => `${hashes[i]}  ${path}\n`).join(""));
}
