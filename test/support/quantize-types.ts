// test/fixtures/llama-quantize-types.json: the tensor types llama_model_quantize chose, per model
// and scheme. mixtures.test.ts records it from the shipped libllama (and checks it on every run);
// mixture-rules.test.ts checks src's mixture rules against it without llama.cpp.

import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "./cli.js";

export const QUANTIZE_TYPES_FILE = join(REPO_ROOT, "test/fixtures/llama-quantize-types.json");

export interface RecordedModel {
  layers: number;
  heads: number;
  kvHeads: number;
  /** [GGUF name, shape in PyTorch order], in the order llama_model_quantize wrote them. */
  tensors: [string, number[]][];
  /** scheme -> ggml type name of each tensor, in `tensors` order. */
  schemes: Record<string, string[]>;
}

export function readQuantizeTypes(): Record<string, RecordedModel> {
  return (JSON.parse(readFileSync(QUANTIZE_TYPES_FILE, "utf8")) as { models: Record<string, RecordedModel> }).models;
}

/** Written one tensor and one scheme a line, so a changed choice shows as a one-line diff. */
export function writeQuantizeTypes(models: Record<string, RecordedModel>): void {
  const j = JSON.stringify;
  const model = (m: RecordedModel) =>
    [
      `{ "layers": ${m.layers}, "heads": ${m.heads}, "kvHeads": ${m.kvHeads},`,
      `   "tensors": [\n${m.tensors.map((t) => `    ${j(t)}`).join(",\n")}\n   ],`,
      `   "schemes": {\n${Object.entries(m.schemes).map(([s, types]) => `    ${j(s)}: ${j(types)}`).join(",\n")}\n   } }`,
    ].join("\n");
  const body = Object.entries(models).map(([label, m]) => `  ${j(label)}: ${model(m)}`).join(",\n");
  writeFileSync(QUANTIZE_TYPES_FILE, `{ "description": "llama_model_quantize's tensor types (written by mixtures.test.ts, read by mixture-rules.test.ts)",\n "models": {\n${body}\n } }\n`);
}
