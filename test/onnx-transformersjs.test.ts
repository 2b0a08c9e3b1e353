// transformers.js (Node, onnxruntime-node CPU) loads our `layout: "transformersjs"` folder from
// disk with the network disabled and generates greedily. The fixture has only tokenizer.model (no
// tokenizer.json), so generation starts from input_ids tensors and token ids are compared.

import { rmSync } from "node:fs";
import { join } from "node:path";
import type { Tensor as TjsTensor } from "@huggingface/transformers";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { convertToOnnx, type OnnxBits } from "../src/convert/onnx.js";
import { TINY_LLAMA, tempDir } from "./support/cli.js";
import { disposeLlamaCpp } from "./support/llama-cpp.js";
import { corpusPrompts, removeOnnxFixtures } from "./support/onnx-fixtures.js";
import { loadOnnxModel, onnxGreedy } from "./support/onnx-runtime.js";
import { ORACLES, requireOracleAsync } from "./support/oracle.js";

// transformers.js is this suite's oracle: without it the suite fails here, naming the package.
const { AutoModelForCausalLM, env, Tensor } = await requireOracleAsync(ORACLES.transformersJs, () => import("@huggingface/transformers"));

const NEW_TOKENS = 20;
const root = tempDir("edgequant-onnx-tjs-");
let prompts: number[][];

beforeAll(async () => {
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = root;
  prompts = (await corpusPrompts()).map((p) => p.slice(0, 40));
});
afterAll(async () => {
  await disposeLlamaCpp();
  removeOnnxFixtures();
  rmSync(root, { recursive: true, force: true });
});

describe.each([
  [4, "q4"],
  [32, "fp32"],
] as const)("transformers.js runs the %s-bit export", (bits, dtype) => {
  test(`greedy ${NEW_TOKENS} tokens equal onnxruntime-node's on the same file, for 3 prompts`, async () => {
    const name = `tiny-llama-${dtype}`;
    const report = await convertToOnnx({ source: TINY_LLAMA, output: join(root, name), bits: bits as OnnxBits, layout: "transformersjs" });
    // No dtype given: transformers.js takes it from transformers.js_config, as a user's from_pretrained(id) would.
    const model = await AutoModelForCausalLM.from_pretrained(name, { local_files_only: true, device: "cpu" });
    const direct = await loadOnnxModel(join(report.output, report.modelFile));
    try {
      for (const prompt of prompts) {
        const input_ids = new Tensor("int64", BigInt64Array.from(prompt.map(BigInt)), [1, prompt.length]);
        const output = (await model.generate({ input_ids, max_new_tokens: NEW_TOKENS, do_sample: false })) as TjsTensor;
        const generated = Array.from(output.data as BigInt64Array, Number).slice(prompt.length);
        const expected = await onnxGreedy(direct, prompt, NEW_TOKENS);
        console.log(`[onnx] transformers.js ${dtype}: prompt of ${prompt.length} tokens -> ${generated.join(" ")}`);
        expect(generated).toEqual(expected);
        expect(generated).toHaveLength(NEW_TOKENS);
      }
    } finally {
      await model.dispose();
    }
  });
});
