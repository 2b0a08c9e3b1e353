/**
 * `edgequant manifest <out dir>`: a manifest.json for artifacts that separate
 * jobs wrote into one folder, e.g. GGUF splits from `convert --part i/N`
 * matrix jobs downloaded into one place. Artifacts are recognised by their
 * content: GGUF headers (scheme from general.file_type, split keys), ONNX
 * folders (model metadata), MLX folders (config.json's quantization). A split
 * model missing a part is an error, not a silent partial manifest.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { UserError } from "../errors.js";
import { didYouMean } from "../suggest.js";
import { VERSION } from "../version.js";
import { fileTypeName } from "../quant/ggml-types.js";
import { readGgufHeader } from "../readers/gguf-header.js";
import { parseSplitPath, splitPath } from "../writers/gguf/split.js";
import { FIT_STEP } from "./fit.js";
import type { FitRequest } from "./recipe.js";
import { artifactEntry, compare, describeFiles, MANIFEST_FILE, relativePath, type Manifest, type ManifestArtifact, type ManifestSource } from "./manifest.js";

export interface GatherOptions {
  /** Manifest name; default: the existing manifest's, else the folder's name. */
  readonly name?: string;
  /** Source to record; default: the existing manifest's, if any. */
  readonly source?: ManifestSource;
  readonly log?: (line: string) => void;
  /** Write fit files beside every artifact and summarise them (devices and contexts as in a recipe). */
  readonly fit?: FitRequest;
}

const MAX_DEPTH = 6;
const MAX_ENTRIES = 100_000;

/** Scans `outDir` and builds its manifest (not written). */
export async function gatherManifest(outDir: string, options: GatherOptions = {}): Promise<Manifest> {
  if (!existsSync(outDir) || !statSync(outDir).isDirectory()) throw new UserError("not a folder", { file: outDir });
  const log = options.log ?? (() => {});
  const previous = readPrevious(outDir);
  const found: Found = { ggufFiles: [], folders: [], other: [] };
  walk(outDir, outDir, 0, found, { count: 0 });

  const artifacts: ManifestArtifact[] = [];
  for (const group of groupGguf(found.ggufFiles)) artifacts.push(await ggufArtifact(outDir, group));
  for (const folder of found.folders) artifacts.push(await folderArtifact(outDir, folder));

  // What a run recorded and the content cannot say (settings, fit) is kept when the files are unchanged.
  // (Same sha256 means the same files: for several files it is the digest of their listing.)
  const order = (a: ManifestArtifact) => previous?.artifacts.findIndex((p) => p.path === a.path) ?? -1;
  const kept: ManifestArtifact[] = [];
  for (const artifact of artifacts) {
    const before = previous?.artifacts.find((a) => a.path === artifact.path && a.sha256 === artifact.sha256 && a.format === artifact.format);
    if (!before) {
      kept.push(artifact);
      continue;
    }
    // A fit summary is kept only while its files are still there, unchanged.
    const fitFiles = before.fit?.files ?? [];
    const current = await describeFiles(outDir, fitFiles.map((f) => join(outDir, ...f.path.split("/"))).filter((f) => existsSync(f)));
    const fitIntact = current.length === fitFiles.length && current.every((f, i) => f.sha256 === fitFiles[i]!.sha256 && f.path === fitFiles[i]!.path);
    if (fitIntact) {
      kept.push(before);
    } else {
      const { fit: _stale, ...rest } = before;
      void _stale;
      kept.push(rest);
    }
  }
  const merged = kept
    .sort((a, b) => {
      const [ia, ib] = [order(a), order(b)];
      return ia >= 0 && ib >= 0 ? ia - ib : ia >= 0 ? -1 : ib >= 0 ? 1 : compare(a.path, b.path);
    });
  for (const other of found.other) log(`manifest: not an artifact, left out: ${relativePath(outDir, other)}`);
  if (merged.length === 0) throw new UserError("no GGUF files, ONNX or MLX model folders found here", { file: outDir });

  const source = options.source ?? previous?.source;
  let final = merged;
  let fit = merged.some((a) => a.fit) ? previous?.fit : undefined;
  if (options.fit) {
    const known = await FIT_STEP.knownDevices(options.fit, outDir);
    const unknown = (options.fit.devices ?? []).filter((d) => !known.includes(d));
    if (unknown.length > 0) throw new UserError(`unknown device${unknown.length > 1 ? "s" : ""} ${unknown.map((d) => `'${d}'${didYouMean(d, known)}`).join(", ")}; known: ${known.join(", ")}`);
    const result = await FIT_STEP.run(
      merged.map((a) => ({ path: join(outDir, ...a.path.split("/")), format: a.format })),
      options.fit,
      outDir,
      (files) => describeFiles(outDir, files),
    );
    final = merged.map((a, i) => ({ ...a, fit: result.artifacts[i]! }));
    fit = { devices: result.devices, contexts: result.contexts };
  }
  return {
    manifestVersion: 1,
    edgequant: VERSION,
    name: options.name ?? previous?.name ?? basename(outDir),
    ...(source ? { source } : {}),
    artifacts: final,
    ...(fit ? { fit } : {}),
  };
}

