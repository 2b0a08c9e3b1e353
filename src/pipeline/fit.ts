/**
 * The fit step of a recipe: after every artifact is built, src/fit's manifest
 * (memory per context length on each target device) is written beside each
 * artifact as `<artifact>.fit.json` with its chart `<artifact>.fit.svg`, and a
 * per-device summary goes into manifest.json.
 *
 * The fit files a recipe writes are reproducible like the artifacts: paths in
 * them are relative to the file, and `createdAt` is $SOURCE_DATE_EPOCH (the
 * reproducible-builds convention) or, when that is unset, the Unix epoch.
 */
import { dirname, isAbsolute, relative, resolve, sep } from "node:path";
import type { FitManifest, FitResult } from "../fit/manifest.js";
import type { KvConfig } from "../fit/runtimes.js";
import type { ArtifactFit, DeviceFit, ManifestFile } from "./manifest.js";
import type { FitRequest } from "./recipe.js";

interface FitTarget {
  /** Absolute path of the artifact: the GGUF (first split) or the model folder. */
  readonly path: string;
  readonly format: "gguf" | "onnx" | "mlx";
}

export interface FitStep {
  /** The device ids a recipe may name (the catalogue plus its devices-file); throws a UserError for a bad devices file. */
  knownDevices(request: FitRequest, recipeDirectory: string): Promise<readonly string[]>;
  /** Writes the fit files of each artifact; returns what to record in the manifest, in the order given. */
  run(
    targets: readonly FitTarget[],
    request: FitRequest,
    recipeDirectory: string,
    describe: (files: readonly string[]) => Promise<ManifestFile[]>,
  ): Promise<{ readonly artifacts: readonly ArtifactFit[]; readonly devices: readonly string[]; readonly contexts: readonly number[] }>;
}

/** src/fit, loaded when a recipe asks for fit files. */
const fit = async () => {
  const [devices, manifest, runtimes, write] = await Promise.all([import("../fit/devices.js"), import("../fit/manifest.js"), import("../fit/runtimes.js"), import("../fit/write.js")]);
  // The manifest summary reports the first of src/fit's KV configurations (f16 cache, flash attention off).
  return { ...devices, ...manifest, ...write, summaryKv: runtimes.DEFAULT_KV_CONFIGS[0]! };
};

export const FIT_STEP: FitStep = {
  async knownDevices(request, recipeDirectory) {
    const { loadCatalogue } = await fit();
    const catalogue = await loadCatalogue(devicesFile(request, recipeDirectory));
    return catalogue.devices.map((d) => d.id);
  },

  async run(targets, request, recipeDirectory, describe) {
    const { fitManifest, defaultFitPath, writeFitFiles, summaryKv } = await fit();
    const artifacts: ArtifactFit[] = [];
    let devices: readonly string[] = [];
    let contexts: readonly number[] = [];
    const file = devicesFile(request, recipeDirectory);
    for (const target of targets) {
      const manifest = await fitManifest(target.path, {
        ...(request.devices ? { devices: request.devices } : {}),
        ...(request.contexts ? { contexts: request.contexts } : {}),
        ...(file ? { devicesFile: file } : {}),
      });
      const jsonPath = defaultFitPath(target.path);
      const written = await writeFitFiles(reproducible(manifest, dirname(jsonPath), request), jsonPath);
      devices = manifest.devices.map((d) => d.id);
      contexts = manifest.contexts;
      artifacts.push({ files: await describe([written.json, written.svg]), ...summary(manifest, summaryKv) });
    }
    return { artifacts, devices, contexts };
  },
};

function devicesFile(request: FitRequest, recipeDirectory: string): string | undefined {
  return request.devicesFile ? resolve(recipeDirectory, request.devicesFile) : undefined;
}

/** The same manifest with paths relative to `base` and a creation date that does not change between runs. */
function reproducible(manifest: FitManifest, base: string, request: FitRequest): FitManifest {
  const rel = (path: string) => (isAbsolute(path) ? relative(base, path).split(sep).join("/") : path);
  const epoch = Number(process.env["SOURCE_DATE_EPOCH"]);
  return {
    ...manifest,
    createdAt: new Date(Number.isSafeInteger(epoch) && epoch >= 0 ? epoch * 1000 : 0).toISOString(),
    artifacts: manifest.artifacts.map((a) => ({ ...a, path: rel(a.path), files: a.files.map((f) => ({ ...f, path: rel(f.path) })) })),
    devices: manifest.devices.map((d) => (d.origin === "built-in" ? d : { ...d, origin: request.devicesFile ?? rel(d.origin) })),
  };
}

/** Per device, for the summary KV configuration: runtime, largest context, and memory at each context. */
function summary(manifest: FitManifest, kv: KvConfig): Omit<ArtifactFit, "files"> {
  const results = manifest.results.filter((r) => r.kvCache === kv.kvCache && r.flashAttention === kv.flashAttention);
  return {
    kvCache: kv.kvCache,
    flashAttention: kv.flashAttention,
    devices: results.map(deviceFit),
  };
}

function deviceFit(result: FitResult): DeviceFit {
  if (!result.supported) return { device: result.device, maxContext: 0, contexts: [], ...(result.reason ? { unsupported: result.reason } : {}) };
  return {
    device: result.device,
    ...(result.runtime ? { runtime: result.runtime } : {}),
    maxContext: result.largestContext?.tokens ?? 0,
    contexts: (result.rows ?? []).map((row) => ({ context: row.context, bytes: row.total, fits: row.fits, tokensPerSecond: row.decodeTokensPerSecond })),
  };
}
