// phi3 ONNX beyond the fp32 suite (onnx-export.test.ts covers Phi-3.5's and Phi-4-mini's configs):
// 1. LongRoPE's long factors: the graph keeps both cos/sin tables and takes the long one when the
//    total sequence is longer than the original context, as transformers does. A Phi-4-mini-config
//    checkpoint with its original context shrunk to 16 puts every test prompt past it; decoding
//    through the KV cache from a 20-token prefix then stays on the long table too.
// 2. int4: the fused qkv_proj / gate_up_proj as MatMulNBits; with float activations the logits
//    match the reference forward pass on the int4 weights themselves (decoded by test/support's
//    unpacker) as closely as the fp32 export matches the float model (onnx-tied.test.ts's oracle).

import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { convertToOnnx } from "../src/convert/onnx.js";
import { tempDir } from "./support/cli.js";
import { disposeLlamaCpp } from "./support/llama-cpp.js";
import { compareLogits } from "./support/logit-metrics.js";
import { corpusPrompts, removeOnnxFixtures, syntheticModel } from "./support/onnx-fixtures.js";
import { dequantizedWeights, emptyCache, loadOnnxModel, onnxLogits, runStep, type OnnxModel } from "./support/onnx-runtime.js";
import { referenceLogits } from "./support/reference-forward.js";
import { SafetensorsFile } from "./support/safetensors.js";
import { writeHfFolder, writeSyntheticCheckpoint } from "./support/synthetic-checkpoint.js";

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

describe("int4 ONNX export of phi3 (Phi-3.5-mini config, fused projections as MatMulNBits)", () => {
  test("logits match the reference on the int4 weights (max abs <= 1e-4, float activations)", async () => {
    const phi = syntheticModel("phi3.5");
    const report = await convertToOnnx({ source: phi, output: join(dir, "phi35-int4"), bits: 4, accuracyLevel: 0 });
    expect(report.weights["model.layers.0.self_attn.qkv_proj.weight"]).toMatch(/MatMulNBits q4_0/);
    expect(report.weights["model.layers.0.mlp.gate_up_proj.weight"]).toMatch(/MatMulNBits q4_0/);
    const int4 = await loadOnnxModel(join(report.output, report.modelFile));
    const dequantized = dequantizedCheckpoint(phi, join(report.output, report.modelFile));
    for (const tokens of prompts) {
      const cmp = compareLogits(referenceLogits(dequantized, tokens), await onnxLogits(int4, tokens));
      console.log(`[onnx] phi3.5 int4 vs the reference on its int4 weights, ${tokens.length} tokens: max abs ${cmp.maxAbsDiff.toExponential(2)}`);
      expect(cmp.maxAbsDiff).toBeLessThanOrEqual(TOLERANCE);
      expect(cmp.top1Agreement).toBe(1);
    }
  });
});

/** The checkpoint with every weight the ONNX model quantizes replaced by the unpacker's float32 values. */
function dequantizedCheckpoint(source: string, modelPath: string): string {
  const weights = dequantizedWeights(modelPath);
  const file = new SafetensorsFile(join(source, "model.safetensors"));
  const tensors = file.names().map((name) => {
    const quantized = weights.get(`${name}.qweight`);
    if (quantized) return { name, shape: [quantized.n, quantized.k], data: quantized.values, dtype: "F32" as const };
    const { shape, data } = file.read(name);
    return { name, shape, data: Float32Array.from(data), dtype: "F32" as const };
  });
  expect(tensors.filter((t) => weights.has(`${t.name}.qweight`))).toHaveLength(weights.size);
  const config = JSON.parse(readFileSync(join(source, "config.json"), "utf8"));
  const out = join(dir, "phi35-int4-dequantized");
  writeHfFolder(out, { ...config, torch_dtype: "float32" }, tensors);
  return out;
}
