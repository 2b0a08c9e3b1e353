import { rmSync, openSync, readFileSync, readSync, closeSync } from "node:fs";
import { join } from "node:path";
import { gguf, GGMLQuantizationType } from "@huggingface/gguf";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { convertToGguf } from "../src/convert/gguf.js";
import { convertToOnnx, type OnnxBits } from "../src/convert/onnx.js";
import { resolveScheme } from "../src/quant/schemes.js";
import { CORPUS, TINY_LLAMA, TINY_LLAMA_TERNARY, tempDir } from "./support/cli.js";
import { requireGgml } from "./support/ggml-oracle.js";
import { disposeLlamaCpp, llamaCppTokenize } from "./support/llama-cpp.js";
import { compareLogits } from "./support/logit-metrics.js";
import { corpusPrompts, removeOnnxFixtures } from "./support/onnx-fixtures.js";
import { dequantizedWeights, loadOnnxModel, onnxLogits, onnxPerplexity, quantizedWeights, runtimeDequantized } from "./support/onnx-runtime.js";
import { llamaCppPerplexity } from "./support/perplexity.js";
import { SafetensorsFile } from "./support/safetensors.js";

// The GGUF side is decoded by ggml itself (libggml-base's to_float), the ONNX side by the unpacker
// of test/support/matmul-nbits.ts, which is checked against onnxruntime below: no src/ decoder.
const ggml = requireGgml();
const out = tempDir("edgequant-onnx-quantized-");
/** The perplexity slice: windows of the tiny Llama's 256-token context, BOS first, second half scored. */
const SLICE = { window: 256, bos: 1, maxWindows: 16 };

async function exportOnnx(source: string, bits: OnnxBits, name = `${bits}`) {
  return convertToOnnx({ source, output: join(out, name), bits });
}

afterAll(async () => {
  await disposeLlamaCpp();
  removeOnnxFixtures();
  rmSync(out, { recursive: true, force: true });
});

const HF_OF_GGUF: Record<string, string> = {
  attn_q: "self_attn.q_proj", attn_k: "self_attn.k_proj", attn_v: "self_attn.v_proj", attn_output: "self_attn.o_proj",
  ffn_gate: "mlp.gate_proj", ffn_up: "mlp.up_proj", ffn_down: "mlp.down_proj",
};

describe("int4 export of the tiny Llama", () => {
  let q4Gguf: string;
  let onnxQ4: string;
  beforeAll(async () => {
    q4Gguf = join(out, "tiny-llama-q4_0.gguf");
    await convertToGguf({ source: TINY_LLAMA, output: q4Gguf, scheme: resolveScheme({ scheme: "q4_0" }) });
    const report = await exportOnnx(TINY_LLAMA, 4);
    onnxQ4 = join(report.output, report.modelFile);
  });

  test("the test unpacker reads every MatMulNBits / GatherBlockQuantized weight exactly as onnxruntime does", async () => {
    await expectUnpackerAgreesWithRuntime(onnxQ4, 6 * 7 + 2);
  });

  test("every weight both quantize holds exactly the GGUF Q4_0's dequantized values (ggml's to_float)", async () => {
    const ours = dequantizedWeights(onnxQ4);
    const file = await gguf(q4Gguf, { allowLocalFile: true });
    const config = JSON.parse(readFileSync(join(TINY_LLAMA, "config.json"), "utf8"));
    const headDim = config.hidden_size / config.num_attention_heads;
    const fd = openSync(q4Gguf, "r");
    let compared = 0;
    let values = 0;
    try {
      for (const info of file.tensorInfos) {
        if (info.dtype !== GGMLQuantizationType.Q4_0) continue;
        const match = /^blk\.(\d+)\.(\w+)\.weight$/.exec(info.name);
        const hf = info.name === "token_embd.weight" ? "model.embed_tokens.weight" : match && `model.layers.${match[1]}.${HF_OF_GGUF[match[2]!]}.weight`;
        if (!hf) continue;
        const [k, n] = info.shape.map(Number) as [number, number];
        const bytes = Buffer.alloc((n * k * 18) / 32);
        readSync(fd, bytes, 0, bytes.length, Number(file.tensorDataOffset + info.offset));
        expect(ggml.rowSize(GGMLQuantizationType.Q4_0, k)).toBe((k / 32) * 18);
        const theirs = ggml.dequantize(GGMLQuantizationType.Q4_0, bytes, n * k);
        const mine = ours.get(`${hf}.qweight`);
        expect(mine, info.name).toBeDefined();
        expect(mine!.bits).toBe(4);
        // llama.cpp's converter interleaves the two RoPE halves of each q/k head: GGUF row h*D + 2i + s is HF row h*D + s*D/2 + i.
        const permuted = match?.[2] === "attn_q" || match?.[2] === "attn_k";
        for (let row = 0; row < n; row++) {
          const head = Math.floor(row / headDim);
          const j = row % headDim;
          const hfRow = permuted ? head * headDim + (j % 2) * (headDim / 2) + Math.floor(j / 2) : row;
          const a = theirs.subarray(row * k, (row + 1) * k);
          const b = mine!.values.subarray(hfRow * k, (hfRow + 1) * k);
          for (let i = 0; i < k; i++) if (!Object.is(a[i], b[i])) throw new Error(`${info.name} row ${row} col ${i}: GGUF ${a[i]} vs ONNX ${b[i]}`);
        }
        compared++;
        values += n * k;
      }
    } finally {
      closeSync(fd);
    }
    console.log(`[onnx] int4 vs GGUF Q4_0: ${compared} tensors, ${values} weights, all identical after dequantization`);
    // 6 layers x 7 projections, plus token_embd (Q4_0 in llama.cpp's Q4_0 mixture; output.weight is Q6_K there).
    expect(compared).toBe(6 * 7 + 1);
  });

  test("perplexity on corpus-test.txt: int4 ONNX within 1% of llama.cpp on our Q4_0 GGUF (fp32 and int8 reported)", async () => {
    const corpus = readFileSync(CORPUS, "utf8");
    const tokens = await llamaCppTokenize(q4Gguf, corpus);
    const llamaQ4 = await llamaCppPerplexity(q4Gguf, corpus, SLICE);
    const results: Record<string, number> = {};
    for (const bits of [32, 8, 4] as const) {
      const report = bits === 4 ? { output: join(out, "4"), modelFile: "model.onnx" } : await exportOnnx(TINY_LLAMA, bits);
      const model = await loadOnnxModel(join(report.output, report.modelFile));
      const result = await onnxPerplexity(model, tokens, SLICE);
      expect(result.scoredTokens).toBe(llamaQ4.scoredTokens);
      results[bits] = result.perplexity;
    }
    // The default accuracy_level 4 quantizes activations to int8 (as llama.cpp does); 0 keeps them float32.
    const exact = await convertToOnnx({ source: TINY_LLAMA, output: join(out, "4-exact"), bits: 4, accuracyLevel: 0 });
    const int4Exact = (await onnxPerplexity(await loadOnnxModel(join(exact.output, exact.modelFile)), tokens, SLICE)).perplexity;
    const ratio = results[4]! / llamaQ4.perplexity;
    console.log(
      `[onnx] perplexity, ${llamaQ4.windows} windows of ${SLICE.window} (${llamaQ4.scoredTokens} scored tokens): ` +
        `ONNX fp32 ${results[32]!.toFixed(4)}, int8 ${results[8]!.toFixed(4)}, int4 ${results[4]!.toFixed(4)} (accuracy_level 0: ${int4Exact.toFixed(4)}); ` +
        `llama.cpp Q4_0 ${llamaQ4.perplexity.toFixed(4)} (int4 / Q4_0 = ${ratio.toFixed(4)})`,
    );
    expect(Math.abs(ratio - 1)).toBeLessThanOrEqual(0.01);
    expect(Math.abs(int4Exact / llamaQ4.perplexity - 1)).toBeLessThanOrEqual(0.01);
    expect(results[8]!).toBeLessThan(results[4]!);
  });
});

