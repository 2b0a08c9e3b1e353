// Gemma 3 -> GGUF, what llama.cpp's converter writes (conversion/gemma.py Gemma3Model on
// conversion/base.py TextModel): the gemma3.* keys, norm weights stored as 1 + w (added in float32
// for BF16 sources, in float16 for F16 ones, as its torch does), and the configurations
// llama.cpp's gemma3 graph (src/models/gemma3.cpp) would compute differently, refused.

import { closeSync, openSync, readSync, rmSync } from "node:fs";
import { join } from "node:path";
import { gguf } from "@huggingface/gguf";
import { afterAll, describe, expect, it } from "vitest";
import { convertToGguf } from "../src/convert/gguf.js";
import { UserError } from "../src/errors.js";
import { resolveScheme } from "../src/quant/schemes.js";
import { tempDir } from "./support/cli.js";
import { floatToHalfBits, halfBitsToFloat, SafetensorsFile } from "./support/safetensors.js";
import { syntheticConfig, syntheticTensors, writeHfFolder, type SyntheticSpec } from "./support/synthetic-checkpoint.js";

const dir = tempDir("edgequant-gemma3-gguf-");
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const spec: SyntheticSpec = { modelType: "gemma3", hidden: 64, layers: 7, heads: 2, kvHeads: 1, headDim: 32, intermediate: 128, vocab: 4096, seed: 3, dtype: "BF16" };

async function convert(name: string, config: Record<string, unknown>, dtype: SyntheticSpec["dtype"] = "BF16"): Promise<string> {
  const source = join(dir, name);
  writeHfFolder(source, config, syntheticTensors({ ...spec, dtype }));
  const output = join(dir, `${name}.gguf`);
  await convertToGguf({ source, output, scheme: resolveScheme({ scheme: "f32" }) });
  return output;
}

/** An F32 tensor's values, read from the file. */
async function f32Tensor(path: string, name: string): Promise<Float32Array> {
  const parsed = await gguf(path, { allowLocalFile: true });
  const info = parsed.tensorInfos.find((t) => t.name === name)!;
  const count = info.shape.reduce((a, b) => a * Number(b), 1);
  const bytes = Buffer.alloc(count * 4);
  const fd = openSync(path, "r");
  readSync(fd, bytes, 0, bytes.length, Number(parsed.tensorDataOffset + info.offset));
  closeSync(fd);
  return new Float32Array(bytes.buffer, bytes.byteOffset, count);
}

describe("gemma3 GGUF", () => {
  it("writes the converter's gemma3.* keys and none for the multipliers llama.cpp's graph hardcodes", async () => {
    const { metadata } = await gguf(await convert("keys", syntheticConfig(spec)), { allowLocalFile: true });
    const keys = Object.fromEntries(Object.entries(metadata).filter(([key]) => key.startsWith("gemma3.")));
    expect(keys).toEqual({
      "gemma3.vocab_size": 4096,
      "gemma3.context_length": 32768,
      "gemma3.embedding_length": 64,
      "gemma3.block_count": 7,
      "gemma3.feed_forward_length": 128,
      "gemma3.attention.head_count": 2,
      "gemma3.attention.head_count_kv": 1,
      "gemma3.attention.layer_norm_rms_epsilon": Math.fround(1e-6),
      "gemma3.attention.key_length": 32,
      "gemma3.attention.value_length": 32,
      "gemma3.rope.dimension_count": 32,
      "gemma3.rope.freq_base": 1000000,
      "gemma3.attention.sliding_window": 16,
      "gemma3.rope.freq_base_swa": 10000,
    });
    expect(metadata["general.architecture"]).toBe("gemma3");
  });

  it.each(["BF16", "F16"] as const)("stores every norm weight as 1 + w, rounded as the converter's torch rounds it (%s source)", async (dtype) => {
    const path = await convert(`norms-${dtype}`, syntheticConfig({ ...spec, dtype }), dtype);
    const source = new SafetensorsFile(join(dir, `norms-${dtype}`, "model.safetensors"));
    const pairs: [string, string][] = [["model.norm.weight", "output_norm.weight"]];
    for (const [hf, ours] of [["input_layernorm", "attn_norm"], ["post_attention_layernorm", "post_attention_norm"], ["pre_feedforward_layernorm", "ffn_norm"], ["post_feedforward_layernorm", "post_ffw_norm"], ["self_attn.q_norm", "attn_q_norm"], ["self_attn.k_norm", "attn_k_norm"]]) {
      for (let l = 0; l < spec.layers; l++) pairs.push([`model.layers.${l}.${hf}.weight`, `blk.${l}.${ours}.weight`]);
    }
    for (const [hf, ours] of pairs) {
      const w = source.read(hf).data;
      const expected = Array.from(w, (v) => (dtype === "F16" ? halfBitsToFloat(floatToHalfBits(v + 1)) : Math.fround(v + 1)));
      expect(Array.from(await f32Tensor(path, ours)), ours).toEqual(expected);
    }
  });

  it("re-quantizing our BF16 GGUF keeps the stored 1 + w (the shift is the converter's, applied once)", async () => {
    const direct = await convert("requant", syntheticConfig(spec));
    const bf16 = join(dir, "requant-bf16.gguf");
    await convertToGguf({ source: join(dir, "requant"), output: bf16, scheme: resolveScheme({ scheme: "bf16" }) });
    const again = join(dir, "requant-again.gguf");
    await convertToGguf({ source: bf16, output: again, scheme: resolveScheme({ scheme: "f32" }) });
    for (const name of ["output_norm.weight", "blk.5.post_ffw_norm.weight", "blk.0.attn_q_norm.weight"]) {
      expect(Array.from(await f32Tensor(again, name)), name).toEqual(Array.from(await f32Tensor(direct, name)));
    }
  });

  it.each([
    ["query_pre_attn_scalar", { query_pre_attn_scalar: 64 }],
    ["layer_types", { layer_types: ["sliding_attention", "full_attention", "sliding_attention", "sliding_attention", "sliding_attention", "full_attention", "sliding_attention"] }],
    ["attn_logit_softcapping", { attn_logit_softcapping: 50 }],
    ["use_bidirectional_attention", { use_bidirectional_attention: true }],
  ])("refuses %s that llama.cpp's graph would not compute as transformers does", async (key, change) => {
    const attempt = convert(`refuse-${key}`, { ...syntheticConfig(spec), ...change });
    await expect(attempt).rejects.toThrow(UserError);
    await expect(attempt).rejects.toThrow(key);
  });
});
