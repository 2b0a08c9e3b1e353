/**
 * `edgequant run`: a recipe's source resolved once (downloaded into the Hub
 * cache if it is an hf: source), every output built from it, then fit files,
 * then manifest.json. Everything the recipe says is checked before the first
 * byte is written.
 */
import { existsSync, lstatSync, readlinkSync, realpathSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join, resolve, sep } from "node:path";
import { ConfigReader, type HfConfig } from "../arch/config.js";
import { resolveArchitectureFor } from "../arch/index.js";
import { formatBytes, ProgressBar } from "../progress.js";
import { UserError } from "../errors.js";
import { VERSION } from "../version.js";
import { readJson } from "../readers/checkpoint.js";
import { resolveSource, type ResolveSourceOptions } from "../readers/hub.js";
import { FIT_STEP, type FitStep } from "./fit.js";
import { artifactEntry, describeFiles, MANIFEST_FILE, relativePath, writeManifest, type Manifest, type ManifestArtifact } from "./manifest.js";
import { kindOf } from "./outputs.js";
import { loadRecipe, RecipeError, type FitRequest, type Recipe, type RecipeOutput } from "./recipe.js";
import { didYouMean } from "../suggest.js";

export interface RunOptions {
  /** The recipe file. */
  readonly recipe: string;
  /** Output folder; default: the recipe's `out`, else ./out/<name>. */
  readonly out?: string;
  /** Overrides the recipe's thread count. */
  readonly threads?: number;
  /** Progress bars on stderr (default true). */
  readonly progress?: boolean;
  /** Status lines (default: stderr). */
  readonly log?: (line: string) => void;
  /** Hub settings for hf: sources (endpoint, cache, token, offline); default: the HF_* environment. */
  readonly hub?: Omit<ResolveSourceOptions, "baseDir" | "log" | "progress">;
  /** The fit step; default: src/fit. `null` turns fit off whatever the recipe says. */
  readonly fit?: FitStep | null;
}

export interface RunReport {
  readonly recipe: string;
  readonly outDir: string;
  readonly manifestPath: string;
  readonly manifest: Manifest;
  readonly warnings: readonly string[];
}

