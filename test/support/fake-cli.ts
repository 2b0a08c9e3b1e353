/**
 * The real CLI (src/cli/bin.ts) in a child process, asynchronously, so several runs (or a
 * run and a fake server in this process) can proceed at once; with an explicit env and cwd.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { REPO_ROOT, type CliResult } from "./cli.js";

/** tsx by path, so the child finds it whatever its working folder. */
const TSX = pathToFileURL(join(REPO_ROOT, "node_modules/tsx/dist/loader.mjs")).href;

/** Runs edgequant with `args`. */
export function runEdgequant(args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  const command = [process.execPath, "--import", TSX, join(REPO_ROOT, "src/cli/bin.ts"), ...args];
  return new Promise((done, fail) => {
    const child = spawn(command[0]!, command.slice(1), { cwd: options.cwd ?? REPO_ROOT, env: options.env ?? process.env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    child.on("error", fail);
    child.on("close", (code) => done({ code: code ?? -1, stdout, stderr }));
  });
}
