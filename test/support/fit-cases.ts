// The fit-vs-llama.cpp check as a table: one row per GGUF (any architecture), each with the
// settings to run. A row's GGUF is built only when one of its cases runs, so `vitest -t <name>`
// converts just that model. test/fit-llama.test.ts holds the table.

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { expect } from "vitest";
import { readGgufArtifact } from "../../src/fit/gguf-artifact.js";
import { DEFAULT_LLAMA_CPP, estimateLlamaCpp } from "../../src/fit/llama-cpp.js";
import { hostRepackProfile, insightsEstimate, measureLlamaCpp } from "./fit-llama.js";
import { cachedGguf, GGUF_CACHE } from "./gguf-cache.js";

const TOLERANCE = 0.05;
const MiB = 2 ** 20;

export interface FitSetting {
  readonly context: number;
  readonly flashAttention: boolean;
  readonly kv: "f16" | "q8_0";
}

export interface FitModel {
  /** The label in test names and in the printed table (unique). */
  readonly name: string;
  /** Returns the GGUF's path, writing it if needed; called at most once per run. */
  readonly gguf: () => Promise<string>;
  readonly settings: readonly FitSetting[];
}

/** Every combination of the given contexts, flash-attention switches and KV types. */
export function settings(contexts: readonly number[], flashAttention: readonly boolean[] = [false], kv: readonly FitSetting["kv"][] = ["f16"]): FitSetting[] {
  return contexts.flatMap((context) => flashAttention.flatMap((fa) => kv.map((k) => ({ context, flashAttention: fa, kv: k }))));
}

/**
 * A GGUF converted from a checkpoint folder that `write` fills (a synthetic checkpoint, say):
 * the folder lives in the fit cache, and cachedGguf's content key reuses the conversion.
 */
export function convertedGguf(name: string, scheme: string, write: (dir: string) => void): () => Promise<string> {
  return async () => {
    const dir = join(GGUF_CACHE, "sources", name);
    mkdirSync(dir, { recursive: true });
    write(dir);
    return cachedGguf(dir, name, scheme);
  };
}

export interface FitPair extends FitSetting {
  model: string;
  component: "model" | "kv" | "compute" | "output" | "kv+output";
  llamaCpp: number;
  ours: number;
  insights?: number;
}

/** The test cases of a table: one per row and setting. */
export function fitCases(models: readonly FitModel[]): (FitSetting & { model: FitModel; name: string })[] {
  const names = new Set(models.map((m) => m.name));
  if (names.size !== models.length) throw new Error("fit table: model names must be unique");
  return models.flatMap((model) => model.settings.map((s) => ({ ...s, model, name: model.name })));
}

const built = new Map<FitModel, Promise<string>>();

/** Runs llama.cpp and the fit model on one case, records the figures in `pairs`, asserts each within 5%. */
export async function checkFit(model: FitModel, setting: FitSetting, pairs: FitPair[]): Promise<void> {
  if (!built.has(model)) built.set(model, model.gguf());
  const path = await built.get(model)!;
  const { context, flashAttention, kv } = setting;
  const measured = await measureLlamaCpp(path, { contextSize: context, flashAttention, kvCacheType: kv === "q8_0" ? "Q8_0" : "F16" });
  const artifact = await readGgufArtifact(path);
  // the batch sizes the context really got (node-llama-cpp asks for 513 with sliding-window models
  // when the context allows it; llama.cpp's own default is 512)
  expect([512, 513]).toContain(measured.ubatch);
  const ours = estimateLlamaCpp(artifact, {
    ...DEFAULT_LLAMA_CPP,
    batchSize: measured.batch,
    ubatchSize: measured.ubatch,
    backend: "cpu",
    contextSize: context,
    flashAttention,
    kvCacheType: kv,
    cpuRepack: hostRepackProfile(),
  });
  const insights = await insightsEstimate(path, { contextSize: context, flashAttention, kvCacheType: kv });
  const add = (component: FitPair["component"], llamaCpp: number, mine: number, theirs?: number) =>
    pairs.push({ model: model.name, ...setting, component, llamaCpp, ours: mine, ...(theirs === undefined ? {} : { insights: theirs }) });
  const llamaModel = measured.modelMapped + measured.modelRepack;
  add("model", llamaModel, ours.weights.host + ours.weights.repack, insights.model);
  add("kv", measured.kv, ours.kv.total);
  add("compute", measured.compute, ours.compute, insights.graph);
  add("output", measured.output, ours.output);
  // GgufInsights does not split its context figure: compare it with llama.cpp's KV + output buffers
  add("kv+output", measured.kv + measured.output, ours.kv.total + ours.output, insights.context);

  expect(ours.cells).toBe(measured.cells);
  expect(Math.abs(ours.weights.host - measured.modelMapped) / measured.modelMapped).toBeLessThanOrEqual(TOLERANCE);
  if (measured.modelRepack > 0) expect(Math.abs(ours.weights.repack - measured.modelRepack) / measured.modelRepack).toBeLessThanOrEqual(TOLERANCE);
  else expect(ours.weights.repack).toBe(0);
  expect(Math.abs(ours.weights.host + ours.weights.repack - llamaModel) / llamaModel).toBeLessThanOrEqual(TOLERANCE);
  expect(Math.abs(ours.kv.total - measured.kv) / measured.kv).toBeLessThanOrEqual(TOLERANCE);
  expect(Math.abs(ours.compute - measured.compute) / measured.compute).toBeLessThanOrEqual(TOLERANCE);
}

/** The table of figures, ours and GgufInsights' beside llama.cpp's. */
export function fitReport(pairs: readonly FitPair[]): string {
  const error = (a: number, b: number) => (b === 0 ? "     n/a" : `${(((a - b) / b) * 100).toFixed(2).padStart(7)}%`);
  const rows = pairs.map(
    (p) =>
      `${p.model.padEnd(29)} ${String(p.context).padStart(5)} ${p.flashAttention ? "FA " : "   "}${p.kv.padEnd(5)}${p.component.padEnd(8)} llama.cpp ${(p.llamaCpp / MiB).toFixed(2).padStart(8)} MiB  ours ${(p.ours / MiB).toFixed(2).padStart(8)} MiB ${error(p.ours, p.llamaCpp)}` +
      (p.insights === undefined ? "" : `  GgufInsights ${(p.insights / MiB).toFixed(2).padStart(8)} MiB ${error(p.insights, p.llamaCpp)}`),
  );
  return `\nfit model vs llama.cpp (CPU, repack profile ${hostRepackProfile()})\n${rows.join("\n")}`;
}
