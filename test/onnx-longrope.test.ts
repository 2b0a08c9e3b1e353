// LongRoPE's long factors in the ONNX export: the graph keeps both cos/sin tables and takes the
// long one when the total sequence is longer than the original context, as transformers does.
// A Phi-4-mini-config checkpoint with its original context shrunk to 16 puts every test prompt
// past it; decoding through the KV cache from a 20-token prefix then stays on the long table too.

import { rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { convertToOnnx } from "../src/convert/onnx.js";
import { tempDir } from "./support/cli.js";
import { disposeLlamaCpp } from "./support/llama-cpp.js";
import { compareLogits } from "./support/logit-metrics.js";
import { corpusPrompts, removeOnnxFixtures } from "./support/onnx-fixtures.js";
import { emptyCache, loadOnnxModel, onnxLogits, runStep, type OnnxModel } from "./support/onnx-runtime.js";
import { referenceLogits } from "./support/reference-forward.js";
import { writeSyntheticCheckpoint } from "./support/synthetic-checkpoint.js";

const TOLERANCE = 1e-4;
const ORIGINAL_CONTEXT = 16;
const dir = tempDir("edgequant-onnx-longrope-");
const source = join(dir, "phi-four-mini-long");
let prompts: number[][];
let model: OnnxModel;

beforeAll(async () => {
  prompts = await corpusPrompts();
  writeSyntheticCheckpoint(source, { modelType: "phi4-mini", hidden: 128, layers: 2, heads: 4, kvHeads: 2, headDim: 32, intermediate: 256, vocab: 4096, seed: 17, dtype: "BF16", originalContext: ORIGINAL_CONTEXT });
  const report = await convertToOnnx({ source, output: join(dir, "onnx"), bits: 32 });
  model = await loadOnnxModel(join(report.output, report.modelFile));
});
afterAll(async () => {
  await disposeLlamaCpp();
  removeOnnxFixtures();
  rmSync(dir, { recursive: true, force: true });
});

describe("fp32 ONNX export with LongRoPE long factors (Phi-4-mini config, original context 16)", () => {
  test(`onnxruntime logits match the reference forward pass (max abs <= ${TOLERANCE})`, async () => {
    for (const tokens of prompts) {
      expect(tokens.length).toBeGreaterThan(ORIGINAL_CONTEXT);
      const cmp = compareLogits(referenceLogits(source, tokens), await onnxLogits(model, tokens));
      console.log(`[onnx] phi4-mini long factors, ${tokens.length} tokens: max |onnx - reference| = ${cmp.maxAbsDiff.toExponential(2)}`);
      expect(cmp.maxAbsDiff).toBeLessThanOrEqual(TOLERANCE);
      expect(cmp.top1Agreement).toBe(1);
    }
  });

  test("decoding through the cache past the original context equals the full pass", async () => {
    const tokens = prompts[0]!;
    let step = await runStep(model, tokens.slice(0, ORIGINAL_CONTEXT + 4), emptyCache(model));
    const logits = [...step.logits];
    for (let t = ORIGINAL_CONTEXT + 4; t < tokens.length; t++) {
      step = await runStep(model, [tokens[t]!], step.cache);
      logits.push(...step.logits);
    }
    const cmp = compareLogits(await onnxLogits(model, tokens), logits);
    console.log(`[onnx] phi4-mini long factors, KV cache: max |stepwise - full| = ${cmp.maxAbsDiff.toExponential(2)}`);
    expect(cmp.maxAbsDiff).toBeLessThanOrEqual(TOLERANCE);
  });
});
