/**
 * What a schema cannot say about a recipe: default names and paths, output paths that
 * leave the output folder, two outputs on one path, settings that contradict each other,
 * a source or devices file that does not exist. The recipe has passed the schema, so the
 * shapes are right; every problem found is added to the list, none is thrown.
 */
import { existsSync } from "node:fs";
import { basename, isAbsolute, posix, resolve, win32 } from "node:path";
import type { AccuracyLevel, OnnxBits, OnnxGroupSize } from "../options.js";
import { parseHubSource } from "../readers/hub.js";
import type { MlxGroupSize } from "../writers/mlx/affine.js";
import { MIXED_RECIPES, type MixedRecipe } from "../writers/mlx/recipes.js";
import type { FitRequest, GgufOutput, MlxMixed, MlxOutput, OnnxOutput, Problem, Recipe, MlxRecipeBits, RecipeOutput, RecipeSource } from "./recipe.js";
import { label, type Locator } from "./recipe-schema.js";

/** A recipe as the schema admits it. */
export interface RawRecipe {
  name?: string;
  description?: string;
  source: string;
  out?: string;
  threads?: number;
  outputs: Record<string, unknown[]>;
  fit?: boolean | { devices?: string[]; contexts?: number[]; "devices-file"?: string };
}

type RawGguf = string | { scheme: string; path?: string; "split-max-size"?: string };
interface RawOnnx {
  bits: OnnxBits;
  layout?: "genai" | "transformersjs";
  "group-size"?: OnnxGroupSize;
  "accuracy-level"?: AccuracyLevel;
  path?: string;
}
interface RawMlx {
  bits?: MlxRecipeBits;
  "group-size"?: MlxGroupSize;
  mixed?: MlxMixed;
  "max-shard-size"?: string;
  path?: string;
}

const ONNX_TAGS: Record<string, string> = { "32": "fp32", "16": "fp16", "8": "q8", "4": "q4", "1.58": "ternary" };
const RESERVED = new Set(["manifest.json"]);

type ReportProblem = (segments: string[], message: string, key?: boolean) => void;

/** Turns a recipe the schema accepted into a Recipe; what is wrong with it goes to `problems`. */
export function interpret(raw: RawRecipe, file: string, directory: string, locate: Locator, problems: Problem[]): Recipe {
  const problem: ReportProblem = (segments, message, key = false) => problems.push({ ...locate.position(segments, key), message });
  const source = interpretSource(raw.source, directory, problem);
  const name = raw.name ?? defaultName(source);
  const outputs: RecipeOutput[] = [];
  for (const [kind, items] of Object.entries(raw.outputs)) {
    items.forEach((item, index) => {
      const output = interpretOutput(kind, item, outputPlace(["outputs", kind, String(index)], name, locate, problem));
      if (output) outputs.push(output);
    });
  }
  checkCollisions(outputs, problems);
  return {
    file,
    directory,
    name,
    ...(raw.description !== undefined ? { description: raw.description } : {}),
    source,
    ...(raw.out !== undefined ? { out: resolve(directory, raw.out) } : {}),
    ...(raw.threads !== undefined ? { threads: raw.threads } : {}),
    outputs,
    fit: interpretFit(raw.fit, directory, locate, problem),
  };
}

/** Where one output is declared, and what interpreting it needs. */
interface OutputPlace {
  /** outputs.gguf[1], and its position. */
  readonly base: { readonly where: string; readonly line: number; readonly column: number };
  /** The model's name, which default paths start with. */
  readonly name: string;
  /** A problem with the output (key: one of its keys; atKey: at the key rather than its value). */
  problem(key: string | undefined, message: string, atKey?: boolean): void;
  /** The path given, checked, or else `fallback`. */
  path(given: string | undefined, fallback: string, isFile: boolean): string;
}

function outputPlace(segments: string[], name: string, locate: Locator, problem: ReportProblem): OutputPlace {
  const where = label(segments);
  const report = (key: string | undefined, message: string, atKey = false) => problem(key === undefined ? segments : [...segments, key], message, atKey);
  return {
    base: { where, ...locate.position(segments) },
    name,
    problem: report,
    path(given, fallback, isFile) {
      if (given === undefined) return fallback;
      const checked = checkOutputPath(given, isFile);
      if (typeof checked === "string") return checked;
      report("path", `${where}.path: ${checked.problem}`);
      return fallback;
    },
  };
}

