// A fuzz target: how to generate one malformed input (as JSON, so a failing case can be kept
// and replayed) and how to feed it to edgequant. A UserError is the promised refusal; any other
// throw is an internal error, and the harness also watches for hangs and memory blow-ups.
import type { Arbitrary } from "fast-check";

export interface FuzzTarget<Input = unknown> {
  readonly name: string;
  /** What the inputs look like and which promise they test. */
  readonly description: string;
  readonly input: Arbitrary<Input>;
  /** Feeds one input to edgequant; `scratch` is an empty folder of its own. */
  run(input: Input, scratch: string): Promise<void>;
}

/** A byte string carried through JSON. */
export const toBase64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString("base64");
export const fromBase64 = (text: string): Buffer => Buffer.from(text, "base64");
