// Runs fuzz targets in child processes with a time limit per case and a resident-memory limit
// per process: a case that hangs or grows the process past the limit is killed, counted and kept,
// and the run goes on with the next case. Internal errors are kept with their stack.
import { fork, type ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { noCounts, type ChildMessage, type ChildTask, type Counts, type Outcome } from "./outcome.js";

export interface FuzzOptions {
  readonly target: string;
  readonly cases: number;
  readonly seed: number;
  readonly timeoutMs: number;
  readonly memoryMb: number;
  readonly scratch: string;
  /** Where failing inputs are written, one JSON file each. */
  readonly failures: string;
}

export interface FuzzResult {
  readonly target: string;
  readonly counts: Counts;
  readonly failures: readonly string[];
  readonly wallMs: number;
}

const CHILD = new URL("./child.ts", import.meta.url).pathname;

/** Resident set of a process in bytes, from /proc (0 once it is gone). */
function residentBytes(pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

export async function fuzz(options: FuzzOptions): Promise<FuzzResult> {
  const started = Date.now();
  const counts = noCounts();
  const failures: string[] = [];
  const keep = (outcome: Outcome, index: number, input: unknown, detail?: string) => {
    counts[outcome]++;
    if (outcome === "accepted" || outcome === "refused") return;
    const dir = join(options.failures, options.target);
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `${outcome}-seed${options.seed}-${index}.json`);
    writeFileSync(file, JSON.stringify({ target: options.target, seed: options.seed, index, outcome, detail, input }, null, 2) + "\n");
    failures.push(file);
  };
  let next = 0;
  while (next < options.cases) next = await runChild(options, next, keep);
  return { target: options.target, counts, failures, wallMs: Date.now() - started };
}

/** Runs cases from `from` in one child; resolves to the index to continue at. */
function runChild(options: FuzzOptions, from: number, keep: (outcome: Outcome, index: number, input: unknown, detail?: string) => void): Promise<number> {
  const task: ChildTask = { target: options.target, seed: options.seed, from, to: options.cases, scratch: options.scratch };
  const child: ChildProcess = fork(CHILD, [JSON.stringify(task)], {
    execArgv: ["--import", "tsx", `--max-old-space-size=${options.memoryMb}`],
    stdio: ["ignore", "ignore", "pipe", "ipc"],
  });
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr = (stderr + chunk.toString("utf8")).slice(-4000)));
  return new Promise((resolve) => {
    let current: { index: number; input: unknown } | undefined;
    let timer: NodeJS.Timeout | undefined;
    let verdict: Outcome | undefined;
    const kill = (outcome: Outcome) => {
      verdict = outcome;
      child.kill("SIGKILL");
    };
    const memory = setInterval(() => {
      if (child.pid && residentBytes(child.pid) > options.memoryMb * 2 ** 20) kill("memory");
    }, 50);
    child.on("message", (message: ChildMessage) => {
      if (message.kind === "start") {
        current = { index: message.index, input: message.input };
        timer = setTimeout(() => kill("timeout"), options.timeoutMs);
      } else if (message.kind === "done") {
        clearTimeout(timer);
        keep(message.outcome, message.index, current?.input, message.detail);
        current = undefined;
      }
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      clearInterval(memory);
      if (!current) return resolve(options.cases);
      // A V8 heap limit aborts the process: that is the memory limit too.
      const outcome = verdict ?? (signal === "SIGABRT" || code === 134 || /heap out of memory/i.test(stderr) ? "memory" : "internal");
      keep(outcome, current.index, current.input, verdict ? undefined : `child exited (${signal ?? code}): ${stderr}`);
      resolve(current.index + 1);
    });
  });
}
