/**
 * ONNX export benchmark (not a test). On the deterministic TinyLlama-1.1B-shaped BF16 checkpoint
 * (2.2 GB, built once and cached in .cache/bench): safetensors -> int4 ONNX (genai layout) in a
 * child process, reporting wall time and peak RSS against 2 x largest tensor + 300 MB; then loads
 * the result with onnxruntime-node (external data resolved from model.onnx_data) and runs a short
 * prompt plus a few cached decode steps.
 *
 *   node --import tsx bench/onnx-export.ts [--bits 4] [--accuracy 0|4] [--keep]
 *
 * --accuracy overrides MatMulNBits' accuracy_level (default: 4 for 8/4 bits, 0 for 1.58).
 */
import { spawnSync } from "node:child_process";
import { rmSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { convertToOnnx, type OnnxBits } from "../src/convert/onnx.js";
import { inspect } from "../src/inspect.js";
import { syntheticCheckpoint } from "../test/support/large-checkpoint.js";

const { values: args } = parseArgs({ options: { bits: { type: "string", default: "4" }, keep: { type: "boolean", default: false }, accuracy: { type: "string" }, child: { type: "string" }, output: { type: "string" } } });
const root = resolve(import.meta.dirname, "..");
const mb = (bytes: number) => `${(bytes / 1e6).toFixed(0)} MB`;

if (args.child !== undefined) {
  // Child: the conversion alone, so that its peak RSS is the converter's.
  const report = await convertToOnnx({ source: args.child, output: args.output!, bits: Number(args.bits) as OnnxBits, ...(args.accuracy === undefined ? {} : { accuracyLevel: Number(args.accuracy) as 0 | 4 }) });
  process.stdout.write(`${JSON.stringify({ weightBytes: report.weightBytes, initializers: report.initializers, files: report.files, warnings: report.warnings })}\n`);
  process.exit(0);
}

const source = syntheticCheckpoint("tinyllama1b");
const sourceReport = await inspect(source);
const largest = Math.max(...sourceReport.tensors.map((t) => t.bytes));
const budget = 2 * largest + 300e6;
console.log(`source: synthetic TinyLlama-1.1B shapes, ${mb(sourceReport.totalBytes)} BF16 in ${sourceReport.tensors.length} tensors (largest ${mb(largest)})`);

const output = join(root, ".cache/bench", `onnx-int${args.bits}`);
rmSync(output, { recursive: true, force: true });
const started = performance.now();
const child = spawnSync(
  process.execPath,
  ["--import", "tsx", "--import", join(root, "bench/report-peak-rss.ts"), join(root, "bench/onnx-export.ts"), "--child", source, "--output", output, "--bits", args.bits!, ...(args.accuracy === undefined ? [] : ["--accuracy", args.accuracy])],
  { encoding: "utf8", maxBuffer: 1 << 24 },
);
const seconds = (performance.now() - started) / 1000;
if (child.status !== 0) throw new Error(`export failed (${child.status}): ${child.stderr}`);
const peak = Number(/peak-rss-bytes=(\d+)/.exec(child.stderr)?.[1]);
const result = JSON.parse(child.stdout.trim().split("\n").at(-1)!) as { weightBytes: number; initializers: number; files: string[]; warnings: string[] };
const modelBytes = statSync(join(output, "model.onnx")).size;
console.log(`1. export to ${args.bits}-bit ONNX (MatMulNBits accuracy_level ${args.accuracy ?? "default"}): ${seconds.toFixed(1)} s (${(sourceReport.totalBytes / 1e6 / seconds).toFixed(0)} MB/s of source), peak RSS ${mb(peak)} (budget ${mb(budget)}: ${peak <= budget ? "within" : "OVER"})`);
console.log(`   model.onnx ${(modelBytes / 1e3).toFixed(0)} KB, model.onnx_data ${mb(result.weightBytes)} in ${result.initializers} initializers; files: ${result.files.join(", ")}`);
if (result.warnings.length > 0) console.log(`   warnings: ${result.warnings.join("; ")}`);

// 2. The external data loads and runs.
const ort = await import("onnxruntime-node");
const loadStart = performance.now();
const session = await ort.InferenceSession.create(join(output, "model.onnx"), { intraOpNumThreads: 2 });
const loadSeconds = (performance.now() - loadStart) / 1000;
const config = { layers: 22, kvHeads: 4, headDim: 64, vocab: 32000 };
const tokens = [1, 450, 4996, 17354, 1701, 432, 17204, 975];
const int64 = (values: number[], dims: number[]) => new ort.Tensor("int64", BigInt64Array.from(values.map(BigInt)), dims);
let feeds: Record<string, InstanceType<typeof ort.Tensor>> = {
  input_ids: int64(tokens, [1, tokens.length]),
  attention_mask: int64(tokens.map(() => 1), [1, tokens.length]),
  position_ids: int64(tokens.map((_, i) => i), [1, tokens.length]),
};
for (let i = 0; i < config.layers; i++) {
  for (const kind of ["key", "value"]) feeds[`past_key_values.${i}.${kind}`] = new ort.Tensor("float32", new Float32Array(0), [1, config.kvHeads, 0, config.headDim]);
}
const runStart = performance.now();
let out = await session.run(feeds);
const prefillMs = performance.now() - runStart;
let finite = (out["logits"]!.data as Float32Array).every(Number.isFinite);
const decodeStart = performance.now();
const steps = 8;
for (let step = 0; step < steps; step++) {
  const total = tokens.length + step + 1;
  feeds = { input_ids: int64([29871], [1, 1]), attention_mask: int64(Array.from({ length: total }, () => 1), [1, total]), position_ids: int64([total - 1], [1, 1]) };
  for (let i = 0; i < config.layers; i++) {
    feeds[`past_key_values.${i}.key`] = out[`present.${i}.key`]!;
    feeds[`past_key_values.${i}.value`] = out[`present.${i}.value`]!;
  }
  out = await session.run(feeds);
  finite &&= (out["logits"]!.data as Float32Array).every(Number.isFinite);
}
const decodeMs = (performance.now() - decodeStart) / steps;
console.log(
  `2. onnxruntime-node ${ort.env.versions.common}: loaded with external data in ${loadSeconds.toFixed(1)} s; prefill ${tokens.length} tokens ${prefillMs.toFixed(0)} ms, ` +
    `decode ${decodeMs.toFixed(0)} ms/token (2 threads); logits [${out["logits"]!.dims.join(", ")}] ${finite ? "all finite" : "NOT FINITE"}`,
);
await session.release();
if (!args.keep) rmSync(output, { recursive: true, force: true });
