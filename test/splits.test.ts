import { readFileSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { gguf } from "@huggingface/gguf";
import { afterAll, describe, expect, it } from "vitest";
import { CORPUS, TINY_LLAMA, runCli, tempDir } from "./support/cli.js";
import { syntheticCheckpoint } from "./support/large-checkpoint.js";
import { disposeLlamaCpp, llamaCppLogits, llamaCppTokenize } from "./support/llama-cpp.js";

const dir = tempDir();
afterAll(async () => {
  await disposeLlamaCpp();
  rmSync(dir, { recursive: true, force: true });
});

function convert(source: string, output: string, extra: string[]): { seconds: number } {
  const started = performance.now();
  const result = runCli(["convert", source, "--to", "gguf", "--scheme", "q8_0", "-o", output, "--no-progress", ...extra]);
  expect(result.code, result.stderr).toBe(0);
  return { seconds: (performance.now() - started) / 1000 };
}

/** The GGUF splits in two folders are the same files (a single run also writes its fit manifest; parts do not). */
function sameFiles(a: string, b: string): void {
  const splits = (folder: string) => readdirSync(folder).filter((name) => name.endsWith(".gguf")).sort();
  const names = splits(a);
  expect(splits(b)).toEqual(names);
  for (const name of names) expect(readFileSync(join(a, name)).equals(readFileSync(join(b, name))), name).toBe(true);
}

describe("gguf-split files: N matrix jobs write the same files as one run, and llama.cpp loads them", () => {
  it("tiny model, 3 MB splits: three --part runs equal one --split-max-size run", async () => {
    convert(TINY_LLAMA, join(dir, "one/tiny.gguf"), ["--split-max-size", "3M"]);
    for (const part of ["1/3", "2/3", "3/3"]) convert(TINY_LLAMA, join(dir, "parts/tiny.gguf"), ["--split-max-size", "3M", "--part", part]);
    sameFiles(join(dir, "one"), join(dir, "parts"));
    expect(readdirSync(join(dir, "one"))).toContain("tiny-00001-of-00003.gguf.fit.json");
    expect(readdirSync(join(dir, "parts")).filter((name) => name.includes(".fit."))).toEqual([]);
    const first = await gguf(join(dir, "one/tiny-00001-of-00003.gguf"), { allowLocalFile: true });
    const second = await gguf(join(dir, "one/tiny-00002-of-00003.gguf"), { allowLocalFile: true });
    const metadata = first.metadata as Record<string, unknown>;
    expect(metadata["split.count"]).toBe(3);
    expect(metadata["split.tensors.count"]).toBe(57);
    expect(metadata["general.architecture"]).toBe("llama");
    expect(Object.keys(second.metadata).filter((k) => !["version", "tensor_count", "kv_count"].includes(k)).sort()).toEqual(["split.count", "split.no", "split.tensors.count"]);
  });

  it("llama.cpp loads the split model and computes exactly the logits of the single file", async () => {
    const single = join(dir, "tiny-single.gguf");
    convert(TINY_LLAMA, single, []);
    const tokens = (await llamaCppTokenize(single, readFileSync(CORPUS, "utf8").slice(0, 200))).slice(0, 32);
    const whole = await llamaCppLogits(single, tokens);
    const split = await llamaCppLogits(join(dir, "one/tiny-00001-of-00003.gguf"), tokens);
    expect(split).toEqual(whole);
  });

  it("--part i/N alone cuts N balanced parts; a wrong N is refused with the right one", () => {
    convert(TINY_LLAMA, join(dir, "balanced/tiny.gguf"), ["--part", "2/4"]);
    expect(readdirSync(join(dir, "balanced"))).toEqual(["tiny-00002-of-00004.gguf"]);
    const wrong = runCli(["convert", TINY_LLAMA, "--to", "gguf", "--scheme", "q8_0", "--split-max-size", "3M", "--part", "1/5", "-o", join(dir, "wrong/tiny.gguf")]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain("these settings cut this model into 3 splits: use --part i/3");
  });

  it("TinyLlama-1.1B shapes: three processes, one part each, equal one process; llama.cpp loads them", async () => {
    const source = syntheticCheckpoint("tinyllama1b");
    const one = convert(source, join(dir, "big-one/big.gguf"), ["--split-max-size", "500M"]);
    const parts = readdirSync(join(dir, "big-one")).filter((name) => name.endsWith(".gguf")).length;
    let slowest = 0;
    for (let i = 1; i <= parts; i++) slowest = Math.max(slowest, convert(source, join(dir, "big-parts/big.gguf"), ["--split-max-size", "500M", "--part", `${i}/${parts}`]).seconds);
    sameFiles(join(dir, "big-one"), join(dir, "big-parts"));
    console.log(`1.1B Q8_0 in ${parts} splits: one process ${one.seconds.toFixed(1)} s; the slowest of ${parts} part jobs ${slowest.toFixed(1)} s (the matrix's wall time)`);
    const logits = await llamaCppLogits(join(dir, "big-one/big-00001-of-" + String(parts).padStart(5, "0") + ".gguf"), [1, 450, 4996, 17354]);
    expect(logits).toHaveLength(4);
    expect(logits.every((row) => row.length === 32000 && row.every(Number.isFinite))).toBe(true);
    rmSync(join(dir, "big-one"), { recursive: true });
    rmSync(join(dir, "big-parts"), { recursive: true });
  }, 600_000);
});
