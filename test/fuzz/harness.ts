// Runs fuzz targets in child processes with a time limit per case and a resident-memory limit
// per process: a case that hangs or grows the process past the limit is killed, counted and kept,
// and the run goes on with the next case. Internal errors are kept with their stack.
import { fork, type ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { decodeBeacon, noCounts, type Beacon, type ChildMessage, type ChildTask, type Counts, type Outcome } from "./outcome.js";
import { FUZZ_TARGETS } from "./targets/index.js";
import { PLANTED_TARGETS } from "./targets/planted.js";

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

/** Counts a failed case and keeps its input, generated again from the seed and index. */
type KeepFailure = (outcome: Exclude<Outcome, "accepted" | "refused">, index: number, detail?: string) => void;

export async function fuzz(options: FuzzOptions): Promise<FuzzResult> {
  const started = Date.now();
  const counts = noCounts();
  const failures: string[] = [];
  const keepFailure: KeepFailure = (outcome, index, detail) => {
    counts[outcome]++;
    const input = inputOf(options, index);
    const dir = join(options.failures, options.target);
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `${outcome}-seed${options.seed}-${index}.json`);
    writeFileSync(file, JSON.stringify({ target: options.target, seed: options.seed, index, outcome, detail, input }, null, 2) + "\n");
    failures.push(file);
  };
  let next = 0;
  while (next < options.cases) next = await runChild(options, next, counts, keepFailure);
  return { target: options.target, counts, failures, wallMs: Date.now() - started };
}

/** The input of case `index`, generated again the way the child generated it. */
function inputOf(options: FuzzOptions, index: number): unknown {
  const target = [...FUZZ_TARGETS, ...PLANTED_TARGETS].find((t) => t.name === options.target)!;
  return fc.sample(target.input, { seed: options.seed + index, numRuns: 1 })[0];
}

function readBeacon(path: string): Beacon | undefined {
  try {
    return decodeBeacon(readFileSync(path));
  } catch {
    return undefined; // not written yet
  }
}

/** Runs cases from `from` in one child; resolves to the index to continue at. */
function runChild(options: FuzzOptions, from: number, counts: Counts, keepFailure: KeepFailure): Promise<number> {
  const beacon = join(options.scratch, `beacon-${options.target}-${from}`);
  const task: ChildTask = { target: options.target, seed: options.seed, from, to: options.cases, scratch: options.scratch, beacon };
  const child: ChildProcess = fork(CHILD, [JSON.stringify(task)], {
    execArgv: ["--import", "tsx", `--max-old-space-size=${options.memoryMb}`],
    stdio: ["ignore", "ignore", "pipe", "ipc"],
  });
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr = (stderr + chunk.toString("utf8")).slice(-4000)));
  return new Promise((resolve) => {
    let verdict: "timeout" | "memory" | undefined;
    let finished = false;
    const kill = (outcome: "timeout" | "memory") => {
      verdict ??= outcome;
      child.kill("SIGKILL");
    };
    const watch = setInterval(() => {
      if (child.pid && residentBytes(child.pid) > options.memoryMb * 2 ** 20) kill("memory");
      const now = readBeacon(beacon);
      if (now && now.index < options.cases && Date.now() - now.startedAt > options.timeoutMs) kill("timeout");
    }, 50);
    child.on("message", (message: ChildMessage) => {
      if (message.kind === "internal") keepFailure("internal", message.index, message.detail);
      else finished = true;
    });
    child.on("exit", (code, signal) => {
      clearInterval(watch);
      const last = readBeacon(beacon);
      rmSync(beacon, { force: true });
      counts.accepted += last?.accepted ?? 0;
      counts.refused += last?.refused ?? 0;
      if (finished || (last && last.index >= options.cases)) return resolve(options.cases);
      const current = last?.index ?? from;
      // A V8 heap limit aborts the process: that is the memory limit too.
      const outcome: Exclude<Outcome, "accepted" | "refused"> = verdict ?? (signal === "SIGABRT" || code === 134 || /heap out of memory/i.test(stderr) ? "memory" : "internal");
      keepFailure(outcome, current, verdict ? undefined : `child exited (${signal ?? code}): ${stderr}`);
      resolve(current + 1);
    });
  });
}
