import { writeFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { openCheckpoint } from "../../../src/readers/checkpoint.js";
import type { FuzzTarget } from "../target.js";
import { linkMicroModel, MICRO_TENSORS } from "./base.js";
import { anyJson, applyMutations, edgeString, mutations } from "./values.js";

const VALID_INDEX = { metadata: { total_size: 1 }, weight_map: Object.fromEntries(Object.keys(MICRO_TENSORS).map((name) => [name, "model.safetensors"])) };

export const indexTarget: FuzzTarget<unknown> = {
  name: "index",
  description: "model.safetensors.index.json with nodes replaced and shard names that are paths",
  input: fc.oneof(
    { weight: 4, arbitrary: mutations(3).map((edits) => applyMutations(VALID_INDEX, edits)) },
    { weight: 2, arbitrary: edgeString.map((shard) => ({ weight_map: { "model.norm.weight": shard } })) },
    { weight: 1, arbitrary: anyJson },
  ),
  async run(input, scratch) {
    linkMicroModel(scratch, []);
    writeFileSync(join(scratch, "model.safetensors.index.json"), JSON.stringify(input) ?? "");
    const checkpoint = await openCheckpoint(scratch);
    await checkpoint.close();
  },
};
