import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { expect } from "vitest";

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const TINY_LLAMA = join(REPO_ROOT, "test/fixtures/tiny-llama");
export const TINY_LLAMA_TERNARY = join(REPO_ROOT, "test/fixtures/tiny-llama-ternary");
export const CORPUS = join(REPO_ROOT, "test/fixtures/corpus-test.txt");

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the real CLI in a child process, from source, as a user would run the built one. */
export function runCli(args: readonly string[], options: { cwd?: string; shellPrefix?: string; pipeTo?: string } = {}): CliResult {
  const command = [process.execPath, "--import", "tsx", join(REPO_ROOT, "src/cli/bin.ts"), ...args];
  const shell = options.shellPrefix !== undefined || options.pipeTo !== undefined;
  const pipe = options.pipeTo === undefined ? "" : ` | ${options.pipeTo}`;
  const result = shell
    ? spawnSync("bash", ["-c", `${options.shellPrefix ?? ""} ${command.map(shellQuote).join(" ")}${pipe}`], { cwd: options.cwd ?? REPO_ROOT, encoding: "utf8" })
    : spawnSync(command[0]!, command.slice(1), { cwd: options.cwd ?? REPO_ROOT, encoding: "utf8" });
  return { code: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

function shellQuote(arg: string): string {
  return `'${arg.replaceAll("'", "'\\''")}'`;
}

export function tempDir(prefix = "edgequant-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A writable copy of a fixture model folder. */
export function copyFixture(source: string, into = tempDir()): string {
  const target = join(into, "model");
  cpSync(source, target, { recursive: true });
  return target;
}

/** Every file in a folder, including hidden temporaries a failed write could leave. */
export function listFiles(dir: string): string[] {
  return readdirSync(dir).sort();
}

/**
 * Converts `source` with the CLI and expects the promised refusal of bad input: exit 2 within a
 * minute (no hang), `message`, no stack trace, and nothing at the destination or beside it.
 */
export function expectRefused(source: string, message: RegExp, to: "gguf" | "onnx" | "mlx" = "gguf"): void {
  const outDir = tempDir();
  const output = join(outDir, to === "gguf" ? "out.gguf" : "out");
  const result = runCli(["convert", source, "--to", to, "-o", output, "--no-progress"], { shellPrefix: "timeout 60" });
  expect(result.stderr).toMatch(message);
  expect(result.stderr).not.toMatch(/\n\s+at /);
  expect(result.code).toBe(2);
  expect(listFiles(outDir)).toEqual([]);
  rmSync(outDir, { recursive: true, force: true });
}
