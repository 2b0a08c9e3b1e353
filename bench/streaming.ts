/**
 * Streaming benchmark (not a test): converts the synthetic TinyLlama-1.1B-shaped
 * BF16 checkpoint (2.2 GB) to an F16 GGUF in a child process and reports its
 * peak RSS against the budget "largest tensor x 2 + 300 MB".
 */
import { spawnSync } from "node:child_process";
import { rmSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { inspect } from "../src/inspect.js";
import { syntheticCheckpoint } from "../test/support/large-checkpoint.js";

const root = resolve(import.meta.dirname, "..");
const source = syntheticCheckpoint("tinyllama1b");
const sourceReport = await inspect(source);
const largest = Math.max(...sourceReport.tensors.map((t) => t.bytes));
const output = join(root, ".cache/bench/streaming-f16.gguf");

const started = performance.now();
const child = spawnSync(
  "/usr/bin/env",
  ["node", "--import", "tsx", "--import", join(root, "bench/report-peak-rss.ts"), join(root, "src/cli/bin.ts"), "convert", source, "--to", "gguf", "--scheme", "f16", "-o", output, "--no-progress"],
  { encoding: "utf8" },
);
const seconds = (performance.now() - started) / 1000;
if (child.status !== 0) throw new Error(`conversion failed (${child.status}): ${child.stderr}`);
const peakRss = Number(/peak-rss-bytes=(\d+)/.exec(child.stderr)?.[1]);
const budget = 2 * largest + 300e6;
const mb = (bytes: number) => `${(bytes / 1e6).toFixed(0)} MB`;
console.log(`source:          ${mb(sourceReport.totalBytes)} BF16 in ${sourceReport.tensors.length} tensors (largest ${mb(largest)})`);
console.log(`output:          ${mb(statSync(output).size)} F16 GGUF in ${seconds.toFixed(1)} s (${(sourceReport.totalBytes / 1e6 / seconds).toFixed(0)} MB/s)`);
console.log(`peak RSS:        ${mb(peakRss)} (budget 2 x largest tensor + 300 MB = ${mb(budget)}: ${peakRss <= budget ? "within" : "OVER"})`);
rmSync(output);
