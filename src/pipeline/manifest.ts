/**
 * manifest.json: what an output folder holds, written by `edgequant run` and
 * by `edgequant manifest` (which gathers artifacts that separate CI jobs wrote).
 *
 * Every artifact lists its files with size and SHA-256. An artifact of one file
 * has that file's SHA-256; an artifact of several (a model folder, GGUF splits)
 * has the SHA-256 of the `sha256sum`-style listing of its files, one line
 * "<sha256>  <path>\n" each, sorted by path, so `sha256sum -c` can check them.
 * Nothing in it depends on the time or the machine: the same inputs give the
 * same bytes.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { relative, sep } from "node:path";
import { writeAtomically } from "../writers/atomic-file.js";

export const MANIFEST_FILE = "manifest.json";
const MANIFEST_VERSION = 1;

export type ArtifactFormat = "gguf" | "onnx" | "mlx";

export interface ManifestFile {
  /** Relative to the output folder, '/'-separated. */
  readonly path: string;
  readonly bytes: number;
  readonly sha256: string;
}

export interface ManifestArtifact {
  /** The file, the first GGUF split, or the model folder (relative to the output folder). */
  readonly path: string;
  readonly format: ArtifactFormat;
  /** GGUF: the llama.cpp scheme (q4_k_m); ONNX: fp32, fp16, int8, int4 or ternary; MLX: 4bit, mixed_3_6, 1.58bit... */
  readonly scheme: string;
  readonly architecture?: string;
  /** The settings it was built with (bits, group size, layout, split size). */
  readonly settings?: Readonly<Record<string, unknown>>;
  readonly bytes: number;
  readonly sha256: string;
  readonly files: readonly ManifestFile[];
  /** Fit files written for it and a per-device summary, when fit ran. */
  readonly fit?: ArtifactFit;
}

export interface ArtifactFit {
  /** The fit JSON (every device, KV configuration and context) and its chart. */
  readonly files: readonly ManifestFile[];
  /** The KV cache configuration this summary uses; the fit JSON has them all. */
  readonly kvCache: string;
  readonly flashAttention: boolean;
  /** Per device: whether it fits at each context checked, and the largest context that does. */
  readonly devices: readonly DeviceFit[];
}

export interface DeviceFit {
  readonly device: string;
  readonly runtime?: string;
  /** The largest context length that fits, 0 when none does. */
  readonly maxContext: number;
  /** Memory in bytes at each context length checked, whether it fits, decode tokens/s. */
  readonly contexts: readonly { readonly context: number; readonly bytes: number; readonly fits: boolean; readonly tokensPerSecond?: number }[];
  /** Why no runtime of the device can run this artifact. */
  readonly unsupported?: string;
}

export interface ManifestSource {
  /** As the recipe or command line wrote it: a path or hf:org/name[@revision]. */
  readonly uri: string;
  readonly repo?: string;
  /** The commit the files came from (Hub sources). */
  readonly revision?: string;
}

export interface Manifest {
  readonly manifestVersion: typeof MANIFEST_VERSION;
  readonly edgequant: string;
  readonly name: string;
  readonly source?: ManifestSource;
  readonly artifacts: readonly ManifestArtifact[];
  /** Devices and contexts the fit summaries used, when fit ran. */
  readonly fit?: { readonly devices: readonly string[]; readonly contexts: readonly number[] };
}

/** '/'-separated path of `file` inside `root`. */
export function relativePath(root: string, file: string): string {
  return relative(root, file).split(sep).join("/");
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path, { highWaterMark: 4 << 20 })) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** Size and SHA-256 of each file, sorted by path. */
export async function describeFiles(root: string, files: readonly string[]): Promise<ManifestFile[]> {
  const described: ManifestFile[] = [];
  for (const file of [...files].sort((a, b) => compare(relativePath(root, a), relativePath(root, b)))) {
    described.push({ path: relativePath(root, file), bytes: (await stat(file)).size, sha256: await sha256File(file) });
  }
  return described;
}

/** The artifact's own digest: its file's, or that of the sha256sum listing of its files. */
export function artifactDigest(files: readonly ManifestFile[]): string {
  if (files.length === 1) return files[0]!.sha256;
  return createHash("sha256").update(sha256sumListing(files)).digest("hex");
}

/** "<sha256>  <path>\n" per file, as sha256sum prints it. */
export function sha256sumListing(files: readonly ManifestFile[]): string {
  return files.map((f) => `${f.sha256}  ${f.path}\n`).join("");
}

export function artifactEntry(fields: Omit<ManifestArtifact, "bytes" | "sha256">): ManifestArtifact {
  const { path, format, scheme, architecture, settings, files, fit } = fields;
  return {
    path,
    format,
    scheme,
    ...(architecture !== undefined ? { architecture } : {}),
    ...(settings !== undefined ? { settings: withoutUndefined(settings) } : {}),
    bytes: files.reduce((sum, f) => sum + f.bytes, 0),
    sha256: artifactDigest(files),
    files,
    ...(fit !== undefined ? { fit } : {}),
  };
}

function manifestText(manifest: Manifest): string {
  return `${JSON.stringify(manifest, null, 2)}\n`;
}

/** Writes manifest.json into the output folder, atomically; returns its path. */
export async function writeManifest(path: string, manifest: Manifest): Promise<void> {
  const text = manifestText(manifest);
  await writeAtomically(path, (handle) => handle.writeFile(text, "utf8"));
}

/** Byte order, so the listing is the same on every machine and locale. */
export function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function withoutUndefined(record: Readonly<Record<string, unknown>>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined));
}
