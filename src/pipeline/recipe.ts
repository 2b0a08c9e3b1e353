/**
 * Recipes: YAML files that name a model and the artifacts to build from it.
 *
 * A recipe is parsed with the `yaml` package (keeping every node's position),
 * validated against formats/recipe.schema.json with ajv, then checked for what
 * a schema cannot say (paths that leave the output folder, two outputs on one
 * path, settings that contradict each other). Every problem is reported with
 * file:line:column, all of them at once, before any work starts.
 */
import { existsSync, readFileSync } from "node:fs";
import { basename, dirname, isAbsolute, posix, resolve, win32 } from "node:path";
import { Ajv, type ErrorObject } from "ajv";
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseAllDocuments, type Document, type Node, type Pair } from "yaml";
import { UserError } from "../errors.js";
import { parseHubSource, type HubSource } from "../readers/hub.js";

export interface Problem {
  readonly line: number;
  readonly column: number;
  readonly message: string;
}

/** A recipe that cannot run: every problem found, each with its position. */
export class RecipeError extends UserError {
  constructor(
    readonly file: string,
    readonly problems: readonly Problem[],
  ) {
    super(problems.map((p) => `${file}:${p.line}:${p.column}: ${p.message}`).join("\n"));
    this.name = "RecipeError";
  }
}

export type OnnxBits = 32 | 16 | 8 | 4 | 1.58;
export type MlxBits = 2 | 3 | 4 | 5 | 6 | 8 | 1.58;
export type MlxMixed = "mixed_2_6" | "mixed_3_4" | "mixed_3_6" | "mixed_4_6";

interface OutputBase {
  /** Where it goes, relative to the output folder, with '/' separators; folders have no trailing slash. */
  readonly path: string;
  /** Where the recipe declares it, e.g. outputs.gguf[1], and its position. */
  readonly where: string;
  readonly line: number;
  readonly column: number;
}
export interface GgufOutput extends OutputBase {
  readonly kind: "gguf";
  readonly scheme: string;
  readonly splitMaxSize?: string;
}
export interface OnnxOutput extends OutputBase {
  readonly kind: "onnx";
  readonly bits: OnnxBits;
  readonly layout: "genai" | "transformersjs";
  readonly groupSize?: 16 | 32 | 64 | 128;
  readonly accuracyLevel?: 0 | 1 | 4;
}
export interface MlxOutput extends OutputBase {
  readonly kind: "mlx";
  readonly bits: MlxBits;
  readonly groupSize?: 32 | 64 | 128;
  readonly mixed?: MlxMixed;
  readonly maxShardSize?: string;
}
export type RecipeOutput = GgufOutput | OnnxOutput | MlxOutput;

export type RecipeSource =
  | { readonly kind: "local"; readonly uri: string; readonly path: string }
  | ({ readonly kind: "hub"; readonly uri: string } & HubSource);

export interface FitRequest {
  readonly devices?: readonly string[];
  readonly contexts?: readonly number[];
  /** Extra devices and runtimes (formats/devices.schema.json), as the recipe wrote the path (relative to its folder). */
  readonly devicesFile?: string;
  /** Where each of `devices` is written, for messages about unknown ids. */
  readonly devicePositions?: readonly { readonly line: number; readonly column: number }[];
}

export interface Recipe {
  /** The recipe file as the user named it (for messages) and its absolute folder. */
  readonly file: string;
  readonly directory: string;
  readonly name: string;
  readonly description?: string;
  readonly source: RecipeSource;
  /** The recipe's own output folder (absolute), if it names one. */
  readonly out?: string;
  readonly threads?: number;
  readonly outputs: readonly RecipeOutput[];
  /** false: no fit files. */
  readonly fit: FitRequest | false;
}

const SCHEMA_URL = new URL("../../formats/recipe.schema.json", import.meta.url);
let validator: ReturnType<Ajv["compile"]> | undefined;
let schemaCache: JsonSchema | undefined;

