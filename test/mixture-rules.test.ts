// llama.cpp's mixture rules without llama.cpp: src/quant/mixtures.ts picks, for every tensor and
// scheme, the type llama_model_quantize picked, as recorded in test/fixtures/llama-quantize-types.json
// by mixtures.test.ts (which checks the record against the shipped libllama on every run).

import { GGMLQuantizationType } from "@huggingface/gguf";
import { describe, expect, it } from "vitest";
import { llamaLoaderOrder, mixtureTypes, type MixtureTensor } from "../src/quant/mixtures.js";
import { SCHEMES } from "../src/quant/schemes.js";
import { readQuantizeTypes } from "./support/quantize-types.js";

const models = readQuantizeTypes();

it("the record holds the models mixtures.test.ts quantizes", () => {
  expect(Object.keys(models)).toEqual([
    "tiny-llama (trained, 6 layers)", "tiny-llama-ternary", "synthetic TinyLlama-1.1B shapes", "synthetic granite (granite-3.3-2b-instruct's config)",
    "synthetic smollm3 (SmolLM3-3B's config)", "synthetic lfm2 (LFM2-350M's config)",
    "synthetic phi3 (Phi-3.5-mini-instruct's config)", "synthetic phi3 (Phi-4-mini-instruct's config, tied)",
    "synthetic bitcpm4 (ternary MiniCPM4, LongRoPE)", "synthetic gemma3 (gemma-3-270m's config)",
  ]);
});

describe.each(Object.entries(models))("%s: every tensor gets llama_model_quantize's type", (_label, model) => {
  const tensors: MixtureTensor[] = model.tensors.map(([name, shape]) => ({ name, shape })).sort((a, b) => llamaLoaderOrder(a.name, b.name));
  const index = new Map(model.tensors.map(([name], i) => [name, i]));

  it("the record covers the model's blocks and at least two schemes", () => {
    // Every block has an FFN (hybrid models' recurrent blocks have no attn_q).
    expect(model.tensors.filter(([name]) => name.endsWith(".ffn_down.weight"))).toHaveLength(model.layers);
    expect(Object.keys(model.schemes).length).toBeGreaterThanOrEqual(2);
  });

  it.each(Object.keys(model.schemes))("%s", (name) => {
    const scheme = SCHEMES.find((s) => s.name === name);
    expect(scheme, name).toBeDefined();
    const theirs = model.schemes[name]!;
    // a tensor llama.cpp leaves alone keeps the recorded type (the source's F32 norms)
    const kept = (t: MixtureTensor) => GGMLQuantizationType[theirs[index.get(t.name)!] as keyof typeof GGMLQuantizationType] as number;
    const ours = mixtureTypes(tensors, scheme!, { layers: model.layers, heads: model.heads, kvHeads: model.kvHeads, is70B: false }, kept);
    const differ = tensors
      .map((t, i) => [t.name, GGMLQuantizationType[ours[i]!], theirs[index.get(t.name)!]] as const)
      .filter(([, a, b]) => a !== b)
      .map(([tensor, a, b]) => `${tensor}: ours ${a}, llama_model_quantize ${b}`);
    expect(differ).toEqual([]);
  });
});
