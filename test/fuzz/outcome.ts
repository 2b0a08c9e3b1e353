// What one fuzz case ended as, the counts a run reports, and how the child process that runs one
// target's cases tells the harness where it is.
export const OUTCOMES = ["accepted", "refused", "internal", "timeout", "memory"] as const;
export type Outcome = (typeof OUTCOMES)[number];

export type Counts = Record<Outcome, number>;

export const noCounts = (): Counts => ({ accepted: 0, refused: 0, internal: 0, timeout: 0, memory: 0 });

/** Sent only for what must be kept: an internal error with its stack; then once at the end. */
export type ChildMessage = { kind: "internal"; index: number; detail: string } | { kind: "finished" };

export interface ChildTask {
  readonly target: string;
  readonly seed: number;
  readonly from: number;
  readonly to: number;
  readonly scratch: string;
  /** A file the child overwrites as each case starts (see Beacon), so no message is awaited per case. */
  readonly beacon: string;
}

/**
 * The child's position, as float64s: the case running now (or `to` when done), when it started,
 * and how many of its cases so far were accepted and refused. A child killed for a hang or its
 * memory leaves in it which case that was and the counts up to it.
 */
export interface Beacon {
  readonly index: number;
  readonly startedAt: number;
  readonly accepted: number;
  readonly refused: number;
}

export const BEACON_BYTES = 32;

export function encodeBeacon(beacon: Beacon): Buffer {
  const bytes = Buffer.alloc(BEACON_BYTES);
  [beacon.index, beacon.startedAt, beacon.accepted, beacon.refused].forEach((value, i) => bytes.writeDoubleLE(value, 8 * i));
  return bytes;
}

/** undefined before the child's first write. */
export function decodeBeacon(bytes: Buffer): Beacon | undefined {
  if (bytes.length < BEACON_BYTES) return undefined;
  const [index, startedAt, accepted, refused] = [0, 1, 2, 3].map((i) => bytes.readDoubleLE(8 * i)) as [number, number, number, number];
  return { index, startedAt, accepted, refused };
}