interface JsonSchema {
  title?: string;
  description?: string;
  type?: string | string[];
  enum?: unknown[];
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  $ref?: string;
  then?: JsonSchema;
  definitions?: Record<string, JsonSchema>;
  [key: string]: unknown;
}

export function recipeSchema(): JsonSchema {
  schemaCache ??= JSON.parse(readFileSync(SCHEMA_URL, "utf8")) as JsonSchema;
  return schemaCache;
}

function validate(data: unknown): ErrorObject[] {
  if (!validator) {
    const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true, verbose: true });
    validator = ajv.compile(recipeSchema());
  }
  return validator(data) ? [] : [...(validator.errors ?? [])];
}

/** Reads, parses and checks a recipe; throws a RecipeError listing every problem. */
export function loadRecipe(file: string): Recipe {
  const absolute = resolve(file);
  let text: string;
  try {
    text = readFileSync(absolute, "utf8");
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    throw new UserError(code === "ENOENT" ? "no such recipe file" : code === "EISDIR" ? "a recipe is a YAML file, and this is a folder" : `cannot read the recipe (${code ?? String(cause)})`, { file });
  }
  return parseRecipe(text, file, dirname(absolute));
}

/** Parses recipe text; `file` names it in messages and `directory` anchors its relative paths. */
export function parseRecipe(text: string, file: string, directory: string): Recipe {
  const lineCounter = new LineCounter();
  const documents = parseAllDocuments(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number) => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };
  const docs = Array.isArray(documents) ? documents : [];
  const problems: Problem[] = [];
  for (const doc of docs) {
    for (const error of doc.errors) problems.push({ ...at(error.pos[0]), message: `YAML syntax error: ${firstLine(error.message)}` });
  }
  if (problems.length > 0) throw new RecipeError(file, sortProblems(problems));
  if (docs.length > 1) {
    const second = docs[1]!;
    throw new RecipeError(file, [{ ...at(second.range[0]), message: "the recipe holds several YAML documents ('---'); give one recipe per file" }]);
  }
  const doc = docs[0];
  if (!doc || doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) {
    throw new RecipeError(file, [{ line: 1, column: 1, message: "the recipe is empty; expected a mapping with at least 'source' and 'outputs'" }]);
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 1000 });
  } catch (cause) {
    throw new RecipeError(file, [{ line: 1, column: 1, message: `YAML error: ${(cause as Error).message}` }]);
  }

  const locate = new Locator(doc, at);
  for (const error of validate(data)) {
    const problem = explain(error, locate);
    if (problem) problems.push(problem);
  }
  if (problems.length > 0) {
    // The source is worth checking even when the shape is wrong elsewhere: one round of fixes, not two.
    const source = (data as { source?: unknown } | null)?.source;
    if (typeof source === "string" && source !== "") interpretSource(source, directory, (segments, message) => problems.push({ ...locate.position(segments), message }));
    throw new RecipeError(file, dedupe(sortProblems(problems)));
  }

  const recipe = interpret(data as RawRecipe, file, directory, locate, problems);
  if (problems.length > 0) throw new RecipeError(file, dedupe(sortProblems(problems)));
  return recipe;
}

// ---------------------------------------------------------------------------
// Positions

type Position = { line: number; column: number };

/** Finds the YAML node behind a JSON pointer, for its line and column. */
class Locator {
  constructor(
    private readonly doc: Document,
    private readonly at: (offset: number) => Position,
  ) {}

  /** The value at `pointer` (or, with `key`, the key of its last segment). Falls back to the nearest existing ancestor. */
  position(segments: readonly string[], key = false): Position {
    let node: unknown = this.doc.contents;
    let pair: Pair | undefined;
    let best = this.start(node) ?? { line: 1, column: 1 };
    for (const segment of segments) {
      node = this.resolveAlias(node);
      pair = undefined;
      if (isMap(node)) {
        pair = node.items.find((item) => isPair(item) && keyText(item.key) === segment) as Pair | undefined;
        node = pair?.value;
      } else if (isSeq(node)) {
        node = node.items[Number(segment)];
      } else {
        return best;
      }
      if (node === undefined && pair === undefined) return best;
      const here = key && pair ? this.start(pair.key) : (this.start(node) ?? (pair ? this.start(pair.key) : undefined));
      if (here) best = here;
    }
    return best;
  }

