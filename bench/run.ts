/**
 * `npm run bench` (a benchmark, never a test). On the deterministic TinyLlama-1.1B-shaped BF16
 * checkpoint (2.2 GB, built once and cached in .cache/bench):
 *   1. streaming: safetensors -> F16 GGUF, peak RSS against 2 x largest tensor + 300 MB;
 *   2. (a) edgequant safetensors -> Q4_K_M GGUF vs (b) llama.cpp's llama_model_quantize
 *      BF16 GGUF -> Q4_K_M, same thread count, each in its own process;
 *   3. the per-kernel table, one thread: our WASM kernels vs ggml's reference quantizers.
 *
 *   npm run bench [-- --threads N] [-- --skip-kernels]
 */
import { spawnSync } from "node:child_process";
import { existsSync, rmSync, statSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { inspect } from "../src/inspect.js";
import { syntheticCheckpoint } from "../test/support/large-checkpoint.js";
import { compareGguf } from "../test/support/gguf-compare.js";
import { llamaQuantize } from "../test/support/llama-quantize.js";

const { values: args } = parseArgs({ options: { threads: { type: "string" }, "skip-kernels": { type: "boolean", default: false } } });
const threads = Number(args.threads ?? availableParallelism());
const root = resolve(import.meta.dirname, "..");
const cache = join(root, ".cache/bench");
const mb = (bytes: number) => `${(bytes / 1e6).toFixed(0)} MB`;

/** Runs the edgequant CLI in a child process and reports its wall time and peak RSS. */
function edgequant(args: string[]): { seconds: number; peakRssBytes: number } {
  const started = performance.now();
  const child = spawnSync(
    process.execPath,
    ["--import", "tsx", "--import", join(root, "bench/report-peak-rss.ts"), join(root, "src/cli/bin.ts"), ...args, "--no-progress"],
    { encoding: "utf8" },
  );
  const seconds = (performance.now() - started) / 1000;
  if (child.status !== 0) throw new Error(`edgequant ${args.join(" ")} failed (${child.status}): ${child.stderr}`);
  return { seconds, peakRssBytes: Number(/peak-rss-bytes=(\d+)/.exec(child.stderr)?.[1]) };
}

const source = syntheticCheckpoint("tinyllama1b");
const sourceReport = await inspect(source);
const sourceBytes = sourceReport.totalBytes;
const largest = Math.max(...sourceReport.tensors.map((t) => t.bytes));
console.log(`source: synthetic TinyLlama-1.1B shapes, ${mb(sourceBytes)} BF16 in ${sourceReport.tensors.length} tensors (largest ${mb(largest)}); ${threads} threads\n`);

console.log("1. streaming: safetensors -> F16 GGUF");
const f16 = join(cache, "bench-f16.gguf");
const streaming = edgequant(["convert", source, "--to", "gguf", "--scheme", "f16", "-o", f16]);
const budget = 2 * largest + 300e6;
console.log(`   ${streaming.seconds.toFixed(1)} s, ${(sourceBytes / 1e6 / streaming.seconds).toFixed(0)} MB/s, peak RSS ${mb(streaming.peakRssBytes)} (budget ${mb(budget)}: ${streaming.peakRssBytes <= budget ? "within" : "OVER"})\n`);
rmSync(f16);

console.log("2. Q4_K_M: (a) edgequant from safetensors vs (b) llama_model_quantize from a BF16 GGUF");
const bf16 = join(cache, "tinyllama1b-bf16.gguf");
if (!existsSync(bf16)) edgequant(["convert", source, "--to", "gguf", "--scheme", "bf16", "-o", bf16]);
const ours = join(cache, "bench-q4_k_m-edgequant.gguf");
const theirs = join(cache, "bench-q4_k_m-llama.gguf");
const a = edgequant(["convert", source, "--to", "gguf", "--scheme", "q4_k_m", "--threads", String(threads), "-o", ours]);
const b = llamaQuantize(bf16, theirs, 15, threads);
const row = (label: string, run: { seconds: number; peakRssBytes: number }, input: number) =>
  `   ${label.padEnd(46)} ${run.seconds.toFixed(1).padStart(6)} s  ${(input / 1e6 / run.seconds).toFixed(0).padStart(5)} MB/s in  peak RSS ${mb(run.peakRssBytes)}`;
console.log(row("(a) edgequant, safetensors -> Q4_K_M", a, sourceBytes));
console.log(row("(b) llama_model_quantize, BF16 GGUF -> Q4_K_M", b, statSync(bf16).size));
const comparison = await compareGguf(ours, theirs);
console.log(`   speed ratio (b)/(a): ${(b.seconds / a.seconds).toFixed(2)}x (target >= 1.5x)`);
console.log(
  `   same output: ${comparison.tensors - comparison.mismatches.length} of ${comparison.tensors} tensors identical in type and bytes, ` +
    `tensor order ${comparison.sameOrder ? "same" : "different"}, metadata keys differing: ${comparison.metadataDifferences.join(", ") || "none"}; whole file ${identical(ours, theirs)}\n`,
);
rmSync(ours);
rmSync(theirs);

if (!args["skip-kernels"]) {
  console.log("3. kernels, one thread (MB/s of f32 input)");
  spawnSync(process.execPath, ["--import", "tsx", join(root, "bench/kernels.ts")], { stdio: "inherit" });
}

function identical(x: string, y: string): string {
  const result = spawnSync("cmp", ["-s", x, y]);
  return result.status === 0 ? "byte for byte identical" : "not byte-identical (header layout)";
}
