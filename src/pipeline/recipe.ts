/**
 * Recipes: YAML files that name a model and the artifacts to build from it.
 *
 * A recipe is parsed with the `yaml` package (keeping every node's position),
 * validated against formats/recipe.schema.json with ajv (./recipe-schema.ts), then
 * checked for what a schema cannot say (./recipe-interpret.ts: paths that leave the
 * output folder, two outputs on one path, settings that contradict each other). Every
 * problem is reported with file:line:column, all of them at once, before any work starts.
 */
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { isScalar, LineCounter, parseAllDocuments } from "yaml";
import { UserError } from "../errors.js";
import type { AccuracyLevel, OnnxBits, OnnxGroupSize } from "../options.js";
import type { HubSource } from "../readers/hub.js";
import type { MlxBits, MlxGroupSize } from "../writers/mlx/affine.js";
import type { MixedRecipe } from "../writers/mlx/recipes.js";
import { interpret, interpretSource, type RawRecipe } from "./recipe-interpret.js";
import { explain, Locator, schemaErrors } from "./recipe-schema.js";

export { recipeSchema } from "./recipe-schema.js";

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

/** MLX bits a recipe may name: MLX's affine widths, and 1.58 for ternary checkpoints. */
export type MlxRecipeBits = MlxBits | 1.58;
/** mlx-lm's mixed recipes, as recipes spell them. */
export type MlxMixed = `mixed_${MixedRecipe}`;

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
  readonly groupSize?: OnnxGroupSize;
  readonly accuracyLevel?: AccuracyLevel;
}
export interface MlxOutput extends OutputBase {
  readonly kind: "mlx";
  readonly bits: MlxRecipeBits;
  readonly groupSize?: MlxGroupSize;
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
  for (const error of schemaErrors(data)) {
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