export async function runRecipe(options: RunOptions): Promise<RunReport> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const progress = options.progress ?? true;
  const recipe = loadRecipe(options.recipe);
  const outDir = resolve(options.out ?? recipe.out ?? join("out", recipe.name));
  const threads = options.threads ?? recipe.threads;
  const fitStep = options.fit === null ? undefined : (options.fit ?? FIT_STEP);

  // Everything that can be checked is checked before any work starts.
  const destinations = recipe.outputs.map((output) => destinationOf(outDir, output));
  recipe.outputs.forEach((output, i) => kindOf(output).checkDestination(destinations[i]!, output));
  if (recipe.fit && fitStep) await checkDevices(recipe, recipe.fit, fitStep);

  log(`edgequant run ${recipe.file}: ${recipe.outputs.length} output(s) of ${recipe.source.uri} into ${outDir}`);
  const source = await resolveSource(recipe.source.uri, {
    ...options.hub,
    baseDir: recipe.directory,
    log,
    progress,
    checkConfig: (configFile) => checkSource(configFile, recipe.outputs),
  });
  const warnings: string[] = [];
  try {
    await mkdir(outDir, { recursive: true }).catch((cause: NodeJS.ErrnoException) => {
      throw new UserError(`cannot create the output folder (${cause.code ?? cause.message})`, { file: outDir });
    });
    const built: { output: RecipeOutput; artifact: ManifestArtifact; path: string }[] = [];
    for (const [i, output] of recipe.outputs.entries()) {
      const kind = kindOf(output);
      const label = `[${i + 1}/${recipe.outputs.length}] ${kind.describe(output)}`;
      const bar = new ProgressBar(label, progress);
      const started = Date.now();
      const result = await kind.build(output, {
        source: source.path,
        destination: destinations[i]!,
        ...(threads !== undefined ? { threads } : {}),
        onProgress: (done, total, detail) => bar.update(done, total, detail),
      });
      bar.finish();
      const files = await describeFiles(outDir, result.files);
      const artifact = artifactEntry({
        path: relativePath(outDir, result.path),
        format: kind.format,
        scheme: result.scheme,
        architecture: result.architecture,
        settings: result.settings,
        files,
      });
      for (const warning of result.warnings) warnings.push(`${output.where} (${output.path}): ${warning}`);
      log(`${label}: ${artifact.path} ${formatBytes(artifact.bytes)} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      built.push({ output, artifact, path: result.path });
    }

    let artifacts = built.map((b) => b.artifact);
    let fitSummary: Manifest["fit"];
    if (recipe.fit && fitStep) {
      const fit = await fitStep.run(
        built.map((b) => ({ path: b.path, format: b.artifact.format })),
        recipe.fit,
        recipe.directory,
        (files) => describeFiles(outDir, files),
      );
      artifacts = artifacts.map((artifact, i) => ({ ...artifact, fit: fit.artifacts[i]! }));
      fitSummary = { devices: fit.devices, contexts: fit.contexts };
    }

    const manifest: Manifest = {
      manifestVersion: 1,
      edgequant: VERSION,
      name: recipe.name,
      source: sourceEntry(recipe, source.revision),
      artifacts,
      ...(fitSummary ? { fit: fitSummary } : {}),
    };
    const manifestPath = join(outDir, MANIFEST_FILE);
    await writeManifest(manifestPath, manifest);
    log(`wrote ${manifestPath}: ${artifacts.length} artifact(s), ${formatBytes(artifacts.reduce((s, a) => s + a.bytes, 0))}`);
    for (const warning of warnings) log(`warning: ${warning}`);
    return { recipe: recipe.file, outDir, manifestPath, manifest, warnings };
  } finally {
    await source.dispose();
  }
}

/** Device ids the catalogue does not know, each at its place in the recipe. */
async function checkDevices(recipe: Recipe, fit: FitRequest, step: FitStep): Promise<void> {
  const known = await step.knownDevices(fit, recipe.directory);
  const problems = (fit.devices ?? []).flatMap((id, i) => {
    if (known.includes(id)) return [];
    const where = fit.devicePositions?.[i] ?? { line: 1, column: 1 };
    return [{ ...where, message: `fit.devices[${i}]: unknown device '${id}'${didYouMean(id, known)}; known: ${known.join(", ")}` }];
  });
  if (problems.length > 0) throw new RecipeError(recipe.file, problems);
}

/** Every output kind can be made from this model: checked from config.json before any weights are read or downloaded. */
async function checkSource(configFile: string, outputs: readonly RecipeOutput[]): Promise<void> {
  const config = (await readJson(configFile)) as HfConfig;
  if (typeof config !== "object" || config === null || Array.isArray(config)) throw new UserError("expected a JSON object", { file: configFile });
  for (const output of outputs) {
    try {
      const kind = kindOf(output);
      const architecture = resolveArchitectureFor(kind.format, config, configFile);
      await kind.checkSource?.(architecture, new ConfigReader(config, configFile, architecture.configDefaults), configFile);
    } catch (error) {
      if (error instanceof UserError) throw new UserError(`${output.where} (${kindOf(output).describe(output)}): ${error.message}`);
      throw error;
    }
  }
}

function sourceEntry(recipe: Recipe, revision: string | undefined): Manifest["source"] {
  if (recipe.source.kind === "hub") return { uri: recipe.source.uri, repo: recipe.source.repo, ...(revision ? { revision } : {}) };
  return { uri: recipe.source.uri };
}

/**
 * The absolute destination of an output, refusing one that would leave the
 * output folder through a symlink already there (the recipe's paths were
 * checked to be relative and free of '..').
 */
function destinationOf(outDir: string, output: RecipeOutput): string {
  const destination = resolve(outDir, ...output.path.split("/"));
  if (!isInside(outDir, destination)) throw new UserError(`${output.where}: '${output.path}' leaves the output folder`, { file: outDir });
  if (existsSync(outDir)) {
    const root = realpathSync(outDir);
    let current = outDir;
    for (const segment of output.path.split("/")) {
      current = join(current, segment);
      let isLink = false;
      try {
        isLink = lstatSync(current).isSymbolicLink();
      } catch {
        break; // nothing further exists yet
      }
      if (!isLink) continue;
      let target: string;
      try {
        target = realpathSync(current);
      } catch {
        throw new UserError(`${output.where}: '${output.path}' goes through a symlink to nothing (${current} -> ${readlinkSync(current)}); remove it or choose another path`, { file: outDir });
      }
      if (!isInside(root, target)) {
        throw new UserError(`${output.where}: '${output.path}' goes through a symlink that points outside the output folder (${current})`, { file: outDir });
      }
    }
  }
  return destination;
}

function isInside(root: string, path: string): boolean {
  return path === root || path.startsWith(root.endsWith(sep) ? root : `${root}${sep}`);
}
