// Quantization kernel throughput, one thread: our WASM kernels (through the public API,
// copies in and out of WASM memory included) against ggml's reference quantizers in
// libggml-base (ggml_quantize_chunk, imatrix = NULL, through koffi), on the same input.
//
//   node --import tsx bench/kernels.ts [--mb 16] [--repeat 5] [--types Q4_K,Q8_0] [--threads N]
//
// MB/s counts f32 input bytes (4 per element); outputs are preallocated on both sides. Our
// figure includes copying in and out of WASM memory. Dequantization is timed the same way.

import { availableParallelism } from "node:os";
import { parseArgs } from "node:util";
import { GgmlType, ggmlTypeName } from "../src/quant/ggml-types.js";
import { KERNEL_TYPES, dequantizeRowsInto, quantizeRows, quantizeRowsInto } from "../src/quant/kernels.js";
import { KernelPool } from "../src/quant/pool.js";
import { loadGgmlOracle } from "../test/support/ggml-oracle.js";

const { values: args } = parseArgs({
  options: {
    mb: { type: "string", default: "16" },
    repeat: { type: "string", default: "5" },
    types: { type: "string" },
    threads: { type: "string" },
  },
});
const inputBytes = Math.max(1, Number(args.mb)) * 1024 * 1024;
const repeat = Math.max(1, Number(args.repeat));
const ROW = 4096;

const loaded = loadGgmlOracle();
if (!("oracle" in loaded)) {
  console.error(`ggml reference unavailable (${loaded.error}); nothing to compare against.`);
  process.exit(1);
}
const ggml = loaded.oracle;

/** Transformer-like weights: Gaussian, sigma 0.02, a few outliers per row. */
function weights(count: number): Float32Array {
  let s = 0x9e3779b9;
  const rnd = (): number => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd()) * 0.02;
  for (let i = 0; i < count / 1024; i++) out[Math.floor(rnd() * count)] = (rnd() - 0.5) * 2;
  return out;
}

/** Best of `repeat` timed runs after one warm-up, in seconds. */
function best(run: () => unknown): number {
  run();
  let min = Infinity;
  for (let i = 0; i < repeat; i++) {
    const start = process.hrtime.bigint();
    run();
    min = Math.min(min, Number(process.hrtime.bigint() - start) / 1e9);
  }
  return min;
}

const types = args.types
  ? args.types.split(",").map((name) => {
      const type = GgmlType[name.trim() as keyof typeof GgmlType];
      if (type === undefined) throw new Error(`unknown type ${name}`);
      return type;
    })
  : [...KERNEL_TYPES, GgmlType.F16, GgmlType.BF16];

const elements = Math.floor(inputBytes / 4 / ROW) * ROW;
const input = weights(elements);
const mbps = (seconds: number): number => elements * 4 / 1e6 / seconds;
const fmt = (n: number, width: number, digits = 0): string => n.toFixed(digits).padStart(width);

console.log(`node ${process.version}, ${(elements * 4 / 2 ** 20).toFixed(0)} MiB f32 input (rows of ${ROW}), best of ${repeat}, one thread`);
console.log("");
console.log(`${"type".padEnd(6)} | ${"quantize MB/s".padStart(13)}: ${"wasm".padStart(7)} ${"ggml".padStart(7)} ${"ratio".padStart(6)} | ${"dequantize MB/s".padStart(15)}: ${"wasm".padStart(7)} ${"ggml".padStart(7)} ${"ratio".padStart(6)} | same bytes`);
console.log("-".repeat(100));
const ratios: number[] = [];
for (const type of types) {
  const ours = quantizeRows(type, input, ROW);
  const theirs = ggml.quantize(type, input, ROW);
  const same = ours.length === theirs.length && ours.every((b, i) => b === theirs[i]);
  // Outputs are allocated once per side, so page faults of fresh buffers are not timed.
  const qOut = new Uint8Array(theirs.length);
  const dOut = new Float32Array(elements);
  const qWasm = mbps(best(() => quantizeRowsInto(type, input, ROW, qOut)));
  const qGgml = mbps(best(() => ggml.quantizeInto(type, input, ROW, qOut)));
  const dWasm = mbps(best(() => dequantizeRowsInto(type, theirs, dOut)));
  const dGgml = mbps(best(() => ggml.dequantizeInto(type, theirs, dOut)));
  ratios.push(qWasm / qGgml);
  console.log(
    `${ggmlTypeName(type).padEnd(6)} | ${"".padStart(13)}  ${fmt(qWasm, 7)} ${fmt(qGgml, 7)} ${fmt(qWasm / qGgml, 5, 2)}x | ${"".padStart(15)}  ${fmt(dWasm, 7)} ${fmt(dGgml, 7)} ${fmt(dWasm / dGgml, 5, 2)}x | ${same ? "yes" : "NO"}`,
  );
}
const geo = Math.exp(ratios.reduce((a, r) => a + Math.log(r), 0) / ratios.length);
console.log("-".repeat(100));
console.log(`quantize speed-up vs ggml reference: geometric mean ${geo.toFixed(2)}x, min ${Math.min(...ratios).toFixed(2)}x`);

// The worker pool on every core (output identical to one thread; see test/kernels.test.ts).
const threads = Math.max(1, Number(args.threads ?? availableParallelism()));
if (threads > 1) {
  const pool = new KernelPool({ threads });
  console.log("");
  console.log(`worker pool, ${threads} threads (quantize MB/s, copies to and from workers included):`);
  for (const type of [GgmlType.Q4_K, GgmlType.Q6_K, GgmlType.Q8_0]) {
    await pool.quantizeRows(type, input, ROW);
    let min = Infinity;
    for (let i = 0; i < repeat; i++) {
      const start = process.hrtime.bigint();
      await pool.quantizeRows(type, input, ROW);
      min = Math.min(min, Number(process.hrtime.bigint() - start) / 1e9);
    }
    const one = mbps(best(() => quantizeRows(type, input, ROW)));
    console.log(`${ggmlTypeName(type).padEnd(6)} | ${fmt(mbps(min), 7)} MB/s vs ${fmt(one, 7)} on one thread (${(mbps(min) / one).toFixed(2)}x)`);
  }
  await pool.destroy();
}
