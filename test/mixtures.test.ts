import { spawnSync } from "node:child_process";
import { rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { gguf, GGMLQuantizationType } from "@huggingface/gguf";
import { afterAll, describe, expect, it } from "vitest";
import { convertToGguf } from "../src/convert/gguf.js";
import { predictGguf } from "../src/plan/predict-gguf.js";
import { openCheckpoint } from "../src/readers/checkpoint.js";
import type { Scheme } from "../src/quant/schemes.js";
import { GgmlType } from "../src/quant/ggml-types.js";
import { SCHEMES, resolveScheme } from "../src/quant/schemes.js";
import { TINY_LLAMA, TINY_LLAMA_TERNARY, tempDir } from "./support/cli.js";
import { compareGguf } from "./support/gguf-compare.js";
import { syntheticCheckpoint } from "./support/large-checkpoint.js";
import { llamaQuantize, requireLlamaQuantize } from "./support/llama-quantize.js";
import { readQuantizeTypes, writeQuantizeTypes, type RecordedModel } from "./support/quantize-types.js";
import { writeSyntheticCheckpoint, type SyntheticModelType, type SyntheticSpec } from "./support/synthetic-checkpoint.js";
import { TINY_LFM2, writeLfm2Checkpoint } from "./support/synthetic-lfm2.js";

// llama_model_quantize is the oracle of every test here: without it the suite fails, naming the library.
requireLlamaQuantize();

const dir = tempDir();
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const QUANTIZED = SCHEMES.filter((s) => ![GgmlType.F32, GgmlType.F16, GgmlType.BF16].includes(s.weightType));
/** Metadata keys allowed to differ from llama-quantize's output: none. */
const ALLOWED_METADATA_DIFFERENCES: string[] = [];
const THREADS = 2;

/**
 * llama_model_quantize's type for every tensor, per model and scheme, recorded for the fast tier
 * (mixture-rules.test.ts checks src's mixture rules against it without llama.cpp). Each run checks
 * the record still equals what llama_model_quantize does; EDGEQUANT_UPDATE_LLAMA_QUANTIZE_TYPES=1
 * rewrites the models this run saw (after a node-llama-cpp update, say).
 */
const UPDATE_TYPES = process.env["EDGEQUANT_UPDATE_LLAMA_QUANTIZE_TYPES"] === "1";
const recorded: Record<string, RecordedModel> = UPDATE_TYPES ? {} : readQuantizeTypes();
const observed: Record<string, RecordedModel> = {};
afterAll(() => {
  // A run of some models (vitest -t) updates theirs and keeps the others' records.
  if (UPDATE_TYPES) writeQuantizeTypes({ ...readQuantizeTypes(), ...observed });
});

/** A per-layer list's first entry (hybrid models' head_count_kv), what llama_model_quantize's n_gqa() reads. */
function layerZero(value: unknown): number {
  return Number(Array.isArray(value) ? value[0] : value);
}

/** What llama_model_quantize wrote: tensor names, shapes and types. */
async function typesOf(path: string): Promise<{ tensors: [string, number[]][]; types: string[]; metadata: Record<string, unknown> }> {
  const parsed = await gguf(path, { allowLocalFile: true });
  return {
    tensors: parsed.tensorInfos.map((t) => [t.name, t.shape.map(Number).reverse()]),
    types: parsed.tensorInfos.map((t) => GGMLQuantizationType[t.dtype]),
    metadata: parsed.metadata as unknown as Record<string, unknown>,
  };
}

/** Issue 18: `plan` sizes each file before it exists; the written file (by stat) must be that size. */
async function expectPlannedSize(source: string, scheme: Scheme, written: string): Promise<void> {
  const checkpoint = await openCheckpoint(source);
  try {
    const { artifact: planned } = await predictGguf(checkpoint, scheme, written);
    expect(statSync(written).size, `${scheme.name}: the size plan predicted`).toBe(planned.files[0]!.bytes);
  } finally {
    await checkpoint.close();
  }
}

/**
 * edgequant straight from safetensors vs llama.cpp's llama_model_quantize applied to our GGUF of
 * the same model in the source's own precision (BF16: both quantize the very same values).
 */
function describeModel(label: string, source: () => string, schemes = QUANTIZED) {
  describe(`${label}: every scheme equals llama_model_quantize tensor for tensor (type and bytes)`, () => {
    let bf16 = "";
    it("writes the BF16 GGUF llama.cpp quantizes from", async () => {
      bf16 = join(dir, `${label}-bf16.gguf`);
      await convertToGguf({ source: source(), output: bf16, scheme: resolveScheme({ scheme: "bf16" }) });
      await expectPlannedSize(source(), resolveScheme("bf16"), bf16);
    });
    for (const scheme of schemes) {
      it(scheme.name, async () => {
        const ours = join(dir, `${label}-${scheme.name}-ours.gguf`);
        const theirs = join(dir, `${label}-${scheme.name}-llama.gguf`);
        // llama-quantize ternarises anything it is asked to; so must we, to compare bytes.
        await convertToGguf({ source: source(), output: ours, scheme, threads: THREADS, allowLossyTernary: true });
        await expectPlannedSize(source(), scheme, ours);
        llamaQuantize(bf16, theirs, scheme.fileType, THREADS);
        const written = await typesOf(theirs);
        const arch = String(written.metadata["general.architecture"]);
        const model = (observed[label] ??= {
          layers: Number(written.metadata[`${arch}.block_count`]),
          heads: Number(written.metadata[`${arch}.attention.head_count`]),
          kvHeads: layerZero(written.metadata[`${arch}.attention.head_count_kv`]),
          tensors: written.tensors,
          schemes: {},
        });
        expect(written.tensors).toEqual(model.tensors);
        model.schemes[scheme.name] = written.types;
        const comparison = await compareGguf(ours, theirs);
        // Beyond the promise (same tensors): the key order matches llama-quantize's too, so whole files are equal.
        const wholeFile = spawnSync("cmp", ["-s", ours, theirs]).status === 0;
        rmSync(ours);
        rmSync(theirs);
        console.log(`${label} ${scheme.name}: ${comparison.tensors} tensors, ${comparison.mismatches.length} differ; whole file ${wholeFile ? "identical" : "differs"}`);
        expect(comparison.mismatches).toEqual([]);
        expect(comparison.sameOrder).toBe(true);
        expect(comparison.metadataDifferences).toEqual(ALLOWED_METADATA_DIFFERENCES);
        expect(wholeFile).toBe(true);
      }, 600_000);
    }
    it("test/fixtures/llama-quantize-types.json records exactly these types", () => {
      expect(Object.keys(observed[label]?.schemes ?? {})).toEqual(schemes.map((s) => s.name));
      if (!UPDATE_TYPES) expect(observed[label], "stale: rerun with EDGEQUANT_UPDATE_LLAMA_QUANTIZE_TYPES=1").toEqual(recorded[label]);
    });
  });
}

describeModel("tiny-llama (trained, 6 layers)", () => TINY_LLAMA);
// The 1.58-bit headline: genuinely ternary weights through TQ1_0/TQ2_0.
describeModel("tiny-llama-ternary", () => TINY_LLAMA_TERNARY, QUANTIZED.filter((s) => s.name === "tq1_0" || s.name === "tq2_0"));
// TinyLlama-1.1B's shapes: 22 layers exercise llama.cpp's use_more_bits layer choices; rows of
// 5632 (not a multiple of 256) in ffn_down exercise the block-size fallbacks.
describeModel("synthetic TinyLlama-1.1B shapes", () => syntheticCheckpoint("tinyllama1b"));

/** A small random checkpoint of an architecture with no trained fixture, written once. */
function synthetic(modelType: SyntheticModelType, changes: Partial<SyntheticSpec> = {}): () => string {
  let folder: string | undefined;
  return () => {
    if (folder) return folder;
    // No "phi3" in the name (general.name): llama.cpp would look up Phi-3 special tokens the tiny vocabulary lacks.
    folder = join(dir, `synthetic-${modelType.replace("phi3", "phi-three")}`);
    writeSyntheticCheckpoint(folder, { modelType, hidden: 256, layers: 4, heads: 4, kvHeads: 2, headDim: 64, intermediate: 512, vocab: 4096, seed: 21, dtype: "BF16", tieEmbeddings: true, ...changes });
    return folder;
  };
}

describeModel("synthetic granite (granite-3.3-2b-instruct's config)", synthetic("granite"));
describeModel("synthetic smollm3 (SmolLM3-3B's config)", synthetic("smollm3"));

// LFM2: layer 0 is a convolution block, so llama.cpp's n_gqa() is 0 (8 heads over 2 KV heads would give 4
// and flip q2_k's attn_v); conv kernels stay F32; in_proj/out_proj quantize as plain weights.
let lfm2Folder: string | undefined;
describeModel("synthetic lfm2 (LFM2-350M's config)", () => {
  if (lfm2Folder) return lfm2Folder;
  lfm2Folder = join(dir, "synthetic-lfm2");
  writeLfm2Checkpoint(lfm2Folder, { ...TINY_LFM2, hidden: 256, heads: 8, kvHeads: 2, blockFfDim: 1000, blockMultipleOf: 256, seed: 23 });
  return lfm2Folder;
});
// Fused attn_qkv takes attn_v's rules and counter in llama.cpp (category_is_attn_v); ffn_up is double height.
describeModel("synthetic phi3 (Phi-3.5-mini-instruct's config)", synthetic("phi3.5", { kvHeads: 4, tieEmbeddings: false }));
describeModel("synthetic phi3 (Phi-4-mini-instruct's config, tied)", synthetic("phi4-mini"));
// BitCPM4: MiniCPM with LongRoPE factor tensors and fake-quantized ternary weights, through TQ1_0/TQ2_0.
describeModel("synthetic bitcpm4 (ternary MiniCPM4, LongRoPE)", synthetic("bitcpm4", { tieEmbeddings: false }), QUANTIZED.filter((s) => s.name === "tq1_0" || s.name === "tq2_0"));
describeModel("synthetic gemma3 (gemma-3-270m's config)", synthetic("gemma3"));
