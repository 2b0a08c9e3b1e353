// What one fuzz case ended as, and the counts a run reports.
export const OUTCOMES = ["accepted", "refused", "internal", "timeout", "memory"] as const;
export type Outcome = (typeof OUTCOMES)[number];

export type Counts = Record<Outcome, number>;

export const noCounts = (): Counts => ({ accepted: 0, refused: 0, internal: 0, timeout: 0, memory: 0 });

/** Messages between the harness and the child process that runs one target's cases. */
export type ChildMessage =
  | { kind: "start"; index: number; input: unknown }
  | { kind: "done"; index: number; outcome: "accepted" | "refused" | "internal"; detail?: string }
  | { kind: "finished" };

export interface ChildTask {
  readonly target: string;
  readonly seed: number;
  readonly from: number;
  readonly to: number;
  readonly scratch: string;
}