function interpretOutput(kind: string, item: unknown, at: OutputPlace): RecipeOutput | undefined {
  if (kind === "gguf") return ggufOutput(item as RawGguf, at);
  if (kind === "onnx") return onnxOutput(item as RawOnnx, at);
  if (kind === "mlx") return mlxOutput(item as RawMlx, at);
  return undefined; // the schema admits no other kind
}

function ggufOutput(g: RawGguf, at: OutputPlace): GgufOutput {
  const spec = typeof g === "string" ? { scheme: g } : g;
  return {
    kind: "gguf",
    ...at.base,
    scheme: spec.scheme,
    ...(spec["split-max-size"] ? { splitMaxSize: spec["split-max-size"] } : {}),
    path: at.path(spec.path, `${at.name}-${spec.scheme}.gguf`, true),
  };
}

function onnxOutput(o: RawOnnx, at: OutputPlace): OnnxOutput {
  const { where } = at.base;
  const layout = o.layout ?? "genai";
  const groupSize = o["group-size"];
  const accuracyLevel = o["accuracy-level"];
  const quantized = o.bits === 8 || o.bits === 4 || o.bits === 1.58;
  if (groupSize !== undefined && !quantized) at.problem("group-size", `${where}: group-size applies to 8-, 4- and 1.58-bit ONNX outputs, not ${o.bits}-bit`, true);
  if (accuracyLevel !== undefined && !quantized) at.problem("accuracy-level", `${where}: accuracy-level applies to 8-, 4- and 1.58-bit ONNX outputs, not ${o.bits}-bit`, true);
  const suffix = `${layout === "transformersjs" ? "-transformersjs" : ""}${groupSize && groupSize !== 32 ? `-g${groupSize}` : ""}${accuracyLevel ? `-acc${accuracyLevel}` : ""}`;
  return {
    kind: "onnx",
    ...at.base,
    bits: o.bits,
    layout,
    ...(groupSize !== undefined ? { groupSize } : {}),
    ...(accuracyLevel !== undefined ? { accuracyLevel } : {}),
    path: at.path(o.path, `${at.name}-onnx-${ONNX_TAGS[String(o.bits)]}${suffix}`, false),
  };
}

function mlxOutput(m: RawMlx, at: OutputPlace): MlxOutput {
  const { where } = at.base;
  let bits = m.bits;
  if (m.mixed !== undefined) {
    const { low, high } = MIXED_RECIPES[m.mixed.slice("mixed_".length) as MixedRecipe];
    if (bits !== undefined && bits !== low) at.problem("bits", `${where}: ${m.mixed} quantizes with ${low} and ${high} bits, so its bits setting is ${low} (or leave bits out); got ${bits}`);
    bits = low;
  }
  if (bits === undefined) {
    at.problem(undefined, `${where}: an MLX output needs 'bits' (2, 3, 4, 5, 6, 8 or 1.58) or 'mixed' (mixed_2_6, mixed_3_4, mixed_3_6, mixed_4_6)`);
    bits = 4;
  }
  const tag = m.mixed ?? (bits === 1.58 ? "1.58bit" : `${bits}bit`);
  const suffix = m["group-size"] && m["group-size"] !== 64 ? `-g${m["group-size"]}` : "";
  return {
    kind: "mlx",
    ...at.base,
    bits,
    ...(m["group-size"] !== undefined ? { groupSize: m["group-size"] } : {}),
    ...(m.mixed !== undefined ? { mixed: m.mixed } : {}),
    ...(m["max-shard-size"] !== undefined ? { maxShardSize: m["max-shard-size"] } : {}),
    path: at.path(m.path, `${at.name}-mlx-${tag}${suffix}`, false),
  };
}

