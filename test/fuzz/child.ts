// The child process that runs a range of one target's cases. Before each case it overwrites the
// beacon file with the case's index and the counts so far (a write, no message round trip), so
// the harness can tell which case hangs or blows up the process and what came before it.
import { closeSync, mkdirSync, openSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { UserError } from "../../src/errors.js";
import { encodeBeacon, type ChildMessage, type ChildTask } from "./outcome.js";
import { FUZZ_TARGETS } from "./targets/index.js";
import { PLANTED_TARGETS } from "./targets/planted.js";

const send = (message: ChildMessage) => new Promise<void>((done) => process.send!(message, () => done()));

const task = JSON.parse(process.argv[2]!) as ChildTask;
const target = [...FUZZ_TARGETS, ...PLANTED_TARGETS].find((t) => t.name === task.target);
if (!target) throw new Error(`no fuzz target '${task.target}'`);

const beacon = openSync(task.beacon, "w");
let accepted = 0;
let refused = 0;
const scratch = join(task.scratch, `case-${process.pid}`);
for (let index = task.from; index < task.to; index++) {
  // One input per index, so a run restarted after a kill continues with the same cases.
  const input = fc.sample(target.input, { seed: task.seed + index, numRuns: 1 })[0];
  rmSync(scratch, { recursive: true, force: true });
  mkdirSync(scratch, { recursive: true });
  writeSync(beacon, encodeBeacon({ index, startedAt: Date.now(), accepted, refused }), 0, undefined, 0);
  try {
    await target.run(input, scratch);
    accepted++;
  } catch (error) {
    if (error instanceof UserError) refused++;
    else await send({ kind: "internal", index, detail: error instanceof Error ? (error.stack ?? error.message) : String(error) });
  }
}
writeSync(beacon, encodeBeacon({ index: task.to, startedAt: Date.now(), accepted, refused }), 0, undefined, 0);
closeSync(beacon);
rmSync(scratch, { recursive: true, force: true });
await send({ kind: "finished" });
// Targets may leave servers open (the fake Hub): the run is over, whatever still listens.
process.exit(0);
