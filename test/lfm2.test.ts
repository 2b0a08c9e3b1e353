// LFM2 (Lfm2ForCausalLM) to GGUF: llama.cpp runs our F32 GGUF of a tiny random LFM2 whose
// config.json is LFM2-350M's (short-convolution and attention blocks), against the independent
// float64 reference of transformers' modeling_lfm2.py (test/support/reference-lfm2.ts).
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { gguf } from "@huggingface/gguf";
import { afterAll, describe, expect, it } from "vitest";
import { convertToGguf } from "../src/convert/gguf.js";
import { convertToOnnx } from "../src/convert/onnx.js";
import { UserError } from "../src/errors.js";
import { resolveScheme } from "../src/quant/schemes.js";
import { CORPUS, tempDir } from "./support/cli.js";
import { disposeLlamaCpp, lastLlamaCppRun, llamaCppLogits, llamaCppTokenize } from "./support/llama-cpp.js";
import { compareLogits } from "./support/logit-metrics.js";
import { referenceLfm2Logits } from "./support/reference-lfm2.js";
import { writeHfFolder } from "./support/synthetic-checkpoint.js";
import { TINY_LFM2, lfm2Config, lfm2FeedForwardWidth, lfm2Tensors, writeLfm2Checkpoint } from "./support/synthetic-lfm2.js";

const dir = tempDir();
afterAll(async () => {
  await disposeLlamaCpp();
  rmSync(dir, { recursive: true, force: true });
});

const corpus = readFileSync(CORPUS, "utf8");
const PROMPTS = [corpus.slice(0, 200), corpus.slice(20_000, 20_300), corpus.slice(150_000, 150_250)];

describe("llama.cpp computes the reference logits from our F32 GGUF of a tiny LFM2 (LFM2-350M's config)", () => {
  const source = join(dir, "lfm2");
  const output = join(dir, "lfm2-f32.gguf");

  it("writes the GGUF llama.cpp's converter writes: per-layer KV heads, l_cache, the adjusted MLP width, 2-D F32 conv kernels", async () => {
    writeLfm2Checkpoint(source);
    await convertToGguf({ source, output, scheme: resolveScheme({ scheme: "f32" }) });
    const parsed = await gguf(output, { allowLocalFile: true });
    const meta = parsed.metadata as unknown as Record<string, unknown>;
    expect(meta["lfm2.attention.head_count_kv"]).toEqual(TINY_LFM2.layerTypes.map((t) => (t === "conv" ? 0 : TINY_LFM2.kvHeads)));
    expect(meta["lfm2.shortconv.l_cache"]).toBe(TINY_LFM2.convLCache);
    expect(meta["lfm2.feed_forward_length"]).toBe(lfm2FeedForwardWidth(TINY_LFM2));
    expect(meta["lfm2.feed_forward_length"]).toBe(384);
    const conv = parsed.tensorInfos.find((t) => t.name === "blk.0.shortconv.conv.weight");
    // ggml order {l_cache, n_embd}, as llama.cpp's create_tensor asks.
    expect(conv?.shape.map(Number)).toEqual([TINY_LFM2.convLCache, TINY_LFM2.hidden]);
    const names = parsed.tensorInfos.map((t) => t.name);
    expect(names).toContain("token_embd_norm.weight");
    expect(names).not.toContain("output.weight");
    expect(names.filter((n) => n.startsWith("blk.0.attn_q"))).toEqual([]);
    expect(names.filter((n) => n.startsWith("blk.2.shortconv"))).toEqual([]);
  });

  it("same top-1 at every position of 3 prompts, max |diff| <= 1e-4 with an F32 KV cache", async () => {
    let maxAbsDiff = 0;
    let mismatches = 0;
    let positions = 0;
    for (const prompt of PROMPTS) {
      const tokens = (await llamaCppTokenize(output, prompt)).slice(0, 64);
      const result = compareLogits(await llamaCppLogits(output, tokens), referenceLfm2Logits(source, tokens));
      maxAbsDiff = Math.max(maxAbsDiff, result.maxAbsDiff);
      mismatches += result.top1Mismatches.length;
      positions += result.positions;
    }
    const run = lastLlamaCppRun();
    console.log(`lfm2 f32: ${positions} positions over ${PROMPTS.length} prompts, max |diff| ${maxAbsDiff.toExponential(2)}, top-1 mismatches ${mismatches}, KV cache K=${run?.kvCacheKeyType} V=${run?.kvCacheValueType}`);
    expect(run?.kvCacheKeyType).toBe("f32");
    expect(run?.kvCacheValueType).toBe("f32");
    expect(positions).toBeGreaterThanOrEqual(3 * 40);
    expect(mismatches).toBe(0);
    expect(maxAbsDiff).toBeLessThanOrEqual(1e-4);
  }, 300_000);
});

