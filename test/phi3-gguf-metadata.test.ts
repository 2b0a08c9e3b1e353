// The phi3 GGUF's hyperparameters and LongRoPE tensors against what llama.cpp's converter writes
// for the same config.json (conversion/phi.py, Phi3MiniModel.set_gguf_parameters and
// generate_extra_tensors), computed here from the config as that code does. Beyond the converter
// we write phi3.vocab_size and phi3.rope.scaling.type = "longrope" (llama.cpp's base converter writes
// the type for MiniCPM; for phi3 it changes nothing: no factor key, so no frequency scale).

import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { gguf } from "@huggingface/gguf";
import { afterAll, describe, expect, it } from "vitest";
import { convertToGguf } from "../src/convert/gguf.js";
import { resolveScheme } from "../src/quant/schemes.js";
import { tempDir } from "./support/cli.js";
import { writeSyntheticCheckpoint } from "./support/synthetic-checkpoint.js";

const dir = tempDir("edgequant-phi3-metadata-");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("phi3 GGUF metadata and LongRoPE tensors are conversion/phi.py's (Phi-4-mini-instruct's config)", () => {
  it("keys, rope dimensions, attention factor, factor tensors and fused shapes", async () => {
    const source = join(dir, "phi-four-mini");
    writeSyntheticCheckpoint(source, { modelType: "phi4-mini", hidden: 128, layers: 2, heads: 4, kvHeads: 2, headDim: 32, intermediate: 256, vocab: 4096, seed: 3, dtype: "BF16" });
    const config = JSON.parse(readFileSync(join(source, "config.json"), "utf8"));
    const output = join(dir, "phi4.gguf");
    await convertToGguf({ source, output, scheme: resolveScheme({ scheme: "f32" }) });
    const parsed = await gguf(output, { allowLocalFile: true });
    const meta = parsed.metadata as unknown as Record<string, unknown>;

    const nEmbd = config.hidden_size;
    const nHead = config.num_attention_heads;
    const ropeDims = Math.floor(Math.floor(config.partial_rotary_factor * nEmbd) / nHead);
    const scale = config.max_position_embeddings / config.original_max_position_embeddings;
    const attnFactor = scale > 1 ? Math.sqrt(1 + Math.log(scale) / Math.log(config.original_max_position_embeddings)) : 1;
    const expected: Record<string, unknown> = {
      "phi3.context_length": config.max_position_embeddings,
      "phi3.rope.scaling.original_context_length": config.original_max_position_embeddings,
      "phi3.embedding_length": nEmbd,
      "phi3.feed_forward_length": config.intermediate_size,
      "phi3.block_count": config.num_hidden_layers,
      "phi3.attention.head_count": nHead,
      "phi3.attention.head_count_kv": config.num_key_value_heads,
      "phi3.attention.layer_norm_rms_epsilon": Math.fround(config.rms_norm_eps),
      "phi3.rope.dimension_count": ropeDims,
      "phi3.rope.freq_base": config.rope_theta,
      "phi3.attention.sliding_window": config.sliding_window,
      "phi3.rope.scaling.attn_factor": Math.fround(attnFactor),
      "phi3.vocab_size": config.vocab_size,
      "phi3.rope.scaling.type": "longrope",
    };
    const phi3Keys = Object.fromEntries(Object.entries(meta).filter(([key]) => key.startsWith("phi3.")));
    expect(phi3Keys).toEqual(expected);

    const tensor = (name: string) => parsed.tensorInfos.find((t) => t.name === name);
    expect(tensor("output.weight")).toBeUndefined(); // tied: llama.cpp duplicates token_embd
    expect(tensor("blk.0.attn_qkv.weight")?.shape.map(Number)).toEqual([nEmbd, (nHead + 2 * config.num_key_value_heads) * (nEmbd / nHead)]);
    expect(tensor("blk.0.ffn_up.weight")?.shape.map(Number)).toEqual([nEmbd, 2 * config.intermediate_size]);
    expect(tensor("blk.0.ffn_gate.weight")).toBeUndefined();
    const file = readFileSync(output);
    for (const [name, list] of [["rope_factors_long.weight", config.rope_scaling.long_factor], ["rope_factors_short.weight", config.rope_scaling.short_factor]] as const) {
      const info = tensor(name)!;
      expect(info.shape.map(Number), name).toEqual([ropeDims / 2]);
      const start = Number(parsed.tensorDataOffset + info.offset);
      const values = new Float32Array(file.buffer.slice(file.byteOffset + start, file.byteOffset + start + 4 * list.length));
      expect(Array.from(values), name).toEqual(Array.from(Float32Array.from(list as number[])));
    }
  });
});
