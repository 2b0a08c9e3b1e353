// A bounded run of every fuzz target (seconds each): malformed config, tokenizer, safetensors,
// index, recipe, GGUF and Hub inputs are refused as user errors, never an internal error, a hang
// past 10 s or a process past 512 MB. `npm run fuzz -- --cases N` is the long run.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { fuzz } from "./fuzz/harness.js";
import { FUZZ_TARGETS } from "./fuzz/targets/index.js";
import { PLANTED_TARGETS } from "./fuzz/targets/planted.js";

const CASES = 150;
const scratch = mkdtempSync(join(tmpdir(), "edgequant-fuzz-test-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe.each(FUZZ_TARGETS.map((target) => [target.name, target.description] as const))("fuzz target %s (%s)", (name) => {
  it(`${CASES} generated inputs: no internal error, hang or blow-up`, async () => {
    const result = await fuzz({ target: name, cases: CASES, seed: 20261202, timeoutMs: 10_000, memoryMb: 512, scratch, failures: join(scratch, "failures") });
    const kept = result.failures.map((file) => readFileSync(file, "utf8").slice(0, 2000));
    expect(kept, "failing inputs (replay with their seed and index)").toEqual([]);
    expect(result.counts.internal + result.counts.timeout + result.counts.memory).toBe(0);
    expect(result.counts.accepted + result.counts.refused).toBe(CASES);
  }, 300_000);
});

describe("the harness catches a hang, a blow-up and an internal error, keeps each input and counts every case", () => {
  const cases = 6;
  const seed = 7;
  it.each([
    ["planted-hang", "hang", "timeout"],
    ["planted-grow", "grow", "memory"],
    ["planted-throw", "throw", "internal"],
  ] as const)("%s: each '%s' case is counted as %s", async (name, fault, outcome) => {
    const target = PLANTED_TARGETS.find((t) => t.name === name)!;
    const inputs = Array.from({ length: cases }, (_, i) => fc.sample(target.input, { seed: seed + i, numRuns: 1 })[0]);
    const faults = inputs.flatMap((input, i) => (input === fault ? [i] : []));
    expect(faults.length, "the seed plants at least one fault").toBeGreaterThan(0);
    const result = await fuzz({ target: name, cases, seed, timeoutMs: 1000, memoryMb: 256, scratch, failures: join(scratch, "planted") });
    expect(result.counts).toEqual({
      accepted: inputs.filter((input) => input === "accept").length,
      refused: inputs.filter((input) => input === "refuse").length,
      internal: outcome === "internal" ? faults.length : 0,
      timeout: outcome === "timeout" ? faults.length : 0,
      memory: outcome === "memory" ? faults.length : 0,
    });
    const kept = result.failures.map((file) => JSON.parse(readFileSync(file, "utf8")) as { index: number; input: unknown; outcome: string });
    expect(kept.map((k) => [k.index, k.input, k.outcome])).toEqual(faults.map((i) => [i, fault, outcome]));
  }, 120_000);
});
