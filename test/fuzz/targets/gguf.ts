import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { readFileSync } from "node:fs";
import fc from "fast-check";
import { convertToGguf } from "../../../src/convert/gguf.js";
import { planFromGguf } from "../../../src/plan/gguf.js";
import { resolveScheme } from "../../../src/quant/schemes.js";
import { openGgufInput } from "../../../src/readers/gguf-input.js";
import type { FuzzTarget } from "../target.js";
import { microModel } from "./base.js";

let baseBytes: Buffer | undefined;

/** The micro model as an F32 GGUF (written once per process). */
async function baseGguf(): Promise<Buffer> {
  if (baseBytes) return baseBytes;
  const path = join(microModel(), "micro-f32.gguf");
  if (!existsSync(path)) await convertToGguf({ source: microModel(), output: path, scheme: resolveScheme("f32") });
  baseBytes = readFileSync(path);
  return baseBytes;
}

interface GgufCase {
  /** Byte edits in the header region (offsets wrap around its first 64 kB). */
  readonly edits: readonly { at: number; byte: number }[];
  readonly truncateAt: number | undefined;
}

export const ggufTarget: FuzzTarget<GgufCase> = {
  name: "gguf",
  description: "a GGUF input with header bytes changed (counts, lengths, types, offsets) and truncated",
  input: fc.record({
    edits: fc.array(fc.record({ at: fc.nat(), byte: fc.nat({ max: 255 }) }), { minLength: 1, maxLength: 6 }),
    truncateAt: fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.nat() }),
  }),
  async run(input, scratch) {
    const bytes = Buffer.from(await baseGguf());
    const header = Math.min(bytes.length, 65536);
    for (const { at, byte } of input.edits) bytes[at % header] = byte;
    const path = join(scratch, "input.gguf");
    writeFileSync(path, input.truncateAt === undefined ? bytes : bytes.subarray(0, input.truncateAt % bytes.length));
    const gguf = await openGgufInput(path);
    try {
      const plan = planFromGguf(gguf, resolveScheme("q8_0"));
      for (const tensor of plan.tensors) if (tensor.origin.kind === "source") await tensor.origin.tensor.read(0, Math.min(tensor.origin.tensor.byteLength, 64));
    } finally {
      await gguf.close();
    }
  },
};
