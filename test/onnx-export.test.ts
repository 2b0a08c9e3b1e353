import { rmSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { convertToOnnx, type OnnxBits, type OnnxReport } from "../src/convert/onnx.js";
import { UserError } from "../src/errors.js";
import onnxProto from "onnx-proto";
import { TINY_LLAMA, copyFixture, tempDir } from "./support/cli.js";
import { disposeLlamaCpp } from "./support/llama-cpp.js";
import { compareLogits } from "./support/logit-metrics.js";
import { corpusPrompts, syntheticModel, SYNTHETIC_MODELS, removeOnnxFixtures } from "./support/onnx-fixtures.js";
import { loadOnnxModel, onnxLogits, onnxLogitsStepwise, type OnnxModel } from "./support/onnx-runtime.js";
import { referenceLogits } from "./support/reference-forward.js";
import { syntheticTensors, writeHfFolder } from "./support/synthetic-checkpoint.js";
import { gemma3VisionTensors, gemma3WrapperConfig, gemma3WrapperTensorName } from "./support/synthetic-gemma3.js";

const TOLERANCE = 1e-4;
const out = tempDir("edgequant-onnx-export-");
let prompts: number[][];

beforeAll(async () => {
  prompts = await corpusPrompts();
});
afterAll(async () => {
  await disposeLlamaCpp();
  removeOnnxFixtures();
  rmSync(out, { recursive: true, force: true });
});

async function exportModel(source: string, name: string, bits: OnnxBits, extra: Partial<Parameters<typeof convertToOnnx>[0]> = {}): Promise<{ report: OnnxReport; model: OnnxModel }> {
  const report = await convertToOnnx({ source, output: join(out, name), bits, ...extra });
  return { report, model: await loadOnnxModel(join(report.output, report.modelFile)) };
}

const MODELS: [string, () => string][] = [["tiny-llama", () => TINY_LLAMA], ...SYNTHETIC_MODELS.map((name): [string, () => string] => [name, () => syntheticModel(name)])];

describe.each(MODELS)("fp32 ONNX export of %s", (name, source) => {
  let model: OnnxModel;
  beforeAll(async () => {
    model = (await exportModel(source(), `${name}-fp32`, 32)).model;
  });

  test(`onnxruntime logits match the reference forward pass (max abs <= ${TOLERANCE}) on 3 prompts`, async () => {
    for (const tokens of prompts) {
      const ours = await onnxLogits(model, tokens);
      const reference = referenceLogits(source(), tokens);
      const cmp = compareLogits(reference, ours);
      console.log(`[onnx] ${name} fp32, ${tokens.length} tokens: max |onnx - reference| = ${cmp.maxAbsDiff.toExponential(2)} (logit rms ${cmp.rmsA.toFixed(2)})`);
      expect(cmp.maxAbsDiff).toBeLessThanOrEqual(TOLERANCE);
      expect(cmp.top1Agreement).toBe(1);
    }
  });

  test(`token-by-token decoding with past_key_values equals the full pass (max abs <= ${TOLERANCE})`, async () => {
    for (const tokens of prompts) {
      const full = await onnxLogits(model, tokens);
      const stepwise = await onnxLogitsStepwise(model, tokens);
      const cmp = compareLogits(full, stepwise);
      console.log(`[onnx] ${name} fp32 KV cache, ${tokens.length} steps: max |stepwise - full| = ${cmp.maxAbsDiff.toExponential(2)}`);
      expect(cmp.maxAbsDiff).toBeLessThanOrEqual(TOLERANCE);
    }
    // A prompt, then the rest in one multi-token step (chunked prefill through the cache).
    const tokens = prompts[1]!;
    const { runStep, emptyCache } = await import("./support/onnx-runtime.js");
    const first = await runStep(model, tokens.slice(0, 10), emptyCache(model));
    const second = await runStep(model, tokens.slice(10), first.cache);
    expect(compareLogits(await onnxLogits(model, tokens), [...first.logits, ...second.logits]).maxAbsDiff).toBeLessThanOrEqual(TOLERANCE);
  });
});

describe("fp32 ONNX export of Gemma3ForConditionalGeneration's text tower (gemma-3-4b-it's config: linear RoPE x8 on global layers)", () => {
  test(`onnxruntime logits match the reference (max abs <= ${TOLERANCE}); genai_config names the text model type`, async () => {
    const spec = { modelType: "gemma3", hidden: 128, layers: 7, heads: 4, kvHeads: 2, headDim: 32, intermediate: 256, vocab: 4096, seed: 16, dtype: "BF16" } as const;
    const source = join(out, "gemma3-wrapper-hf");
    const tensors = syntheticTensors(spec).map((t) => ({ ...t, name: gemma3WrapperTensorName(t.name) }));
    gemma3VisionTensors((name, shape, data) => tensors.push({ name, shape, data, dtype: "BF16" }), (count, mean) => new Float32Array(count).fill(mean));
    writeHfFolder(source, gemma3WrapperConfig(spec), tensors);
    const { report, model } = await exportModel(source, "gemma3-wrapper-fp32", 32);
    for (const tokens of prompts) {
      const cmp = compareLogits(referenceLogits(source, tokens), await onnxLogits(model, tokens));
      console.log(`[onnx] gemma3 wrapper fp32, ${tokens.length} tokens: max |onnx - reference| = ${cmp.maxAbsDiff.toExponential(2)}`);
      expect(cmp.maxAbsDiff).toBeLessThanOrEqual(TOLERANCE);
      expect(cmp.top1Agreement).toBe(1);
    }
    const genai = JSON.parse(readFileSync(join(report.output, "genai_config.json"), "utf8")) as { model: { type: string } };
    expect(genai.model.type).toBe("gemma3_text");
  });
});

describe("package", () => {
  test("genai layout: model.onnx with external data, genai_config.json, config and tokenizer files", async () => {
    const { report } = await exportModel(TINY_LLAMA, "layout-genai-q4", 4);
    expect(report.files).toEqual(
      ["config.json", "genai_config.json", "generation_config.json", "model.onnx", "model.onnx_data", "special_tokens_map.json", "tokenizer.model", "tokenizer_config.json"].sort(),
    );
    expect(readdirSync(report.output).sort()).toEqual([...report.files].sort());
    const modelPath = join(report.output, "model.onnx");
    // Weights live in model.onnx_data; the protobuf holds the graph and small int64 constants only.
    expect(statSync(modelPath).size).toBeLessThan(200_000);
    expect(statSync(join(report.output, "model.onnx_data")).size).toBe(report.weightBytes);
    const proto = onnxProto.onnx.ModelProto.decode(readFileSync(modelPath));
    for (const tensor of proto.graph!.initializer ?? []) {
      if (tensor.dataLocation === 1) {
        const location = tensor.externalData?.find((e) => e.key === "location")?.value;
        expect(location).toBe("model.onnx_data");
      } else {
        expect(tensor.rawData?.length ?? 0).toBeLessThanOrEqual(64);
      }
    }
    const ops = new Set((proto.graph!.node ?? []).map((n) => `${n.domain || "ai.onnx"}:${n.opType}`));
    console.log(`[onnx] operators: ${[...ops].sort().join(", ")}`);
    expect(ops).toContain("com.microsoft:MatMulNBits");
    expect(ops).toContain("com.microsoft:GroupQueryAttention");
    const genai = JSON.parse(readFileSync(join(report.output, "genai_config.json"), "utf8"));
    expect(genai.model.decoder).toMatchObject({
      filename: "model.onnx",
      head_size: 32,
      hidden_size: 256,
      num_attention_heads: 8,
      num_key_value_heads: 4,
      num_hidden_layers: 6,
      inputs: { input_ids: "input_ids", attention_mask: "attention_mask", position_ids: "position_ids", past_key_names: "past_key_values.%d.key", past_value_names: "past_key_values.%d.value" },
      outputs: { logits: "logits", present_key_names: "present.%d.key", present_value_names: "present.%d.value" },
    });
    expect(genai.model).toMatchObject({ type: "llama", vocab_size: 4096, context_length: 256, bos_token_id: 1, eos_token_id: 2 });
    // Quantization choices are reported per tensor.
    expect(report.weights["model.layers.0.self_attn.q_proj.weight"]).toMatch(/q4_0 \(4-bit\), block 32/);
    expect(report.weights["lm_head.weight"]).toMatch(/q8_0 \(8-bit\)/);
    expect(report.weights["model.embed_tokens.weight"]).toMatch(/GatherBlockQuantized q4_0 \(4-bit\), block 32/);
  });

  test.each([
    [32, "model.onnx", "fp32"],
    [16, "model_fp16.onnx", "fp16"],
    [8, "model_quantized.onnx", "q8"],
    [4, "model_q4.onnx", "q4"],
    [1.58, "model_q2.onnx", "q2"],
  ] as const)("transformersjs layout, %s bits: onnx/%s with transformers.js_config", async (bits, file, dtype) => {
    const report = await convertToOnnx({ source: TINY_LLAMA, output: join(out, `tjs-${bits}`), bits, layout: "transformersjs" });
    expect(report.modelFile).toBe(`onnx/${file}`);
    expect(report.dataFile).toBe(`onnx/${file}_data`);
    expect(readdirSync(join(report.output, "onnx")).sort()).toEqual([file, `${file}_data`]);
    expect(existsSync(join(report.output, "genai_config.json"))).toBe(false);
    const config = JSON.parse(readFileSync(join(report.output, "config.json"), "utf8"));
    expect(config["transformers.js_config"]).toEqual({ dtype, use_external_data_format: { [file]: 1 }, kv_cache_dtype: { [dtype]: "float32" } });
    expect(config.model_type).toBe("llama");
  });

  test("fp16 and int8 exports stay close to fp32 (int8 = Q8_0 math)", async () => {
    const fp32 = (await exportModel(TINY_LLAMA, "close-fp32", 32)).model;
    const tokens = prompts[0]!;
    const base = await onnxLogits(fp32, tokens);
    for (const [bits, limit] of [[16, 0.01], [8, 0.5]] as const) {
      const model = (await exportModel(TINY_LLAMA, `close-${bits}`, bits)).model;
      const cmp = compareLogits(base, await onnxLogits(model, tokens));
      console.log(`[onnx] tiny-llama ${bits}-bit vs fp32: max abs ${cmp.maxAbsDiff.toExponential(2)}, mean KL ${cmp.meanKl.toExponential(2)}, top-1 ${(cmp.top1Agreement * 100).toFixed(0)}%`);
      expect(cmp.maxAbsDiff).toBeLessThan(limit);
    }
  });

  test("a failed conversion leaves nothing behind, and a non-ONNX folder is never overwritten", async () => {
    const parent = tempDir();
    const bad = copyFixture(TINY_LLAMA, parent);
    const config = JSON.parse(readFileSync(join(bad, "config.json"), "utf8"));
    writeFileSync(join(bad, "config.json"), JSON.stringify({ ...config, num_hidden_layers: 7 }));
    const target = join(parent, "out");
    await expect(convertToOnnx({ source: bad, output: target, bits: 4 })).rejects.toThrow(UserError);
    expect(readdirSync(parent).sort()).toEqual(["model"]);

    const precious = join(parent, "precious");
    mkdirSync(precious);
    writeFileSync(join(precious, "notes.txt"), "keep me");
    await expect(convertToOnnx({ source: TINY_LLAMA, output: precious, bits: 32 })).rejects.toThrow(/does not hold an ONNX model/);
    expect(readdirSync(precious)).toEqual(["notes.txt"]);

    // An earlier export is refused unless replacing it is asked for; then it is replaced as a whole.
    const first = await convertToOnnx({ source: TINY_LLAMA, output: target, bits: 32 });
    writeFileSync(join(target, "stale.txt"), "");
    await expect(convertToOnnx({ source: TINY_LLAMA, output: target, bits: 4 })).rejects.toThrow(/the output already exists/);
    const second = await convertToOnnx({ source: TINY_LLAMA, output: target, bits: 4, overwrite: true });
    expect(readdirSync(target).sort()).toEqual([...second.files].sort());
    expect(first.output).toBe(second.output);
    expect(readdirSync(parent).filter((f) => f.startsWith("."))).toEqual([]);
  });

  test("bad options are user errors", async () => {
    const output = join(out, "never");
    // The library speaks of its options, not of CLI flags.
    await expect(convertToOnnx({ source: TINY_LLAMA, output, bits: 3 as OnnxBits })).rejects.toThrow(/ONNX bits must be one of 32, 16, 8, 4, 1\.58; got 3/);
    await expect(convertToOnnx({ source: TINY_LLAMA, output, bits: 32, groupSize: 64 })).rejects.toThrow(/group size applies to 8-, 4- and 1\.58-bit/);
    await expect(convertToOnnx({ source: TINY_LLAMA, output, bits: 4, accuracyLevel: Number.NaN as 4 })).rejects.toThrow(/accuracy level must be one of 0, 1, 4; got NaN/);
    await expect(convertToOnnx({ source: TINY_LLAMA, output, bits: 4, groupSize: 48 as 64 })).rejects.toThrow(/power of two/);
    expect(existsSync(output)).toBe(false);
  });
});
