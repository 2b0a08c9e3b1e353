// The child process that runs a range of one target's cases, reporting each case's start (with
// its input) before running it, so that the harness can name the input of a case that hangs or
// blows up the process.
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { UserError } from "../../src/errors.js";
import type { ChildMessage, ChildTask } from "./outcome.js";
import { FUZZ_TARGETS } from "./targets/index.js";

const send = (message: ChildMessage) => new Promise<void>((done) => process.send!(message, () => done()));

const task = JSON.parse(process.argv[2]!) as ChildTask;
const target = FUZZ_TARGETS.find((t) => t.name === task.target);
if (!target) throw new Error(`no fuzz target '${task.target}'`);

for (let index = task.from; index < task.to; index++) {
  // One input per index, so a run restarted after a kill continues with the same cases.
  const input = fc.sample(target.input, { seed: task.seed + index, numRuns: 1 })[0];
  const scratch = join(task.scratch, `case-${process.pid}`);
  rmSync(scratch, { recursive: true, force: true });
  mkdirSync(scratch, { recursive: true });
  await send({ kind: "start", index, input });
  try {
    await target.run(input, scratch);
    await send({ kind: "done", index, outcome: "accepted" });
  } catch (error) {
    const internal = !(error instanceof UserError);
    const detail = error instanceof Error ? (internal ? (error.stack ?? error.message) : error.message) : String(error);
    await send({ kind: "done", index, outcome: internal ? "internal" : "refused", detail });
  }
}
rmSync(join(task.scratch, `case-${process.pid}`), { recursive: true, force: true });
await send({ kind: "finished" });
// Targets may leave servers open (the fake Hub): the run is over, whatever still listens.
process.exit(0);
