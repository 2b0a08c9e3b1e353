// Regression: a tied-embedding model exports to quantized ONNX. The token embedding is both the
// GatherBlockQuantized table and the lm_head MatMulNBits weight; before the fix the export
// failed with "internal: ONNX name 'model.embed_tokens.weight.qweight' used twice".
// Bounds are the ONNX suite's own: int8 within 0.5 of the float logits (onnx-export.test.ts,
// "fp16 and int8 exports stay close to fp32"), int4 perplexity within 1% (onnx-quantized.test.ts),
// taken against the reference on the int4 weights (below).

import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { convertToOnnx, type OnnxBits } from "../src/convert/onnx.js";
import { tempDir } from "./support/cli.js";
import { disposeLlamaCpp } from "./support/llama-cpp.js";
import { compareLogits } from "./support/logit-metrics.js";
import { corpusPrompts, removeOnnxFixtures, syntheticModel } from "./support/onnx-fixtures.js";
import { dequantizedWeights, loadOnnxModel, onnxLogits } from "./support/onnx-runtime.js";
import { referenceLogits } from "./support/reference-forward.js";
import { SafetensorsFile } from "./support/safetensors.js";
import { writeHfFolder } from "./support/synthetic-checkpoint.js";

const out = tempDir("edgequant-onnx-tied-");

afterAll(async () => {
  await disposeLlamaCpp();
  removeOnnxFixtures();
  rmSync(out, { recursive: true, force: true });
});

async function exportTied(bits: OnnxBits, accuracyLevel?: 0) {
  const source = syntheticModel("llama-tied");
  const config = JSON.parse(readFileSync(join(source, "config.json"), "utf8"));
  expect(config.tie_word_embeddings).toBe(true);
  const report = await convertToOnnx({ source, output: join(out, `tied-${bits}-${accuracyLevel ?? "default"}`), bits, ...(accuracyLevel === undefined ? {} : { accuracyLevel }) });
  return { source, report, model: await loadOnnxModel(join(report.output, report.modelFile)) };
}

describe("tied-embedding llama exported to quantized ONNX", () => {
  test("int8: exports, and onnxruntime's logits are within 0.5 of the reference forward pass on 3 prompts", async () => {
    const { source, report, model } = await exportTied(8);
    expect(report.weights["model.embed_tokens.weight"]).toMatch(/GatherBlockQuantized q8_0/);
    expect(report.weights["lm_head.weight"]).toMatch(/MatMulNBits q8_0/);
    for (const tokens of await corpusPrompts()) {
      const cmp = compareLogits(referenceLogits(source, tokens), await onnxLogits(model, tokens));
      console.log(`[onnx-tied] int8, ${tokens.length} tokens: max |onnx - reference| ${cmp.maxAbsDiff.toExponential(2)} (logit rms ${cmp.rmsA.toFixed(2)}), top-1 ${(100 * cmp.top1Agreement).toFixed(1)}%`);
      expect(cmp.maxAbsDiff).toBeLessThan(0.5);
    }
  });

  // int4 weights lose too much of a random model for a float bound (mean KL 0.13 against the float
  // reference), so the oracle is the reference forward pass on the int4 weights themselves, decoded
  // by test/support's own unpacker: with float32 activations (accuracy_level 0) the logits must match
  // it as closely as the fp32 export matches the float model; with the default int8 activations
  // (accuracy_level 4, llama.cpp's Q8_0 math), the perplexity of the reference's own next-token
  // distribution, exp(cross-entropy) over exp(entropy) = exp(mean KL), within the suite's 1%.
  test("int4: exports; logits match the reference on its dequantized weights (1e-4, float activations; 1% perplexity, int8)", async () => {
    const exact = await exportTied(4, 0);
    expect(exact.report.weights["model.embed_tokens.weight"]).toMatch(/GatherBlockQuantized q4_0/);
    const dequantized = dequantizedCheckpoint(exact.source, join(exact.report.output, exact.report.modelFile));
    const fast = await exportTied(4);
    let kl = 0;
    let positions = 0;
    for (const tokens of await corpusPrompts()) {
      const reference = referenceLogits(dequantized, tokens);
      const float = compareLogits(reference, await onnxLogits(exact.model, tokens));
      const int8 = compareLogits(reference, await onnxLogits(fast.model, tokens));
      console.log(
        `[onnx-tied] int4, ${tokens.length} tokens, vs the reference on the int4 weights: accuracy_level 0 max abs ${float.maxAbsDiff.toExponential(2)}, ` +
          `top-1 ${(100 * float.top1Agreement).toFixed(1)}%; accuracy_level 4 max abs ${int8.maxAbsDiff.toExponential(2)}, mean KL ${int8.meanKl.toExponential(2)}`,
      );
      expect(float.maxAbsDiff).toBeLessThanOrEqual(1e-4);
      expect(float.top1Agreement).toBe(1);
      kl += int8.meanKl * int8.positions;
      positions += int8.positions;
    }
    const ratio = Math.exp(kl / positions);
    console.log(`[onnx-tied] int4 (int8 activations): perplexity ratio to the reference ${ratio.toFixed(5)} over ${positions} positions`);
    expect(ratio - 1).toBeLessThanOrEqual(0.01);
  });
});

/**
 * The source checkpoint with every weight the ONNX model quantizes replaced by the unpacker's
 * float32 values; the embedding table and lm_head are quantized apart (4 and 8 bits), so the
 * checkpoint is untied, with both.
 */
function dequantizedCheckpoint(source: string, modelPath: string): string {
  const weights = dequantizedWeights(modelPath);
  const file = new SafetensorsFile(join(source, "model.safetensors"));
  const names = [...file.names(), "lm_head.weight"];
  const tensors = names.map((name) => {
    const quantized = weights.get(`${name}.qweight`);
    if (quantized) return { name, shape: [quantized.n, quantized.k], data: quantized.values, dtype: "F32" as const };
    const { shape, data } = file.read(name);
    return { name, shape, data: Float32Array.from(data), dtype: "F32" as const };
  });
  expect(tensors.filter((t) => weights.has(`${t.name}.qweight`))).toHaveLength(weights.size);
  const config = JSON.parse(readFileSync(join(source, "config.json"), "utf8"));
  const dir = join(out, `dequantized-${weights.size}`);
  writeHfFolder(dir, { ...config, tie_word_embeddings: false, torch_dtype: "float32" }, tensors);
  return dir;
}
