// npm run fuzz -- [--cases N] [--target NAME,...] [--seed S] [--timeout-ms T] [--memory-mb M]
// Spreads N cases over the targets, runs them two targets at a time (the machine's cores), and
// prints the counts per target and outcome and the wall time. Failing inputs are kept under
// fuzz-failures/<target>/ (ignored by git), each replayable from its seed and index.
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { fuzz, type FuzzResult } from "../test/fuzz/harness.js";
import { OUTCOMES } from "../test/fuzz/outcome.js";
import { FUZZ_TARGETS } from "../test/fuzz/targets/index.js";

const { values } = parseArgs({
  options: {
    cases: { type: "string", default: "6000" },
    target: { type: "string" },
    seed: { type: "string", default: String(Date.now() % 1_000_000) },
    "timeout-ms": { type: "string", default: "10000" },
    "memory-mb": { type: "string", default: "512" },
    parallel: { type: "string", default: "2" },
  },
});
const names = values.target?.split(",") ?? FUZZ_TARGETS.map((t) => t.name);
const unknown = names.filter((name) => !FUZZ_TARGETS.some((t) => t.name === name));
if (unknown.length > 0) throw new Error(`unknown target(s) ${unknown.join(", ")}; targets: ${FUZZ_TARGETS.map((t) => t.name).join(", ")}`);
function line(r: FuzzResult): string {
  return [r.target.padEnd(13), ...OUTCOMES.map((o) => String(r.counts[o]).padStart(9)), `  ${(r.wallMs / 1000).toFixed(1).padStart(7)}`].join("");
}

const perTarget = Math.ceil(Number(values.cases) / names.length);
const scratch = mkdtempSync(join(existsSync("/dev/shm") ? "/dev/shm" : tmpdir(), "edgequant-fuzz-"));
const header = ["target".padEnd(13), ...OUTCOMES.map((o) => o.padStart(9)), "  seconds"].join("");
console.log(`     ${header}`);
const started = Date.now();
const results: FuzzResult[] = [];
const queue = [...names];
await Promise.all(
  Array.from({ length: Number(values.parallel) }, async () => {
    for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
      const result = await fuzz({ target: name, cases: perTarget, seed: Number(values.seed), timeoutMs: Number(values["timeout-ms"]), memoryMb: Number(values["memory-mb"]), scratch, failures: "fuzz-failures" });
      results.push(result);
      // Each target as it ends, so a long run that is stopped still says what it found.
      console.log(`done ${line(result)}`);
    }
  }),
);
rmSync(scratch, { recursive: true, force: true });
console.log(`seed ${values.seed}, ${perTarget} cases per target, wall ${((Date.now() - started) / 1000).toFixed(1)} s`);
console.log(header);
for (const r of results.sort((a, b) => names.indexOf(a.target) - names.indexOf(b.target))) console.log(line(r));
for (const file of results.flatMap((r) => r.failures).slice(0, 20)) console.log(`kept ${file}`);
process.exitCode = results.some((r) => r.counts.internal + r.counts.timeout + r.counts.memory > 0) ? 1 : 0;