  private resolveAlias(node: unknown): unknown {
    return isAlias(node) ? node.resolve(this.doc) : node;
  }

  private start(node: unknown): Position | undefined {
    const range = (node as Node | undefined)?.range;
    return range ? this.at(range[0]) : undefined;
  }
}

function keyText(key: unknown): string | undefined {
  return isScalar(key) ? String(key.value) : undefined;
}

function pointerSegments(pointer: string): string[] {
  return pointer === "" ? [] : pointer.slice(1).split("/").map((s) => s.replaceAll("~1", "/").replaceAll("~0", "~"));
}

/** outputs.gguf[1].scheme */
function label(segments: readonly string[]): string {
  let text = "";
  for (const segment of segments) text += /^\d+$/.test(segment) ? `[${segment}]` : text ? `.${segment}` : segment;
  return text || "the recipe";
}

// ---------------------------------------------------------------------------
// Schema errors in words

const TYPE_WORDS: Record<string, string> = {
  string: "a string",
  object: "a mapping (key: value lines)",
  array: "a list ('- item' lines)",
  integer: "a whole number",
  number: "a number",
  boolean: "true or false",
  null: "empty",
};

function describeValue(value: unknown): string {
  if (value === null || value === undefined) return "nothing";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  if (typeof value === "string") return `the string '${value}'`;
  if (typeof value === "number") return `the number ${value}`;
  return `${typeof value} ${String(value)}`;
}

function schemaAt(schemaPath: string): JsonSchema | undefined {
  let node: unknown = recipeSchema();
  for (const segment of pointerSegments(schemaPath.replace(/^#/, ""))) {
    node = (node as Record<string, unknown> | undefined)?.[segment];
  }
  return node as JsonSchema | undefined;
}

function resolveRef(schema: JsonSchema | undefined): JsonSchema | undefined {
  return schema?.$ref ? schemaAt(schema.$ref) : schema;
}

function explain(error: ErrorObject, locate: Locator): Problem | undefined {
  const segments = pointerSegments(error.instancePath);
  const where = label(segments);
  const parent = error.parentSchema as JsonSchema | undefined;
  const name = parent?.title;
  switch (error.keyword) {
    case "if":
      return undefined; // the failing branch's own errors say what is wrong
    case "additionalProperties": {
      const key = (error.params as { additionalProperty: string }).additionalProperty;
      const known = Object.keys(parent?.properties ?? {}).filter((k) => k !== "$schema");
      const suggestion = closest(key, known);
      return {
        ...locate.position([...segments, key], true),
        message: `unknown key '${key}' in ${where}${suggestion ? ` (did you mean '${suggestion}'?)` : ""}; expected one of: ${known.join(", ")}`,
      };
    }
    case "required": {
      const key = (error.params as { missingProperty: string }).missingProperty;
      const what = resolveRef(parent?.properties?.[key])?.description;
      return { ...locate.position(segments), message: `missing key '${key}' in ${where}${what ? `: ${what}` : ""}` };
    }
    case "type": {
      const types = ([] as string[]).concat((error.params as { type: string | string[] }).type);
      const expected = types.map((t) => (name && types.includes("string") && types.includes("object") && t === "string" ? "a scheme name" : (TYPE_WORDS[t] ?? t))).join(" or ");
      return { ...locate.position(segments), message: `${where} must be ${expected}; got ${describeValue(error.data)}` };
    }
    case "enum": {
      const allowed = (error.params as { allowedValues: unknown[] }).allowedValues.map((v) => String(v));
      const value = error.data;
      const thing = name ?? where;
      const suggestion = typeof value === "string" ? (allowed.includes(value.toLowerCase()) ? value.toLowerCase() : closest(value, allowed)) : undefined;
      return {
        ...locate.position(segments),
        message: `${where}: unknown ${thing} ${typeof value === "string" ? `'${value}'` : describeValue(value)}${suggestion ? ` (did you mean '${suggestion}'?)` : ""}; expected one of: ${allowed.join(", ")}`,
      };
    }
    case "pattern":
      return { ...locate.position(segments), message: `${where}: '${String(error.data)}' is not a valid ${name ?? "value"} (${parent?.description ?? `expected text matching ${(error.params as { pattern: string }).pattern}`})` };
    case "minItems":
      return { ...locate.position(segments), message: `${where} is an empty list; give at least one item or remove the key` };
    case "minProperties":
      return { ...locate.position(segments), message: `${where} is empty; expected at least one of: ${Object.keys(parent?.properties ?? {}).join(", ")}` };
    case "minLength":
      return { ...locate.position(segments), message: `${where} is empty; expected ${parent?.description ?? "some text"}` };
    case "minimum":
    case "maximum": {
      const limit = (error.params as { limit: number }).limit;
      return { ...locate.position(segments), message: `${where} must be ${error.keyword === "minimum" ? "at least" : "at most"} ${limit}; got ${String(error.data)}` };
    }
    default:
      return { ...locate.position(segments), message: `${where} ${error.message ?? "is not valid"}` };
  }
}

/** The closest candidate within two edits, for "did you mean". */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of candidates) {
    const distance = editDistance(word, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best === word ? undefined : best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current.push(Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)));
    }
    previous = current;
  }
  return previous[b.length]!;
}

