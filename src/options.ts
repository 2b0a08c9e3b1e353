/**
 * Settings that more than one front end takes (`edgequant convert` and `run` flags, recipe
 * keys, the Action's recipes): their allowed values and the parsing of their text forms, in
 * one place. formats/recipe.schema.json lists the same values for recipes, and
 * test/options.test.ts keeps the two in step.
 */
import { UserError } from "./errors.js";

/** ONNX bits per weight: float32, float16, then MatMulNBits' 8, 4 and 2-bit ternary blocks. */
export const ONNX_BITS = [32, 16, 8, 4, 1.58] as const;
export type OnnxBits = (typeof ONNX_BITS)[number];

/** Values per MatMulNBits block: powers of two from 16, as onnxruntime's kernels take them. */
export const ONNX_GROUP_SIZES = [16, 32, 64, 128] as const;
export type OnnxGroupSize = (typeof ONNX_GROUP_SIZES)[number];

/**
 * MatMulNBits `accuracy_level`s edgequant offers: 0 (unset: float activations), 1 (float32
 * activations) and 4 (activations quantized to int8: faster, as llama.cpp computes).
 */
export const ACCURACY_LEVELS = [0, 1, 4] as const;
export type AccuracyLevel = (typeof ACCURACY_LEVELS)[number];

/** "a, b or c" */
function alternatives(values: readonly unknown[]): string {
  const words = values.map(String);
  return words.length < 2 ? words.join("") : `${words.slice(0, -1).join(", ")} or ${words.at(-1)}`;
}

/** The allowed value whose text is `text`, exactly ("4", never "4.0" or "0x4"). */
function oneOf<T extends number>(option: string, text: string, allowed: readonly T[], why = ""): T {
  const found = allowed.find((value) => String(value) === text.trim());
  if (found === undefined) throw new UserError(`${option} must be ${alternatives(allowed)}${why}; got '${text}'`);
  return found;
}

export function parseOnnxBits(text: string): OnnxBits {
  return oneOf("--bits for --to onnx", text, ONNX_BITS);
}

export function parseOnnxGroupSize(text: string): OnnxGroupSize {
  return oneOf("--group-size for --to onnx", text, ONNX_GROUP_SIZES, " (MatMulNBits takes a power of two from 16)");
}

export function parseAccuracyLevel(text: string): AccuracyLevel {
  return oneOf("--accuracy-level", text, ACCURACY_LEVELS, " (MatMulNBits accuracy_level: 0 or 1 keeps activations in float, 4 quantizes them to int8)");
}

/** Worker threads: a positive whole number. */
export function parseThreads(text: string): number {
  const threads = Number(text);
  if (!/^\s*\d+\s*$/.test(text) || !Number.isSafeInteger(threads) || threads <= 0) throw new UserError(`--threads must be a positive integer, got '${text}'`);
  return threads;
}

/**
 * A size as gguf-split's --split-max-size takes it: a positive whole number of M (10^6) or G
 * (10^9) bytes, "2G", "500M". The same form serves recipes' split-max-size and max-shard-size;
 * `option` names the setting in the message.
 */
export function parseByteSize(text: string, option: string): number {
  const match = /^(\d+)([MG])$/.exec(text.trim());
  if (!match || Number(match[1]) <= 0) throw new UserError(`${option} takes a positive whole number of M or G (as gguf-split does), e.g. 2G or 500M; got '${text}'`);
  return Number(match[1]) * (match[2] === "G" ? 1e9 : 1e6);
}

/** `--part i/N`: which one of N GGUF splits to write; `index` counts from 0. */
export function parsePart(text: string): { index: number; count: number } {
  const match = /^(\d+)\/(\d+)$/.exec(text.trim());
  const index = Number(match?.[1]);
  const count = Number(match?.[2]);
  if (!match || count < 1 || index < 1 || index > count) throw new UserError(`--part takes i/N with 1 <= i <= N, e.g. 2/3; got '${text}'`);
  return { index: index - 1, count };
}

/** A context length: "8k" -> 8192, "32K" -> 32768, "4096" -> 4096. */
export function parseContext(text: string): number {
  const match = /^(\d+)([kK])?$/.exec(text.trim());
  const value = match ? Number(match[1]) * (match[2] ? 1024 : 1) : NaN;
  if (!Number.isSafeInteger(value) || value < 1) throw new UserError(`--ctx takes positive token counts such as 2048 or 8k; got '${text}'`);
  return value;
}

/** A repeatable, comma-separated option ("--devices a,b --devices c") as one list. */
export function splitList(values: readonly string[] | undefined): string[] | undefined {
  return values?.flatMap((v) => v.split(",")).map((v) => v.trim()).filter(Boolean);
}
