import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

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