interface Found {
  ggufFiles: string[];
  folders: { path: string; format: "onnx" | "mlx" }[];
  other: string[];
}

function walk(root: string, dir: string, depth: number, found: Found, budget: { count: number }): void {
  for (const name of readdirSync(dir).sort(compare)) {
    if (++budget.count > MAX_ENTRIES) throw new UserError(`more than ${MAX_ENTRIES} entries; is this an output folder?`, { file: root });
    if (name.startsWith(".") || (dir === root && name === MANIFEST_FILE)) continue; // temporaries, and the manifest itself
    const path = join(dir, name);
    const info = statSync(path);
    if (info.isDirectory()) {
      const format = modelFolderFormat(path);
      if (format) found.folders.push({ path, format });
      else if (depth < MAX_DEPTH) walk(root, path, depth + 1, found, budget);
    } else if (name.endsWith(".gguf")) {
      found.ggufFiles.push(path);
    } else if (!/\.fit\.(json|svg)$/.test(name)) {
      found.other.push(path);
    }
  }
}

function modelFolderFormat(path: string): "onnx" | "mlx" | undefined {
  const entries = readdirSync(path);
  if (entries.includes("genai_config.json") || entries.some((e) => e.endsWith(".onnx")) || (entries.includes("onnx") && existsSync(join(path, "onnx")) && readdirSync(join(path, "onnx")).some((e) => e.endsWith(".onnx")))) {
    return "onnx";
  }
  if (entries.includes("config.json") && entries.some((e) => e.endsWith(".safetensors"))) {
    try {
      const config = JSON.parse(readFileSync(join(path, "config.json"), "utf8")) as Record<string, unknown>;
      if (config["quantization"] !== undefined || entries.includes("model.safetensors.index.json")) return "mlx";
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** Single files, and split parts grouped by their prefix; every part of a split model must be there. */
function groupGguf(files: readonly string[]): string[][] {
  const groups = new Map<string, { prefix: string; count: number; parts: Map<number, string> }>();
  const singles: string[][] = [];
  for (const file of files) {
    const part = parseSplitPath(file);
    if (!part) {
      singles.push([file]);
      continue;
    }
    const key = `${part.prefix}|${part.count}`;
    const group = groups.get(key) ?? { prefix: part.prefix, count: part.count, parts: new Map() };
    group.parts.set(part.index, file);
    groups.set(key, group);
  }
  const split: string[][] = [];
  for (const { prefix, count, parts } of groups.values()) {
    const missing = Array.from({ length: count }, (_, i) => i).filter((i) => !parts.has(i));
    if (missing.length > 0) {
      throw new UserError(
        `split model incomplete: ${missing.length} of ${count} parts missing (${missing.map((i) => basename(splitPath(prefix, i, count))).join(", ")}); did every matrix job upload its part?`,
        { file: prefix },
      );
    }
    split.push([...parts.entries()].sort(([a], [b]) => a - b).map(([, file]) => file));
  }
  return [...singles, ...split];
}

async function ggufArtifact(outDir: string, files: readonly string[]): Promise<ManifestArtifact> {
  let scheme = "unknown";
  let architecture: string | undefined;
  for (const [index, file] of files.entries()) {
    const { metadata } = await readGgufHeader(file);
    const value = (key: string) => (metadata as Record<string, unknown>)[key];
    if (files.length > 1) {
      if (Number(value("split.count")) !== files.length || Number(value("split.no")) !== index) {
        throw new UserError(`split keys say part ${Number(value("split.no")) + 1} of ${String(value("split.count"))}, but the file name says part ${index + 1} of ${files.length}`, { file });
      }
    }
    if (index === 0) {
      const fileType = Number(value("general.file_type"));
      // Our schemes are named after their file types, so a GGUF from another tool gets a scheme name too.
      scheme = Number.isSafeInteger(fileType) ? fileTypeName(fileType).toLowerCase() : "unknown";
      const arch = value("general.architecture");
      if (typeof arch === "string") architecture = arch;
    }
  }
  const described = await describeFiles(outDir, files);
  return artifactEntry({
    path: relativePath(outDir, files[0]!),
    format: "gguf",
    scheme,
    ...(architecture ? { architecture } : {}),
    settings: { scheme, ...(files.length > 1 ? { splits: files.length } : {}) },
    files: described,
  });
}

async function folderArtifact(outDir: string, folder: { path: string; format: "onnx" | "mlx" }): Promise<ManifestArtifact> {
  const files = listFiles(folder.path);
  const described = await describeFiles(outDir, files);
  const config = await readJsonIfAny(join(folder.path, "config.json"));
  const architecture = typeof config?.["model_type"] === "string" ? (config["model_type"] as string) : undefined;
  let scheme = "unknown";
  let settings: Record<string, unknown> = {};
  if (folder.format === "mlx") {
    const q = config?.["quantization"] as { bits?: number; group_size?: number } | undefined;
    const perLayer = q ? Object.values(q).some((v) => typeof v === "object" && v !== null) : false;
    scheme = !q ? "float" : perLayer ? "mixed" : `${q.bits}bit`;
    settings = q ? { bits: q.bits, groupSize: q.group_size } : {};
  } else {
    const model = files.find((f) => f.endsWith(".onnx"));
    const props = model ? await onnxMetadata(model) : {};
    const bits = props["edgequant.bits"];
    scheme = ({ "32": "fp32", "16": "fp16", "8": "int8", "4": "int4", "1.58": "ternary" } as Record<string, string>)[bits ?? ""] ?? "unknown";
    const layout = existsSync(join(folder.path, "genai_config.json")) ? "genai" : "transformersjs";
    settings = { ...(bits ? { bits: Number(bits) } : {}), layout, ...(props["edgequant.group_size"] ? { groupSize: Number(props["edgequant.group_size"]) } : {}) };
  }
  return artifactEntry({ path: relativePath(outDir, folder.path), format: folder.format, scheme, ...(architecture ? { architecture } : {}), settings, files: described });
}

function listFiles(dir: string): string[] {
  const files: string[] = [];
  for (const name of readdirSync(dir).sort(compare)) {
    if (name.startsWith(".")) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) files.push(...listFiles(path));
    else files.push(path);
  }
  return files;
}

async function readJsonIfAny(path: string): Promise<Record<string, unknown> | undefined> {
  try {
    return JSON.parse(await readFile(path, "utf8")) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

function readPrevious(outDir: string): Manifest | undefined {
  try {
    const manifest = JSON.parse(readFileSync(join(outDir, MANIFEST_FILE), "utf8")) as Manifest;
    return manifest.manifestVersion === 1 && Array.isArray(manifest.artifacts) ? manifest : undefined;
  } catch {
    return undefined;
  }
}

/**
 * ModelProto.metadata_props (field 14: StringStringEntryProto { key = 1, value = 2 }),
 * read by walking the top-level protobuf fields; the graph is skipped unparsed.
 */
async function onnxMetadata(path: string): Promise<Record<string, string>> {
  if (statSync(path).size > 512 * 1024 * 1024) return {};
  const bytes = await readFile(path);
  const props: Record<string, string> = {};
  try {
    for (const field of protoFields(bytes, 0, bytes.length)) {
      if (field.number !== 14 || field.wire !== 2) continue;
      let key = "";
      let value = "";
      for (const inner of protoFields(bytes, field.start, field.end)) {
        if (inner.wire !== 2) continue;
        const text = bytes.subarray(inner.start, inner.end).toString("utf8");
        if (inner.number === 1) key = text;
        if (inner.number === 2) value = text;
      }
      if (key) props[key] = value;
    }
  } catch {
    return {};
  }
  return props;
}

function* protoFields(bytes: Buffer, start: number, end: number): Generator<{ number: number; wire: number; start: number; end: number }> {
  let at = start;
  const varint = () => {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (at >= end) throw new Error("truncated varint");
      const byte = bytes[at++]!;
      result += (byte & 0x7f) * scale;
      if ((byte & 0x80) === 0) return result;
      scale *= 128;
    }
    throw new Error("varint too long");
  };
  while (at < end) {
    const tag = varint();
    const wire = tag % 8;
    const number = Math.floor(tag / 8);
    if (wire === 0) {
      varint();
      yield { number, wire, start: at, end: at };
    } else if (wire === 1 || wire === 5) {
      at += wire === 1 ? 8 : 4;
    } else if (wire === 2) {
      const length = varint();
      if (at + length > end) throw new Error("truncated field");
      yield { number, wire, start: at, end: at + length };
      at += length;
    } else {
      throw new Error(`unsupported wire type ${wire}`);
    }
  }
}
