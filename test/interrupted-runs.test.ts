// A conversion killed with SIGKILL runs no clean-up, so it leaves its hidden partial output.
// The next run on the same destination removes the leftovers of dead processes and succeeds.
import { spawn } from "node:child_process";
import { existsSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { REPO_ROOT, TINY_LLAMA, runCli, tempDir } from "./support/cli.js";

const dir = tempDir();
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const partials = (folder: string) => (existsSync(folder) ? readdirSync(folder).filter((name) => name.endsWith(".partial")) : []);

/** Starts the CLI and SIGKILLs it as soon as its partial output appears in `folder`. */
async function killMidway(args: readonly string[], folder: string): Promise<void> {
  const child = spawn(process.execPath, ["--import", "tsx", join(REPO_ROOT, "src/cli/bin.ts"), ...args], { cwd: REPO_ROOT, stdio: "ignore" });
  const exited = new Promise<void>((done) => child.once("exit", () => done()));
  for (let waited = 0; partials(folder).length === 0; waited += 5) {
    if (waited > 120_000 || child.exitCode !== null) throw new Error("the conversion ended before it could be killed");
    await new Promise((done) => setTimeout(done, 5));
  }
  child.kill("SIGKILL");
  await exited;
}

describe.each([
  ["gguf", "tiny.gguf", ["--scheme", "q4_k_m"]],
  ["onnx", "tiny-onnx", ["--bits", "4"]],
  ["mlx", "tiny-mlx", ["--bits", "4"]],
])("SIGKILL during a %s conversion, then the same command again", (format, name, flags) => {
  it("succeeds, and no .partial file is left beside the destination", async () => {
    const folder = join(dir, format);
    const args = ["convert", TINY_LLAMA, "--to", format, ...flags, "-o", join(folder, name), "--no-progress"];
    await killMidway(args, folder);
    expect(partials(folder).length, "the killed run left its partial output").toBeGreaterThan(0);
    const again = runCli(args);
    expect(again.code, again.stderr).toBe(0);
    expect(existsSync(join(folder, name))).toBe(true);
    expect(partials(folder)).toEqual([]);
  });
});