describe("ternary export (bits 1.58) of tiny-llama-ternary", () => {
  let onnxTernary: string;
  beforeAll(async () => {
    const report = await exportOnnx(TINY_LLAMA_TERNARY, 1.58, "ternary");
    onnxTernary = join(report.output, report.modelFile);
    expect(report.warnings).toEqual([]);
  });

  test("the test unpacker reads every 2-bit weight exactly as onnxruntime does", async () => {
    await expectUnpackerAgreesWithRuntime(onnxTernary, 6 * 7);
  });

  test("every linear weight is stored as 2-bit codes that reproduce the source exactly", () => {
    const source = new SafetensorsFile(join(TINY_LLAMA_TERNARY, "model.safetensors"));
    const ours = dequantizedWeights(onnxTernary);
    let compared = 0;
    for (const name of source.names()) {
      if (!/\.(q|k|v|o|gate|up|down)_proj\.weight$/.test(name)) continue;
      const mine = ours.get(`${name}.qweight`);
      expect(mine, name).toBeDefined();
      expect(mine!.bits).toBe(2);
      const expected = source.read(name).data;
      expect(mine!.values.length).toBe(expected.length);
      for (let i = 0; i < expected.length; i++) if (!Object.is(mine!.values[i], expected[i])) throw new Error(`${name}[${i}]: ${mine!.values[i]} vs ${expected[i]}`);
      compared++;
    }
    console.log(`[onnx] ternary: ${compared} linear weights stored as 2-bit MatMulNBits, all equal to the source`);
    expect(compared).toBe(6 * 7);
  });

  test("logits within 1e-4 of the fp32 export on 3 prompts", async () => {
    const fp32Report = await exportOnnx(TINY_LLAMA_TERNARY, 32, "ternary-fp32");
    const fp32 = await loadOnnxModel(join(fp32Report.output, fp32Report.modelFile));
    const ternary = await loadOnnxModel(onnxTernary);
    for (const tokens of await corpusPrompts()) {
      const cmp = compareLogits(await onnxLogits(fp32, tokens), await onnxLogits(ternary, tokens));
      console.log(`[onnx] ternary 1.58-bit vs fp32 export, ${tokens.length} tokens: max abs ${cmp.maxAbsDiff.toExponential(2)}`);
      expect(cmp.maxAbsDiff).toBeLessThanOrEqual(1e-4);
    }
  });
});

/** The unpacker's matrix of every quantized weight equals onnxruntime's own (zeros compared as numbers: the runtime's are sums). */
async function expectUnpackerAgreesWithRuntime(modelPath: string, expectedWeights: number): Promise<void> {
  const unpacked = dequantizedWeights(modelPath);
  let compared = 0;
  for (const [name, weight] of quantizedWeights(modelPath)) {
    const runtime = await runtimeDequantized(weight);
    const mine = unpacked.get(name)!.values;
    expect(runtime.length, name).toBe(mine.length);
    for (let i = 0; i < mine.length; i++) if (!(runtime[i] === mine[i])) throw new Error(`${name}[${i}]: onnxruntime ${runtime[i]} vs unpacker ${mine[i]}`);
    compared++;
  }
  console.log(`[onnx] ${modelPath.split("/").slice(-2).join("/")}: ${compared} quantized weights, unpacker = onnxruntime`);
  expect(compared).toBe(expectedWeights);
}
