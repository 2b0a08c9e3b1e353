// A bounded run of every fuzz target (seconds each): malformed config, tokenizer, safetensors,
// index, recipe, GGUF and Hub inputs are refused as user errors, never an internal error, a hang
// past 10 s or a process past 512 MB. `npm run fuzz -- --cases N` is the long run.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { fuzz } from "./fuzz/harness.js";
import { FUZZ_TARGETS } from "./fuzz/targets/index.js";

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
