// Reading the tokenizer files of a Hugging Face model folder. Every file is optional here;
// which ones are required is decided by the caller, which knows what it is building.

import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { UserError } from "../errors.js";
import { checkRegularFile } from "../readers/regular-file.js";
import { checkTokenizerConfigShape, checkTokenizerJsonShape } from "./tokenizer-json-shape.js";

/** The parts of a Hugging Face tokenizer.json this module reads. */
export interface TokenizerJson {
  readonly added_tokens?: readonly AddedTokenJson[];
  readonly normalizer?: JsonComponent | null;
  readonly pre_tokenizer?: JsonComponent | null;
  readonly post_processor?: JsonComponent | null;
  readonly decoder?: JsonComponent | null;
  readonly model: {
    readonly type?: string;
    readonly vocab?: Readonly<Record<string, number>>;
    /** "a b" strings, or [a, b] pairs since transformers 4.45 (which allows spaces inside a part). */
    readonly merges?: readonly (string | readonly [string, string])[];
    readonly byte_fallback?: boolean;
    readonly ignore_merges?: boolean;
  };
}

interface AddedTokenJson {
  readonly id: number;
  readonly content: string;
  readonly special?: boolean;
  readonly normalized?: boolean;
}

/** A normalizer / pre-tokenizer / post-processor / decoder node: a type tag plus its settings. */
export interface JsonComponent {
  readonly type?: string;
  readonly [setting: string]: unknown;
}

/** tokenizer_config.json, special_tokens_map.json and config.json are loose dictionaries. */
export type JsonObject = Readonly<Record<string, unknown>>;

/** A JSON file's parsed content together with its text, for libraries that want their own copy. */
export interface JsonFile<T> {
  readonly value: T;
  readonly text: string;
}

export interface ModelFiles {
  readonly directory: string;
  readonly tokenizerModel?: Uint8Array;
  readonly tokenizerJson?: JsonFile<TokenizerJson>;
  readonly tokenizerConfig?: JsonObject;
  readonly specialTokensMap?: JsonObject;
  readonly config?: JsonObject;
  readonly addedTokens?: Readonly<Record<string, number>>;
  readonly chatTemplateJinja?: string;
  readonly additionalChatTemplates: readonly { name: string; template: string }[];
  readonly chatTemplateJson?: JsonObject;
}

export async function readModelFiles(directory: string): Promise<ModelFiles> {
  const tokenizerJsonText = await readOptionalText(directory, "tokenizer.json");
  return {
    directory,
    tokenizerModel: await readOptionalBytes(directory, "tokenizer.model"),
    tokenizerJson: tokenizerJsonText === undefined ? undefined : { text: tokenizerJsonText, value: parseTokenizerJson(tokenizerJsonText, join(directory, "tokenizer.json")) },
    tokenizerConfig: await readOptionalObject(directory, "tokenizer_config.json", checkTokenizerConfigShape),
    specialTokensMap: await readOptionalObject(directory, "special_tokens_map.json", checkTokenizerConfigShape),
    config: await readOptionalObject(directory, "config.json"),
    addedTokens: await readAddedTokens(directory),
    chatTemplateJinja: await readOptionalText(directory, "chat_template.jinja"),
    additionalChatTemplates: await readAdditionalChatTemplates(directory),
    chatTemplateJson: await readOptionalObject(directory, "chat_template.json"),
  };
}

function parseTokenizerJson(text: string, file: string): TokenizerJson {
  const value = parseJson(text, file);
  if (!isObject(value) || !isObject(value["model"])) {
    throw new UserError("not a Hugging Face tokenizer.json: it has no \"model\" object", { file });
  }
  checkTokenizerJsonShape(value, file);
  return value as unknown as TokenizerJson;
}

async function readAddedTokens(directory: string): Promise<Record<string, number> | undefined> {
  const file = join(directory, "added_tokens.json");
  const value = await readOptionalObject(directory, "added_tokens.json");
  if (value === undefined) return undefined;
  for (const [token, id] of Object.entries(value)) {
    if (!Number.isInteger(id) || (id as number) < 0) throw new UserError(`token ${JSON.stringify(token)} has id ${JSON.stringify(id)}, expected a non-negative integer`, { file });
  }
  return value as Record<string, number>;
}

/** additional_chat_templates/*.jinja, named after the file, in a stable order. */
async function readAdditionalChatTemplates(directory: string): Promise<{ name: string; template: string }[]> {
  const folder = join(directory, "additional_chat_templates");
  let names: string[];
  try {
    names = (await readdir(folder)).filter((name) => name.endsWith(".jinja")).sort();
  } catch (error) {
    if (isMissingFile(error)) return [];
    throw error;
  }
  for (const name of names) checkRegularFile(join(folder, name), "chat template file");
  return Promise.all(names.map(async (name) => ({ name: name.slice(0, -".jinja".length), template: await readFile(join(folder, name), "utf8") })));
}

async function readOptionalObject(
  directory: string,
  name: string,
  checkShape?: (value: Record<string, unknown>, file: string) => void,
): Promise<JsonObject | undefined> {
  const text = await readOptionalText(directory, name);
  if (text === undefined) return undefined;
  const file = join(directory, name);
  const value = parseJson(text, file);
  if (!isObject(value)) throw new UserError("expected a JSON object", { file });
  checkShape?.(value as Record<string, unknown>, file);
  return value;
}

async function readOptionalText(directory: string, name: string): Promise<string | undefined> {
  const bytes = await readOptionalBytes(directory, name);
  return bytes === undefined ? undefined : new TextDecoder().decode(bytes);
}

async function readOptionalBytes(directory: string, name: string): Promise<Uint8Array | undefined> {
  checkRegularFile(join(directory, name));
  try {
    return await readFile(join(directory, name));
  } catch (error) {
    if (isMissingFile(error)) return undefined;
    throw new UserError(`cannot read: ${(error as Error).message}`, { file: join(directory, name) });
  }
}

function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new UserError(`invalid JSON: ${(error as Error).message}`, { file });
  }
}

function isMissingFile(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === "ENOENT" || code === "ENOTDIR";
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
