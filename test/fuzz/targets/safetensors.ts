import { writeFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import type { FuzzTarget } from "../target.js";
import { linkMicroModel, MICRO_TENSORS, planEverything } from "./base.js";
import { anyJson, applyMutations, edgeNumber, mutations } from "./values.js";

interface SafetensorsCase {
  readonly header: unknown;
  /** The 8-byte header length as declared, when it lies. */
  readonly declaredLength: number | undefined;
  readonly dataBytes: number;
}

/** The micro model's header, tensors packed in order as F32. */
function validHeader(): Record<string, unknown> {
  const header: Record<string, unknown> = { __metadata__: { format: "pt" } };
  let offset = 0;
  for (const [name, shape] of Object.entries(MICRO_TENSORS)) {
    const bytes = shape.reduce((a, b) => a * b, 1) * 4;
    header[name] = { dtype: "F32", shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  return header;
}

const VALID_BYTES = Object.values(MICRO_TENSORS).reduce((sum, shape) => sum + shape.reduce((a, b) => a * b, 1) * 4, 0);

export const safetensorsTarget: FuzzTarget<SafetensorsCase> = {
  name: "safetensors",
  description: "model.safetensors headers with nodes replaced, lying header lengths and short data",
  input: fc.record({
    header: fc.oneof({ weight: 6, arbitrary: mutations(3).map((edits) => applyMutations(validHeader(), edits)) }, { weight: 1, arbitrary: anyJson }),
    declaredLength: fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.oneof(edgeNumber, fc.nat({ max: 1 << 20 })) }),
    dataBytes: fc.oneof(fc.constant(VALID_BYTES), fc.nat({ max: VALID_BYTES + 64 })),
  }),
  async run(input, scratch) {
    const json = Buffer.from(JSON.stringify(input.header) ?? "");
    const length = Buffer.alloc(8);
    const declared = input.declaredLength ?? json.length;
    length.writeBigUInt64LE(BigInt(Math.max(0, Math.min(Math.trunc(declared), 2 ** 53))) & 0xffffffffffffffffn);
    writeFileSync(join(scratch, "model.safetensors"), Buffer.concat([length, json, Buffer.alloc(input.dataBytes)]));
    linkMicroModel(scratch, ["model.safetensors"]);
    await planEverything(scratch);
  },
};