function interpretFit(raw: RawRecipe["fit"], directory: string, locate: Locator, problem: ReportProblem): FitRequest | false {
  if (raw === false) return false;
  if (typeof raw !== "object") return {};
  const devicesFile = raw["devices-file"];
  if (devicesFile !== undefined && !existsSync(resolve(directory, devicesFile))) {
    problem(["fit", "devices-file"], `fit.devices-file: '${devicesFile}' does not exist (looked for ${resolve(directory, devicesFile)})`);
  }
  return {
    ...(raw.devices ? { devices: raw.devices, devicePositions: raw.devices.map((_, i) => locate.position(["fit", "devices", String(i)])) } : {}),
    ...(raw.contexts ? { contexts: raw.contexts } : {}),
    ...(devicesFile !== undefined ? { devicesFile } : {}),
  };
}

/** The recipe's source: an hf: id, checked, or a path that must exist (relative to the recipe's folder). */
export function interpretSource(uri: string, directory: string, problem: (segments: string[], message: string) => void): RecipeSource {
  if (uri.startsWith("hf:")) {
    try {
      return { kind: "hub", uri, ...parseHubSource(uri) };
    } catch (error) {
      problem(["source"], (error as Error).message);
      return { kind: "local", uri, path: "" };
    }
  }
  const path = resolve(directory, uri);
  if (!existsSync(path)) problem(["source"], `source '${uri}' does not exist (looked for ${path}); give a model folder, a .safetensors file or hf:org/name@revision`);
  return { kind: "local", uri, path };
}

/** The folder's or repository's name, made safe for file names. */
function defaultName(source: RecipeSource): string {
  const base = source.kind === "hub" ? source.repo.split("/").at(-1)! : basename(source.path).replace(/\.safetensors$/, "");
  return base.replace(/[^A-Za-z0-9._-]/g, "-").replace(/^[^A-Za-z0-9]+/, "") || "model";
}

/**
 * An output path must stay inside the output folder: relative, no '.' or '..'
 * segments, no empty segments. Returns the clean path or what is wrong.
 */
function checkOutputPath(path: string, isFile: boolean): string | { problem: string } {
  const trimmed = isFile ? path : path.replace(/\/+$/, "");
  if (isAbsolute(trimmed) || win32.isAbsolute(trimmed) || trimmed.startsWith("/")) {
    return { problem: `'${path}' is absolute; output paths are relative to the output folder (--out) and stay inside it` };
  }
  const segments = trimmed.split("/");
  if (segments.some((s) => s === "..")) {
    const normal = posix.normalize(trimmed);
    const escapes = normal === ".." || normal.startsWith("../");
    return { problem: `'${path}' ${escapes ? "leaves the output folder" : "has a '..' segment"}; output paths are relative to the output folder (--out) and stay inside it` };
  }
  if (segments.some((s) => s === "" || s === ".")) return { problem: `'${path}' has an empty or '.' segment; write it as folder/name` };
  if (segments.some((s) => s.startsWith("."))) return { problem: `'${path}' has a hidden ('.'-prefixed) segment; edgequant keeps those for its temporary files` };
  if (isFile && !trimmed.endsWith(".gguf")) return { problem: `'${path}' must end with .gguf` };
  if (!isFile && trimmed.endsWith(".gguf")) return { problem: `'${path}' names a folder (ONNX and MLX models are folders); drop the .gguf` };
  if (RESERVED.has(trimmed)) return { problem: `'${path}' is where manifest.json goes; choose another path` };
  return trimmed;
}

/** Two outputs on the same path, or one inside another's folder. */
function checkCollisions(outputs: readonly RecipeOutput[], problems: Problem[]): void {
  const claimed: RecipeOutput[] = [];
  for (const output of outputs) {
    const clash = claimed.find((other) => other.path === output.path || output.path.startsWith(`${other.path}/`) || other.path.startsWith(`${output.path}/`));
    if (clash) {
      const how = clash.path === output.path ? "the same path as" : "a path inside or around";
      problems.push({
        line: output.line,
        column: output.column,
        message: `${output.where} writes '${output.path}', ${how} ${clash.where} ('${clash.path}'); give one of them a different 'path'`,
      });
    } else {
      claimed.push(output);
    }
  }
}