describe("ONNX output refuses LFM2, naming why", () => {
  it("--to onnx is a UserError that says onnxruntime-genai's builder has no LFM2", async () => {
    const source = join(dir, "lfm2-onnx");
    writeLfm2Checkpoint(source);
    const attempt = convertToOnnx({ source, output: join(dir, "lfm2-onnx-out"), bits: 32 });
    await expect(attempt).rejects.toBeInstanceOf(UserError);
    await expect(attempt).rejects.toThrow(/Lfm2ForCausalLM \(lfm2\) converts to gguf, mlx only: onnxruntime-genai's model builder has no LFM2/);
  });
});

describe("LFM2 input problems are UserErrors naming the file, key or tensor", () => {
  it("a conv block without its in_proj is refused naming it; attention tensors are not asked of conv blocks", async () => {
    const source = join(dir, "lfm2-missing");
    writeHfFolder(source, lfm2Config(TINY_LFM2), lfm2Tensors(TINY_LFM2).filter((t) => t.name !== "model.layers.3.conv.in_proj.weight"));
    const attempt = convertToGguf({ source, output: join(dir, "missing.gguf"), scheme: resolveScheme({ scheme: "f32" }) });
    await expect(attempt).rejects.toBeInstanceOf(UserError);
    await expect(attempt).rejects.toThrow(/checkpoint is missing tensors: model\.layers\.3\.conv\.in_proj\.weight$/);
  });

  it("an attention tensor in a convolution block is refused naming it", async () => {
    const source = join(dir, "lfm2-misplaced");
    const tensors = lfm2Tensors(TINY_LFM2);
    const q = tensors.find((t) => t.name === "model.layers.2.self_attn.q_proj.weight")!;
    writeHfFolder(source, lfm2Config(TINY_LFM2), [...tensors, { ...q, name: "model.layers.0.self_attn.q_proj.weight" }]);
    const attempt = convertToGguf({ source, output: join(dir, "misplaced.gguf"), scheme: resolveScheme({ scheme: "f32" }) });
    await expect(attempt).rejects.toThrow(/tensors the lfm2 architecture does not define \(in their block\): model\.layers\.0\.self_attn\.q_proj\.weight$/);
  });

  it("conv_bias: true (which llama.cpp's graph cannot run) and unknown layer types are refused", async () => {
    const biased = join(dir, "lfm2-bias");
    writeHfFolder(biased, { ...lfm2Config(TINY_LFM2), conv_bias: true }, lfm2Tensors(TINY_LFM2));
    await expect(convertToGguf({ source: biased, output: join(dir, "bias.gguf"), scheme: resolveScheme({ scheme: "f32" }) })).rejects.toThrow(/conv_bias is true/);
    const odd = join(dir, "lfm2-odd");
    writeHfFolder(odd, { ...lfm2Config(TINY_LFM2), layer_types: ["conv", "conv", "mamba", "conv", "conv", "full_attention"] }, lfm2Tensors(TINY_LFM2));
    await expect(convertToGguf({ source: odd, output: join(dir, "odd.gguf"), scheme: resolveScheme({ scheme: "f32" }) })).rejects.toThrow(/layer_types\[2\] is 'mamba'/);
  });

  it("re-quantizing our F32 GGUF reads the per-layer head_count_kv and types tensors as converting the checkpoint does", async () => {
    const source = join(dir, "lfm2");
    const direct = join(dir, "lfm2-q4_k_m.gguf");
    const requantized = join(dir, "lfm2-f32-q4_k_m.gguf");
    await convertToGguf({ source, output: direct, scheme: resolveScheme({ scheme: "q4_k_m" }) });
    await convertToGguf({ source: join(dir, "lfm2-f32.gguf"), output: requantized, scheme: resolveScheme({ scheme: "q4_k_m" }) });
    const types = async (path: string) => (await gguf(path, { allowLocalFile: true })).tensorInfos.map((t) => [t.name, Number(t.dtype)]);
    expect(await types(requantized)).toEqual(await types(direct));
  });
});
