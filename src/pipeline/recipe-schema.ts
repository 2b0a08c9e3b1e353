/**
 * The recipe schema (formats/recipe.schema.json) and its verdicts in words: ajv's errors
 * become messages that name the key, what was expected and what was found, at the line and
 * column of the YAML node they are about.
 */
import { readFileSync } from "node:fs";
import { Ajv, type ErrorObject } from "ajv";
import { isAlias, isMap, isPair, isScalar, isSeq, type Document, type Node, type Pair } from "yaml";
import { closest } from "../suggest.js";
import type { Problem } from "./recipe.js";

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

/** The recipe schema, parsed once. */
export function recipeSchema(): JsonSchema {
  schemaCache ??= JSON.parse(readFileSync(SCHEMA_URL, "utf8")) as JsonSchema;
  return schemaCache;
}

/** Every way `data` breaks the schema. */
export function schemaErrors(data: unknown): ErrorObject[] {
  if (!validator) {
    const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true, verbose: true });
    validator = ajv.compile(recipeSchema());
  }
  return validator(data) ? [] : [...(validator.errors ?? [])];
}

// ---------------------------------------------------------------------------
// Positions

export type Position = { line: number; column: number };

/** Finds the YAML node behind a JSON pointer, for its line and column. */
export class Locator {
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
export function label(segments: readonly string[]): string {
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

/** One schema error as a problem at its position; undefined for errors that only restate others. */
export function explain(error: ErrorObject, locate: Locator): Problem | undefined {
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
      const suggestion = typeof value === "string" ? closest(value, allowed) : undefined;
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
