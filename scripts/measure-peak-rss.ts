// node --import tsx scripts/measure-peak-rss.ts [--model SUBSTRING] [--context 512,2048,8192] [--fa off,on] [--skip-baseline] [--print]
// Issue 18, acceptance 5's measured side: the peak resident set of llama.cpp's own CLI
// (llama-completion built from node-llama-cpp's bundled source, see test/support/llama-build.ts)
// under /usr/bin/time -v, with a prompt filling the context, for the TinyLlama-1.1B-shaped Q4_K_M
// and small tied-embedding Q4_K_M models. Prints a markdown table and writes every run (with
// llama.cpp's log) to .cache/bench/fit/peak-rss.json, merged with earlier runs of other models.
// A "baseline" row per model is a 512 context with a 2-word prompt: the model, the cleared KV
// cache and the process, without a prompt's compute.
// The first run builds llama.cpp (minutes) and converts the 1.1B-shaped checkpoint (a minute or so).

import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { cachedGguf, GGUF_CACHE } from "../test/support/gguf-cache.js";
import { syntheticCheckpoint } from "../test/support/large-checkpoint.js";
import { measurePeakRss, type PeakRss } from "../test/support/peak-rss.js";
import { writeSyntheticCheckpoint, type SyntheticSpec } from "../test/support/synthetic-checkpoint.js";

/** A synthetic checkpoint converted through the same cache folder as test/support/fit-cases.ts's convertedGguf. */
function synthetic(name: string, spec: SyntheticSpec): () => Promise<string> {
  return () => {
    const dir = join(GGUF_CACHE, "sources", name);
    mkdirSync(dir, { recursive: true });
    writeSyntheticCheckpoint(dir, spec);
    return cachedGguf(dir, name, "q4_k_m");
  };
}

const MODELS: { name: string; gguf: () => Promise<string> }[] = [
  { name: "TinyLlama-1.1B-shaped Q4_K_M", gguf: () => cachedGguf(syntheticCheckpoint("tinyllama1b"), "tinyllama1b", "q4_k_m") },
  // SmolLM2-135M's shape (576 wide, 30 layers, 9 heads / 3 KV heads, tied) with the synthetic 4096 vocabulary:
  // a tied model big enough that its weights, not the process, dominate the resident set
  {
    name: "llama tied (synthetic, SmolLM2-135M shape) Q4_K_M",
    gguf: synthetic("llama-tied-135m", { modelType: "llama", hidden: 576, layers: 30, heads: 9, kvHeads: 3, headDim: 64, intermediate: 1536, vocab: 4096, seed: 7, dtype: "BF16", tieEmbeddings: true }),
  },
  // test/fit-llama.test.ts's SmolLM3 row: tied output (no output.weight), trained context 65536
  {
    name: "smollm3 (synthetic, tied) Q4_K_M",
    gguf: synthetic("smollm3", { modelType: "smollm3", hidden: 256, layers: 8, heads: 4, kvHeads: 2, headDim: 64, intermediate: 512, vocab: 4096, seed: 21, dtype: "BF16" }),
  },
  // test/fit-llama.test.ts's gemma3 row: tied, sliding-window layers (two KV caches), trained context 32768
  {
    name: "gemma3 (ours, 270m config, tied, SWA) Q4_K_M",
    gguf: synthetic("gemma3", { modelType: "gemma3", hidden: 256, layers: 7, heads: 4, kvHeads: 1, headDim: 64, intermediate: 512, vocab: 4096, seed: 5, dtype: "BF16" }),
  },
];

const { values } = parseArgs({
  options: {
    model: { type: "string" },
    context: { type: "string", default: "512,2048,8192" },
    fa: { type: "string", default: "off,on" },
    "skip-baseline": { type: "boolean", default: false },
    // print the table of the saved runs (every model measured so far) without running anything
    print: { type: "boolean", default: false },
  },
});
const contexts = values.context.split(",").map(Number);
const flash = values.fa.split(",").map((v) => v === "on");
const models = MODELS.filter((m) => values.model === undefined || m.name.toLowerCase().includes(values.model.toLowerCase()));
if (models.length === 0) throw new Error(`no model matches ${values.model}; models: ${MODELS.map((m) => m.name).join(", ")}`);

const MiB = 2 ** 20;
const mib = (bytes: number) => (bytes / MiB).toFixed(1);
interface Row {
  model: string;
  gguf: string;
  fileBytes: number;
  setting: string;
  context: number;
  flashAttention: boolean;
  run: PeakRss;
}
const rows: Row[] = [];
const header = ["model", "context", "fa", "promptTokens", "maxRSS MiB", "mapped MiB", "repack MiB", "KV MiB", "compute MiB", "output MiB", "buffers sum MiB", "RSS - sum MiB", "file MiB", "n_batch/n_ubatch", "wall s"];
function line(row: Row): string {
  const { run } = row;
  const mapped = run.buffers.model["CPU_Mapped"] ?? 0;
  const repack = run.buffers.model["CPU_REPACK"] ?? 0;
  const sum = Object.values(run.buffers.model).reduce((a, b) => a + b, 0) + run.buffers.kv + run.buffers.compute + run.buffers.output;
  const cells = [row.model, row.setting, row.flashAttention ? "on" : "off", run.promptTokens, mib(run.maxRssBytes), mib(mapped), mib(repack), mib(run.buffers.kv), mib(run.buffers.compute), mib(run.buffers.output), mib(sum), mib(run.maxRssBytes - sum), mib(row.fileBytes), `${run.nBatch}/${run.nUbatch}`, run.wallSeconds.toFixed(1)];
  return `| ${cells.join(" | ")} |`;
}

const table = [`| ${header.join(" | ")} |`, `| ${header.map(() => "---").join(" | ")} |`];
const out = join(GGUF_CACHE, "peak-rss.json");
const saved = (): Row[] => (existsSync(out) ? (JSON.parse(readFileSync(out, "utf8")) as Row[]) : []);
if (values.print) {
  console.log([...table, ...saved().map(line)].join("\n"));
  process.exit(0);
}
console.log(table.join("\n"));
for (const model of models) {
  const gguf = await model.gguf();
  const fileBytes = statSync(gguf).size;
  const settings: { setting: string; context: number; flashAttention: boolean; prompt?: string }[] = [];
  if (!values["skip-baseline"]) settings.push({ setting: "512 baseline", context: 512, flashAttention: false, prompt: "Release History" });
  for (const context of contexts) for (const flashAttention of flash) settings.push({ setting: String(context), context, flashAttention });
  for (const s of settings) {
    const run = await measurePeakRss(gguf, { context: s.context, flashAttention: s.flashAttention, ...(s.prompt === undefined ? {} : { prompt: s.prompt }) });
    const row = { model: model.name, gguf, fileBytes, setting: s.setting, context: s.context, flashAttention: s.flashAttention, run };
    rows.push(row);
    const text = line(row);
    table.push(text);
    console.log(text);
  }
}

// Merged with earlier runs' rows (a run of one model keeps the others'), newest per model and setting.
const key = (row: Row) => `${row.model}\n${row.setting}\n${row.flashAttention}`;
const earlier = saved();
const merged = [...earlier.filter((old) => !rows.some((row) => key(row) === key(old))), ...rows];
writeFileSync(out, JSON.stringify(merged, null, 2));
console.log(`\n${table.join("\n")}\n\nevery run, with llama.cpp's log: ${out}`);
