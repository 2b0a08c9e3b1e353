// Targets with planted faults, to prove the harness itself: a hang, a memory blow-up and an
// internal error are each caught, counted and kept, and the cases around them still counted.
import fc from "fast-check";
import { UserError } from "../../../src/errors.js";
import type { FuzzTarget } from "../target.js";

type Behaviour = "accept" | "refuse" | "hang" | "grow" | "throw";

function planted(name: string, fault: Behaviour): FuzzTarget<Behaviour> {
  return {
    name,
    description: `accepts, refuses, or (now and then) does '${fault}'`,
    input: fc.oneof({ weight: 2, arbitrary: fc.constantFrom<Behaviour>("accept", "refuse") }, { weight: 1, arbitrary: fc.constant(fault) }),
    async run(behaviour) {
      if (behaviour === "refuse") throw new UserError("planted refusal");
      if (behaviour === "throw") throw new TypeError("planted internal error");
      if (behaviour === "hang") for (;;);
      if (behaviour === "grow") {
        const held: Float64Array[] = [];
        for (;;) held.push(new Float64Array(1 << 20).fill(1));
      }
    },
  };
}

export const PLANTED_TARGETS = [planted("planted-hang", "hang"), planted("planted-grow", "grow"), planted("planted-throw", "throw")] as readonly FuzzTarget<unknown>[];
