/**
 * Perplexity of the bundled tiny Llama after MLX quantization, next to its F16 weights.
 *
 * Each variant is converted with convertToMlx, read back and dequantized by the test suite's
 * independent MLX reader (w = scale * q + bias, test/support/mlx-reference.ts), written as an
 * F32 Hugging Face folder and run through the reference forward pass
 * (test/support/reference-forward.ts). "fp16" is the source weights rounded to F16.
 *
 * Text: characters 20,000 to 50,000 of test/fixtures/corpus-test.txt (30,000 characters of release
 * notes and manual pages, past the version list the file opens with; 10,019 tokens, 39 windows,
 * 4,953 scored tokens), tokenized by llama.cpp
 * from a GGUF of the same model (no BOS). Windows of the model's full 256-token context, each
 * starting with BOS, second half of each scored, as llama-perplexity does.
 *
 *   node --import tsx bench/mlx-perplexity.ts [--offset N] [--chars N] [--json] [variant ...]
 *
 * Variants: fp16, 8, 6, 5, 4, 3, 2 (group size 64), "4g32"-style group sizes, mixed_2_6,
 * mixed_3_4, mixed_3_6, mixed_4_6. Default: fp16 8 4 3 2 mixed_3_6 (about 100 s each on one core).
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { convertToMlx } from "../src/convert/mlx.js";
import { convertToGguf } from "../src/convert/gguf.js";
import { resolveScheme } from "../src/quant/schemes.js";
import { CORPUS, TINY_LLAMA, tempDir } from "../test/support/cli.js";
import { disposeLlamaCpp, llamaCppTokenize } from "../test/support/llama-cpp.js";
import { logSoftmax } from "../test/support/logit-metrics.js";
import { dequantizeMlxFolder, readMlxFolder } from "../test/support/mlx-reference.js";
import { referenceLogits } from "../test/support/reference-forward.js";
import { roundToDtype, SafetensorsFile, writeSafetensors, type TensorToWrite } from "../test/support/safetensors.js";

const WINDOW = 256;
const BOS = 1;

const args = process.argv.slice(2);
const json = args.includes("--json");
const flag = (name: string, fallback: number) => {
  const at = args.indexOf(name);
  return at >= 0 ? Number(args[at + 1]) : fallback;
};
const offset = flag("--offset", 20_000);
const chars = flag("--chars", 30_000);
const requested = args.filter((arg, i) => !arg.startsWith("--") && !args[i - 1]?.startsWith("--offset") && !args[i - 1]?.startsWith("--chars"));
const variants = requested.length > 0 ? requested : ["fp16", "8", "4", "3", "2", "mixed_3_6"];

const dir = tempDir("edgequant-mlx-ppl-");
const config = JSON.parse(readFileSync(join(TINY_LLAMA, "config.json"), "utf8")) as Record<string, unknown>;
const text = readFileSync(CORPUS, "utf8").slice(offset, offset + chars);

const gguf = join(dir, "tokenizer.gguf");
await convertToGguf({ source: TINY_LLAMA, output: gguf, scheme: resolveScheme({ scheme: "f16" }) });
const tokens = await llamaCppTokenize(gguf, text);
await disposeLlamaCpp();
const body = WINDOW - 1;
const windows = Math.floor(tokens.length / body);
if (windows === 0) throw new Error(`only ${tokens.length} tokens: not one window of ${WINDOW}`);
console.error(`corpus characters ${offset}..${offset + text.length} (${text.length}) -> ${tokens.length} tokens -> ${windows} windows of ${WINDOW}, ${windows * (WINDOW - WINDOW / 2 - 1)} scored tokens`);

interface Row {
  variant: string;
  perplexity: number;
  /** Against fp16 (when it ran first): perplexity increase, and its standard error from the paired per-token losses, as llama-perplexity reports. */
  deltaPpl?: number;
  deltaPplUncertainty?: number;
  bitsPerWeight: number;
  bytes: number;
  seconds: number;
}
const rows: Row[] = [];
let baselineLosses: number[] | undefined;

