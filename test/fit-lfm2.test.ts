// Fit for LFM2's hybrid memory: llama.cpp keeps KV only for the attention layers and a recurrent
// conv state (RS buffer: n_embd * (l_cache - 1) F32 per sequence) for the short-convolution layers.
// The fit model's figures for our F16 and Q4_K_M GGUFs of a synthetic LFM2 (LFM2-350M's config)
// against llama.cpp's own buffer report, each within 5%, as test/fit-llama.test.ts does for llama.
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { readGgufArtifact } from "../src/fit/gguf-artifact.js";
import { DEFAULT_LLAMA_CPP, estimateLlamaCpp } from "../src/fit/llama-cpp.js";
import { runCli, tempDir } from "./support/cli.js";
import { disposeFitLlama, hostRepackProfile, measureLlamaCpp, type LlamaCppReport } from "./support/fit-llama.js";
import { cachedGguf } from "./support/gguf-cache.js";
import { TINY_LFM2, writeLfm2Checkpoint } from "./support/synthetic-lfm2.js";

const TOLERANCE = 0.05;
const MiB = 2 ** 20;
const models: Record<string, string> = {};
const SPEC = { ...TINY_LFM2, hidden: 512, heads: 8, kvHeads: 4, blockFfDim: 2048, blockMultipleOf: 256, seed: 31 };
const CONV_LAYERS = SPEC.layerTypes.filter((t) => t === "conv").length;

beforeAll(async () => {
  const source = join(tempDir(), "lfm2-fit");
  writeLfm2Checkpoint(source, SPEC);
  models["F16"] = await cachedGguf(source, "lfm2-fit", "f16");
  models["Q4_K_M"] = await cachedGguf(source, "lfm2-fit", "q4_k_m");
}, 600_000);

afterAll(disposeFitLlama);

/** llama_memory_recurrent logs "CPU RS buffer size = X MiB" beside the attention layers' KV buffer. */
function rsBuffer(report: LlamaCppReport): number {
  const line = report.log.find((l) => /RS buffer size =/.test(l));
  const m = line ? /RS buffer size =\s*([\d.]+) MiB/.exec(line) : null;
  if (!m) throw new Error(`llama.cpp logged no RS buffer:\n${report.log.join("\n")}`);
  return Number(m[1]) * MiB;
}

const cases = ["F16", "Q4_K_M"].flatMap((model) => [512, 2048, 8192].flatMap((context) => [false, true].map((flashAttention) => ({ model, context, flashAttention }))));

describe("fit models llama.cpp's hybrid memory for LFM2 within 5%", () => {
  test.each(cases)("$model, context $context, flash attention $flashAttention", async ({ model, context, flashAttention }) => {
    const path = models[model]!;
    const measured = await measureLlamaCpp(path, { contextSize: context, flashAttention });
    const artifact = await readGgufArtifact(path);
    const ours = estimateLlamaCpp(artifact, {
      ...DEFAULT_LLAMA_CPP, batchSize: measured.batch, ubatchSize: measured.ubatch, backend: "cpu", contextSize: context, flashAttention, cpuRepack: hostRepackProfile(),
    });
    const rs = rsBuffer(measured);
    const llamaModel = measured.modelMapped + measured.modelRepack;
    const row = (name: string, theirs: number, mine: number) => `${name} llama.cpp ${(theirs / MiB).toFixed(3)} MiB, ours ${(mine / MiB).toFixed(3)} MiB (${(((mine - theirs) / theirs) * 100).toFixed(2)}%)`;
    console.log(
      `lfm2 ${model} ctx ${context} fa ${flashAttention}: ${row("model", llamaModel, ours.weights.host + ours.weights.repack)}; ${row("kv", measured.kv, ours.kv.k + ours.kv.v)}; ` +
        `rs llama.cpp ${(rs / MiB).toFixed(2)} MiB (logged to 0.01 MiB), ours ${(ours.kv.recurrent / MiB).toFixed(4)} MiB; ${row("compute", measured.compute, ours.compute)}; modelled ${ours.computeModelled}`,
    );
    expect(ours.computeModelled).toBe(true);
    expect(ours.cells).toBe(measured.cells);
    expect(Math.abs(ours.weights.host + ours.weights.repack - llamaModel) / llamaModel).toBeLessThanOrEqual(TOLERANCE);
    expect(Math.abs(ours.kv.k + ours.kv.v - measured.kv) / measured.kv).toBeLessThanOrEqual(TOLERANCE);
    // llama.cpp logs the RS buffer to 0.01 MiB (a few KiB here): ours must round to the figure it printed.
    expect(Math.abs(ours.kv.recurrent - rs)).toBeLessThanOrEqual(0.005 * MiB);
    expect(ours.kv.recurrent).toBe(CONV_LAYERS * SPEC.hidden * (SPEC.convLCache - 1) * 4);
    expect(Math.abs(ours.compute - measured.compute) / measured.compute).toBeLessThanOrEqual(TOLERANCE);
  }, 300_000);
});

describe("edgequant fit on an LFM2 GGUF", () => {
  test("reports the graph as replayed, KV only for attention layers and the conv state beside it", () => {
    const run = runCli(["fit", models["F16"]!, "--ctx", "2048", "--json", "--devices", "raspberry-pi-5-8gb"]);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    const manifest = JSON.parse(run.stdout) as {
      artifacts: { kvHeads: number; kvBytesPerToken: { f16: number } }[];
      results: { estimated: string[]; rows: { kvCache: number; breakdown: Record<string, number> }[] }[];
    };
    const attentionLayers = SPEC.layerTypes.length - CONV_LAYERS;
    const headDim = SPEC.hidden / SPEC.heads;
    expect(manifest.artifacts[0]!.kvHeads).toBe(SPEC.kvHeads);
    expect(manifest.artifacts[0]!.kvBytesPerToken.f16).toBe(attentionLayers * SPEC.kvHeads * headDim * 2 * 2);
    const result = manifest.results[0]!;
    expect(result.estimated).toEqual(["overhead"]);
    const row = result.rows[0]!;
    expect(row.breakdown["recurrentState"]).toBe(CONV_LAYERS * SPEC.hidden * (SPEC.convLCache - 1) * 4);
    expect(row.kvCache).toBe(row.breakdown["kvK"]! + row.breakdown["kvV"]! + row.breakdown["recurrentState"]!);
  }, 120_000);
});