function sortProblems(problems: Problem[]): Problem[] {
  return problems.sort((a, b) => a.line - b.line || a.column - b.column);
}

function dedupe(problems: Problem[]): Problem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const key = `${p.line}:${p.column}:${p.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function firstLine(message: string): string {
  return message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "");
}

// ---------------------------------------------------------------------------
// What the schema cannot say

interface RawRecipe {
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
  "group-size"?: 16 | 32 | 64 | 128;
  "accuracy-level"?: 0 | 1 | 4;
  path?: string;
}
interface RawMlx {
  bits?: MlxBits;
  "group-size"?: 32 | 64 | 128;
  mixed?: MlxMixed;
  "max-shard-size"?: string;
  path?: string;
}

const MIXED_LOW_BITS: Record<MlxMixed, MlxBits> = { mixed_2_6: 2, mixed_3_4: 3, mixed_3_6: 3, mixed_4_6: 4 };
const ONNX_TAGS: Record<string, string> = { "32": "fp32", "16": "fp16", "8": "q8", "4": "q4", "1.58": "ternary" };
const RESERVED = new Set(["manifest.json"]);

function interpret(raw: RawRecipe, file: string, directory: string, locate: Locator, problems: Problem[]): Recipe {
  const problem = (segments: string[], message: string, key = false) => problems.push({ ...locate.position(segments, key), message });

  const source = interpretSource(raw.source, directory, problem);
  const name = raw.name ?? defaultName(source);

  const outputs: RecipeOutput[] = [];
  for (const [kind, items] of Object.entries(raw.outputs)) {
    items.forEach((item, index) => {
      const segments = ["outputs", kind, String(index)];
      const where = label(segments);
      const { line, column } = locate.position(segments);
      const base = { where, line, column };
      const pathOf = (given: string | undefined, fallback: string, isFile: boolean): string => {
        if (given === undefined) return fallback;
        const checked = checkOutputPath(given, isFile);
        if (typeof checked !== "string") {
          problem([...segments, "path"], `${where}.path: ${checked.problem}`);
          return fallback;
        }
        return checked;
      };
      if (kind === "gguf") {
        const g = item as RawGguf;
        const spec = typeof g === "string" ? { scheme: g } : g;
        const splitMaxSize = typeof g === "string" ? undefined : g["split-max-size"];
        outputs.push({
          kind: "gguf",
          ...base,
          scheme: spec.scheme,
          ...(splitMaxSize ? { splitMaxSize } : {}),
          path: pathOf(typeof g === "string" ? undefined : g.path, `${name}-${spec.scheme}.gguf`, true),
        });
      } else if (kind === "onnx") {
        const o = item as RawOnnx;
        const layout = o.layout ?? "genai";
        const quantized = o.bits === 8 || o.bits === 4 || o.bits === 1.58;
        if (o["group-size"] !== undefined && !quantized) problem([...segments, "group-size"], `${where}: group-size applies to 8-, 4- and 1.58-bit ONNX outputs, not ${o.bits}-bit`, true);
        if (o["accuracy-level"] !== undefined && !quantized) problem([...segments, "accuracy-level"], `${where}: accuracy-level applies to 8-, 4- and 1.58-bit ONNX outputs, not ${o.bits}-bit`, true);
        const suffix = `${layout === "transformersjs" ? "-transformersjs" : ""}${o["group-size"] && o["group-size"] !== 32 ? `-g${o["group-size"]}` : ""}${o["accuracy-level"] ? `-acc${o["accuracy-level"]}` : ""}`;
        outputs.push({
          kind: "onnx",
          ...base,
          bits: o.bits,
          layout,
          ...(o["group-size"] !== undefined ? { groupSize: o["group-size"] } : {}),
          ...(o["accuracy-level"] !== undefined ? { accuracyLevel: o["accuracy-level"] } : {}),
          path: pathOf(o.path, `${name}-onnx-${ONNX_TAGS[String(o.bits)]}${suffix}`, false),
        });
      } else if (kind === "mlx") {
        const m = item as RawMlx;
        let bits = m.bits;
        if (m.mixed !== undefined) {
          const low = MIXED_LOW_BITS[m.mixed];
          if (bits !== undefined && bits !== low) problem([...segments, "bits"], `${where}: ${m.mixed} quantizes with ${low} and ${m.mixed.slice(-1)} bits, so its bits setting is ${low} (or leave bits out); got ${bits}`);
          bits = low;
        }
        if (bits === undefined) {
          problem(segments, `${where}: an MLX output needs 'bits' (2, 3, 4, 5, 6, 8 or 1.58) or 'mixed' (mixed_2_6, mixed_3_4, mixed_3_6, mixed_4_6)`);
          bits = 4;
        }
        const tag = m.mixed ?? (bits === 1.58 ? "1.58bit" : `${bits}bit`);
        const suffix = m["group-size"] && m["group-size"] !== 64 ? `-g${m["group-size"]}` : "";
        outputs.push({
          kind: "mlx",
          ...base,
          bits,
          ...(m["group-size"] !== undefined ? { groupSize: m["group-size"] } : {}),
          ...(m.mixed !== undefined ? { mixed: m.mixed } : {}),
          ...(m["max-shard-size"] !== undefined ? { maxShardSize: m["max-shard-size"] } : {}),
          path: pathOf(m.path, `${name}-mlx-${tag}${suffix}`, false),
        });
      }
    });
  }
  checkCollisions(outputs, problems);

  let fit: FitRequest | false = raw.fit === false ? false : {};
  if (typeof raw.fit === "object") {
    const devicesFile = raw.fit["devices-file"];
    if (devicesFile !== undefined && !existsSync(resolve(directory, devicesFile))) {
      problem(["fit", "devices-file"], `fit.devices-file: '${devicesFile}' does not exist (looked for ${resolve(directory, devicesFile)})`);
    }
    fit = {
      ...(raw.fit.devices ? { devices: raw.fit.devices, devicePositions: raw.fit.devices.map((_, i) => locate.position(["fit", "devices", String(i)])) } : {}),
      ...(raw.fit.contexts ? { contexts: raw.fit.contexts } : {}),
      ...(devicesFile !== undefined ? { devicesFile } : {}),
    };
  }

  return {
    file,
    directory,
    name,
    ...(raw.description !== undefined ? { description: raw.description } : {}),
    source,
    ...(raw.out !== undefined ? { out: resolve(directory, raw.out) } : {}),
    ...(raw.threads !== undefined ? { threads: raw.threads } : {}),
    outputs,
    fit,
  };
}

function interpretSource(uri: string, directory: string, problem: (segments: string[], message: string) => void): RecipeSource {
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