for (const variant of variants) {
  const started = performance.now();
  const folder = join(dir, `hf-${variant}`);
  let bitsPerWeight = 16;
  let bytes = 0;
  if (variant === "fp16") {
    const source = new SafetensorsFile(join(TINY_LLAMA, "model.safetensors"));
    const tensors: TensorToWrite[] = source.names().map((name) => {
      const t = source.read(name);
      bytes += t.data.length * 2;
      return { name, shape: t.shape, dtype: "F32", data: t.data.map((x) => roundToDtype(x, "F16")) };
    });
    writeHfFolderF32(folder, config, tensors);
  } else {
    const mlx = join(dir, `mlx-${variant}`);
    const report = await convertToMlx({ source: TINY_LLAMA, output: mlx, ...parseVariant(variant) });
    bitsPerWeight = report.bitsPerWeight;
    bytes = report.bytes;
    const dequantized = dequantizeMlxFolder(readMlxFolder(mlx));
    const tensors: TensorToWrite[] = [...dequantized].map(([name, t]) => ({ name, shape: t.shape, dtype: "F32", data: t.data }));
    writeHfFolderF32(folder, config, tensors);
  }
  const losses: number[] = [];
  for (let w = 0; w < windows; w++) {
    const input = [BOS, ...tokens.slice(w * body, (w + 1) * body)];
    const logits = referenceLogits(folder, input);
    for (let t = WINDOW / 2; t + 1 < input.length; t++) losses.push(-logSoftmax(logits[t]!)[input[t + 1]!]!);
  }
  const scored = losses.length;
  const perplexity = Math.exp(losses.reduce((a, b) => a + b, 0) / scored);
  if (variant === "fp16") baselineLosses = losses;
  const row: Row = { variant, perplexity, ...pairedDelta(losses, baselineLosses), bitsPerWeight, bytes, seconds: (performance.now() - started) / 1000 };
  rows.push(row);
  const delta = row.deltaPpl === undefined ? "" : `  Δ ${row.deltaPpl.toFixed(4)} ± ${row.deltaPplUncertainty!.toFixed(4)}`;
  console.error(`${variant.padEnd(10)} perplexity ${row.perplexity.toFixed(4)}${delta}  ${row.bitsPerWeight.toFixed(3)} bits/weight  ${row.bytes} bytes  (${row.seconds.toFixed(1)} s, ${scored} tokens)`);
}

const baseline = rows.find((r) => r.variant === "fp16")?.perplexity;
if (json) console.log(JSON.stringify({ offset, characters: text.length, tokens: tokens.length, windows, rows }, null, 2));
else {
  console.log(`| variant | bits/weight | perplexity | vs fp16 |`);
  console.log(`|---|---|---|---|`);
  for (const r of rows) console.log(`| ${r.variant} | ${r.bitsPerWeight.toFixed(3)} | ${r.perplexity.toFixed(4)} | ${baseline ? `${(((r.perplexity / baseline) - 1) * 100).toFixed(2)}%` : ""} |`);
}
rmSync(dir, { recursive: true, force: true });

/** ΔPPL = PPL - PPL16 and its standard error: the mean paired loss difference's, carried through exp (delta method). */
function pairedDelta(losses: readonly number[], baseline: readonly number[] | undefined): Pick<Row, "deltaPpl" | "deltaPplUncertainty"> {
  if (!baseline || baseline.length !== losses.length) return {};
  const n = losses.length;
  const differences = losses.map((l, i) => l - baseline[i]!);
  const mean = differences.reduce((a, b) => a + b, 0) / n;
  const variance = differences.reduce((a, d) => a + (d - mean) ** 2, 0) / (n - 1);
  const ppl = Math.exp(losses.reduce((a, b) => a + b, 0) / n);
  const ppl16 = Math.exp(baseline.reduce((a, b) => a + b, 0) / n);
  return { deltaPpl: ppl - ppl16, deltaPplUncertainty: ppl * Math.sqrt(variance / n) };
}

function parseVariant(variant: string): { bits: 2 | 3 | 4 | 5 | 6 | 8; groupSize?: 32 | 64 | 128; mixed?: "2_6" | "3_4" | "3_6" | "4_6" } {
  const mixed = /^mixed_(\d)_(\d)$/.exec(variant);
  if (mixed) return { bits: Number(mixed[1]) as 2 | 3 | 4, mixed: `${mixed[1]}_${mixed[2]}` as "2_6" | "3_4" | "3_6" | "4_6" };
  const plain = /^(\d)(?:g(\d+))?$/.exec(variant);
  if (!plain) throw new Error(`unknown variant '${variant}'`);
  return { bits: Number(plain[1]) as 2 | 3 | 4 | 5 | 6 | 8, ...(plain[2] ? { groupSize: Number(plain[2]) as 32 | 64 | 128 } : {}) };
}

function writeHfFolderF32(folder: string, hfConfig: Record<string, unknown>, tensors: TensorToWrite[]): void {
  const clean: Record<string, unknown> = { ...hfConfig, torch_dtype: "float32" };
  delete clean["quantization"];
  delete clean["quantization_config"];
  rmSync(folder, { recursive: true, force: true });
  // Only config.json and the weights: the reference forward pass needs nothing else.
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, "config.json"), JSON.stringify(clean, null, 2));
  writeSafetensors(join(folder, "model.safetensors"), tensors);
}
