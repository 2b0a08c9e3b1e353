// The size rules of the code base, checked rather than eyeballed: no source file over 400
// lines, no function over 100 (scripts/long-functions.mjs asks the compiler's own parser).
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = join(import.meta.dirname, "..");
const SRC = join(ROOT, "src");

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    return statSync(path).isDirectory() ? sourceFiles(path) : path.endsWith(".ts") ? [path] : [];
  });
}

describe("source files and functions stay small", () => {
  it("no file in src/ has more than 400 lines", () => {
    const long = sourceFiles(SRC)
      .map((file) => ({ file: relative(ROOT, file), lines: readFileSync(file, "utf8").split("\n").length - 1 }))
      .filter(({ lines }) => lines > 400);
    expect(long).toEqual([]);
  });

  it("no function in src/ has more than 100 lines", () => {
    const run = spawnSync(process.execPath, [join(ROOT, "scripts", "long-functions.mjs"), "--max", "100", "src"], { cwd: ROOT, encoding: "utf8" });
    expect(run.stderr).toBe("");
    expect(run.stdout.trim()).toBe("no function over 100 lines");
    expect(run.status).toBe(0);
  }, 60_000);
});
