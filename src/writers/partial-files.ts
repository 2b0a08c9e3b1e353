import { readdirSync, rmSync } from "node:fs";
import { basename, dirname, join } from "node:path";

/**
 * Where a destination is written before it is renamed into place: a hidden name beside it
 * carrying the writer's pid, so a later run can tell the leftovers of a killed process
 * (SIGKILL runs no exit handler) from the work of one still running.
 */
export function partialPath(destination: string): string {
  return join(dirname(destination), `.${basename(destination)}.${process.pid}.partial`);
}

/** Removes the partial files and folders of `destination` whose writing process has died. */
export function removeStalePartials(destination: string): void {
  const prefix = `.${basename(destination)}.`;
  let entries: string[];
  try {
    entries = readdirSync(dirname(destination));
  } catch {
    return; // no parent folder yet: nothing left behind
  }
  for (const name of entries) {
    if (!name.startsWith(prefix) || !name.endsWith(".partial")) continue;
    const pid = Number(name.slice(prefix.length, -".partial".length));
    if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && !isAlive(pid)) rmSync(join(dirname(destination), name), { recursive: true, force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: alive, but another user's.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
