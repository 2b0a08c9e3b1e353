// Sanity tests of the test oracle (test/support/reference-forward.ts) and of the support code
// around it. Nothing here imports src/: these tests say whether the oracle can be trusted
// before it is used to judge the converter.

import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { disposeLlamaCpp, llamaCppTokenize } from "./support/llama-cpp.js";
import { argmax, compareLogits, logSoftmax, meanNll } from "./support/logit-metrics.js";
import { referenceLogits } from "./support/reference-forward.js";
import {
  bf16BitsToFloat,
  floatToBf16Bits,
  floatToHalfBits,
  halfBitsToFloat,
  SafetensorsFile,
  writeSafetensors,
  type FloatTensorToWrite,
} from "./support/safetensors.js";
import { syntheticConfig, syntheticTensors, writeHfFolder, writeSyntheticCheckpoint, type SyntheticSpec } from "./support/synthetic-checkpoint.js";
import { llamaSourcePath } from "./support/llama-source.js";
import { readTokenizerCases } from "./support/tokenizer-cases.js";

const TINY_LLAMA = fileURLToPath(new URL("./fixtures/tiny-llama", import.meta.url));
const BOS = 1;

// Token ids for two passages of test/fixtures/corpus-test.txt (held-out text), segmented with the
// fixture's tokenizer.model (SentencePiece BPE: "▁"-prefixed, highest-score merges, byte fallback).
// "Release History\n\n  2022-12-28 (3.40.1)\n\n  2022-11-16 (3.40.0)\n\n  2022-09-29 (3.39.4)"
const RELEASE_HISTORY = [
  2856, 538, 3345, 13, 13, 259, 4027, 4022, 4027, 4027, 4017, 4024, 4027, 4017, 4027, 4056, 305, 4045, 4016, 4049, 4022, 4016, 4024, 4038, 13, 13,
  259, 4027, 4022, 4027, 4027, 4017, 4024, 4024, 4017, 4024, 4052, 305, 4045, 4016, 4049, 4022, 4016, 4022, 4038, 13, 13, 259, 4027, 4022, 4027,
  4027, 4017, 4022, 4055, 4017, 4027, 4055, 305, 4045, 4016, 4045, 4055, 4016, 4049, 4038,
];
// "Fixed a bug in Lerc2 decoder. If a compressed Lerc2 blob has more than 1 band, and the blob has a
//  bit mask (not all pixels are valid), the decoder fails."
const LERC_PROSE = [
  1133, 266, 903, 293, 389, 263, 4010, 4027, 1736, 1967, 4016, 1087, 266, 496, 3924, 389, 263, 4010, 4027, 287, 1315, 745, 834, 1021, 4000, 4024,
  287, 387, 4035, 323, 281, 287, 1315, 745, 266, 2087, 299, 1925, 305, 928, 756, 292, 351, 1957, 504, 2115, 710, 281, 1736, 1967, 2806, 4016,
];
const UNIFORM_NLL = Math.log(4096); // 8.318

/** A deterministic permutation that destroys word order but keeps the unigram statistics. */
function scramble(ids: number[]): number[] {
  return ids
    .map((id, i) => ({ id, key: (i * 7919 + 13) % 101 }))
    .sort((a, b) => a.key - b.key)
    .map(({ id }) => id);
}

let scratch: string;
beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), "edgequant-oracle-"));
});
afterAll(async () => {
  rmSync(scratch, { recursive: true, force: true });
  await disposeLlamaCpp();
});

let folderCounter = 0;
function freshDir(label: string): string {
  return join(scratch, `${label}-${folderCounter++}`);
}

describe("reference forward on the trained tiny-llama fixture", () => {
  it("predicts held-out structured text far better than chance", () => {
    const tokens = [BOS, ...RELEASE_HISTORY];
    const logits = referenceLogits(TINY_LLAMA, tokens);
    expect(logits).toHaveLength(tokens.length);
    expect(logits[0]).toHaveLength(4096);
    const nll = meanNll(logits, tokens);
    // Measured 2.21 nats/token. The same weights with GPT-J style (interleaved) RoPE pairing
    // instead of rotate_half score 3.24, so this bound also pins the RoPE convention.
    expect(nll).toBeLessThan(2.6);
    const top1 = tokens.slice(1).filter((tok, t) => argmax(logits[t]!) === tok).length / (tokens.length - 1);
    expect(top1).toBeGreaterThan(0.25); // measured 0.33 (chance: 1/4096)
  });

  it("predicts held-out prose, and word order matters", () => {
    const tokens = [BOS, ...LERC_PROSE];
    const nll = meanNll(referenceLogits(TINY_LLAMA, tokens), tokens);
    const scrambled = [BOS, ...scramble(LERC_PROSE)];
    const scrambledNll = meanNll(referenceLogits(TINY_LLAMA, scrambled), scrambled);
    // Measured 4.85 vs 8.41 for the scrambled control.
    expect(nll).toBeLessThan(5.5);
    expect(nll).toBeLessThan(UNIFORM_NLL - 3);
    expect(scrambledNll - nll).toBeGreaterThan(2.5);
  });

  it("is causal: a prefix gets the same logits alone and inside a longer sequence", () => {
    const full = [BOS, ...RELEASE_HISTORY.slice(0, 40)];
    const prefix = full.slice(0, 17);
    const a = referenceLogits(TINY_LLAMA, prefix);
    const b = referenceLogits(TINY_LLAMA, full).slice(0, prefix.length);
    expect(compareLogits(a, b).maxAbsDiff).toBeLessThan(1e-5);
  });

  it("rejects out-of-vocabulary token ids", () => {
    expect(() => referenceLogits(TINY_LLAMA, [BOS, 4096])).toThrow(/outside vocab/);
  });
});

// ---------------------------------------------------------------------------

const SMALL: Omit<SyntheticSpec, "modelType" | "dtype" | "seed"> = {
  hidden: 24,
  layers: 2,
  heads: 4,
  kvHeads: 2,
  headDim: 8, // heads * headDim = 32 != hidden on purpose
  intermediate: 40,
  vocab: 4096,
};

function tensorMap(tensors: FloatTensorToWrite[]): Map<string, Float32Array> {
  return new Map(tensors.map((t) => [t.name, Float32Array.from(t.data)]));
}

/** y = W x for an HF [out, in] weight. */
function matvec(w: Float32Array, x: number[], out: number): number[] {
  const n = x.length;
  return Array.from({ length: out }, (_, o) => x.reduce((s, xi, i) => s + w[o * n + i]! * xi, 0));
}

function rms(x: number[], w: Float32Array, eps: number): number[] {
  const inv = 1 / Math.sqrt(x.reduce((s, v) => s + v * v, 0) / x.length + eps);
  return x.map((v, i) => v * inv * w[i]!);
}

/**
 * Single-token forward written the naive way. At position 0 RoPE is the identity and each head
 * attends only to itself, so attention output = v of the head's kv group.
 */
function naiveFirstPositionLogits(spec: SyntheticSpec, tensors: Map<string, Float32Array>, token: number): number[] {
  const get = (name: string): Float32Array => {
    const t = tensors.get(name);
    if (!t) throw new Error(`missing ${name}`);
    return t;
  };
  const eps = syntheticConfig(spec)["rms_norm_eps"] as number;
  const { hidden: D, heads, kvHeads, headDim, intermediate } = spec;
  let x = Array.from(get("model.embed_tokens.weight").subarray(token * D, (token + 1) * D));
  for (let l = 0; l < spec.layers; l++) {
    const p = `model.layers.${l}`;
    const h = rms(x, get(`${p}.input_layernorm.weight`), eps);
    let v = matvec(get(`${p}.self_attn.v_proj.weight`), h, kvHeads * headDim);
    const vBias = tensors.get(`${p}.self_attn.v_proj.bias`);
    if (vBias) v = v.map((val, i) => val + vBias[i]!);
    const attn: number[] = [];
    for (let head = 0; head < heads; head++) {
      const group = Math.floor(head / (heads / kvHeads)); // HF repeat_kv: head -> kv head head // n_rep
      attn.push(...v.slice(group * headDim, (group + 1) * headDim));
    }
    const o = matvec(get(`${p}.self_attn.o_proj.weight`), attn, D);
    x = x.map((val, i) => val + o[i]!);
    const h2 = rms(x, get(`${p}.post_attention_layernorm.weight`), eps);
    const gate = matvec(get(`${p}.mlp.gate_proj.weight`), h2, intermediate);
    const up = matvec(get(`${p}.mlp.up_proj.weight`), h2, intermediate);
    const act = gate.map((g, i) => (g / (1 + Math.exp(-g))) * up[i]!);
    const down = matvec(get(`${p}.mlp.down_proj.weight`), act, D);
    x = x.map((val, i) => val + down[i]!);
  }
  const final = rms(x, get("model.norm.weight"), eps);
  const head = tensors.get("lm_head.weight") ?? get("model.embed_tokens.weight");
  return matvec(head, final, spec.vocab);
}

describe("reference forward on synthetic checkpoints", () => {
  for (const modelType of ["llama", "qwen2", "qwen3"] as const) {
    it(`${modelType}: first-position logits match a naive hand-written forward`, () => {
      const spec: SyntheticSpec = { ...SMALL, modelType, dtype: "F32", seed: 11 };
      const dir = freshDir(modelType);
      writeSyntheticCheckpoint(dir, spec);
      const tensors = tensorMap(syntheticTensors(spec));
      for (const token of [0, 77, 4095]) {
        const expected = naiveFirstPositionLogits(spec, tensors, token);
        const [got] = referenceLogits(dir, [token]);
        expect(compareLogits([got!], [expected]).maxAbsDiff).toBeLessThan(1e-4);
      }
    });
  }

  it("GQA: kv heads are shared by consecutive query heads (repeat_kv layout)", () => {
    // Model B has one kv head per query head, each a copy of model A's kv head (h // 2).
    const specA: SyntheticSpec = { ...SMALL, modelType: "qwen2", dtype: "F32", seed: 5 };
    const specB: SyntheticSpec = { ...specA, kvHeads: specA.heads };
    const tensorsA = syntheticTensors(specA);
    const group = specA.heads / specA.kvHeads;
    const expandRows = (data: Float32Array | Float64Array | number[], rowWidth: number): Float32Array => {
      const out = new Float32Array(specA.heads * specA.headDim * rowWidth);
      for (let head = 0; head < specA.heads; head++) {
        const src = Math.floor(head / group) * specA.headDim * rowWidth;
        const len = specA.headDim * rowWidth;
        for (let i = 0; i < len; i++) out[head * len + i] = Number(data[src + i]);
      }
      return out;
    };
    const tensorsB = tensorsA.map((t): FloatTensorToWrite => {
      if (!/\.self_attn\.[kv]_proj\./.test(t.name)) return t;
      const isBias = t.name.endsWith(".bias");
      const width = isBias ? 1 : specA.hidden;
      return { ...t, shape: isBias ? [specA.heads * specA.headDim] : [specA.heads * specA.headDim, specA.hidden], data: expandRows(t.data, width) };
    });
    const dirA = freshDir("gqa-a");
    const dirB = freshDir("gqa-b");
    writeHfFolder(dirA, syntheticConfig(specA), tensorsA);
    writeHfFolder(dirB, syntheticConfig(specB), tensorsB);
    const tokens = [BOS, 10, 500, 4000, 33, 33, 1200, 7];
    const cmp = compareLogits(referenceLogits(dirA, tokens), referenceLogits(dirB, tokens));
    expect(cmp.maxAbsDiff).toBeLessThan(1e-4);

    // Control: pairing heads the other way (tile instead of repeat_interleave) must differ.
    const tiled = tensorsA.map((t): FloatTensorToWrite => {
      if (!/\.self_attn\.[kv]_proj\./.test(t.name)) return t;
      const isBias = t.name.endsWith(".bias");
      const rowLen = specA.headDim * (isBias ? 1 : specA.hidden);
      const out = new Float32Array(specA.heads * rowLen);
      for (let head = 0; head < specA.heads; head++) {
        const src = (head % specA.kvHeads) * rowLen;
        for (let i = 0; i < rowLen; i++) out[head * rowLen + i] = Number(t.data[src + i]);
      }
      return { ...t, shape: isBias ? [specA.heads * specA.headDim] : [specA.heads * specA.headDim, specA.hidden], data: out };
    });
    const dirC = freshDir("gqa-c");
    writeHfFolder(dirC, syntheticConfig(specB), tiled);
    expect(compareLogits(referenceLogits(dirA, tokens), referenceLogits(dirC, tokens)).maxAbsDiff).toBeGreaterThan(1e-2);
  });

  it("qwen3 q_norm/k_norm make attention invariant to the scale of q_proj and k_proj (llama is not)", () => {
    const tokens = [BOS, 300, 301, 302, 9, 4001];
    const scaleQK = (t: FloatTensorToWrite): FloatTensorToWrite =>
      /\.self_attn\.[qk]_proj\.weight$/.test(t.name) ? { ...t, data: Float32Array.from(t.data, (v) => v * 3) } : t;
    for (const modelType of ["qwen3", "llama"] as const) {
      const spec: SyntheticSpec = { ...SMALL, modelType, dtype: "F32", seed: 21 };
      const base = syntheticTensors(spec);
      const dir1 = freshDir(`${modelType}-qk1`);
      const dir2 = freshDir(`${modelType}-qk3`);
      writeHfFolder(dir1, syntheticConfig(spec), base);
      writeHfFolder(dir2, syntheticConfig(spec), base.map(scaleQK));
      const diff = compareLogits(referenceLogits(dir1, tokens), referenceLogits(dir2, tokens)).maxAbsDiff;
      if (modelType === "qwen3") expect(diff).toBeLessThan(1e-3);
      else expect(diff).toBeGreaterThan(1e-2);
    }
  });

  it("tied embeddings equal an explicit lm_head copy of embed_tokens", () => {
    const spec: SyntheticSpec = { ...SMALL, modelType: "llama", dtype: "F32", seed: 8, tieEmbeddings: true };
    const tied = syntheticTensors(spec);
    expect(tied.some((t) => t.name === "lm_head.weight")).toBe(false);
    const embed = tied.find((t) => t.name === "model.embed_tokens.weight")!;
    const dirTied = freshDir("tied");
    const dirUntied = freshDir("untied");
    writeHfFolder(dirTied, syntheticConfig(spec), tied);
    writeHfFolder(dirUntied, syntheticConfig({ ...spec, tieEmbeddings: false }), [...tied, { ...embed, name: "lm_head.weight" }]);
    const tokens = [BOS, 42, 43, 44];
    expect(compareLogits(referenceLogits(dirTied, tokens), referenceLogits(dirUntied, tokens)).maxAbsDiff).toBe(0);
  });

  it("reads sharded checkpoints (model.safetensors.index.json) like single-file ones", () => {
    const spec: SyntheticSpec = { ...SMALL, modelType: "qwen2", dtype: "BF16", seed: 3 };
    const single = freshDir("single");
    writeSyntheticCheckpoint(single, spec);
    const sharded = freshDir("sharded");
    writeSyntheticCheckpoint(sharded, spec);
    rmSync(join(sharded, "model.safetensors"));
    const tensors = syntheticTensors(spec);
    const half = Math.ceil(tensors.length / 2);
    const shards = [tensors.slice(0, half), tensors.slice(half)];
    const weightMap: Record<string, string> = {};
    shards.forEach((shard, i) => {
      const file = `model-0000${i + 1}-of-00002.safetensors`;
      writeSafetensors(join(sharded, file), shard);
      for (const t of shard) weightMap[t.name] = file;
    });
    writeFileSync(join(sharded, "model.safetensors.index.json"), JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }));
    const tokens = [BOS, 5, 6, 7, 8];
    expect(compareLogits(referenceLogits(single, tokens), referenceLogits(sharded, tokens)).maxAbsDiff).toBe(0);
  });

  it("dtype only changes weights by rounding: BF16/F16 logits stay close to F32", () => {
    const tokens = [BOS, 100, 200, 300, 400, 500, 600];
    const byDtype = Object.fromEntries(
      (["F32", "BF16", "F16"] as const).map((dtype) => {
        const dir = freshDir(`dtype-${dtype}`);
        writeSyntheticCheckpoint(dir, { ...SMALL, modelType: "llama", dtype, seed: 99 });
        return [dtype, referenceLogits(dir, tokens)];
      }),
    ) as Record<"F32" | "BF16" | "F16", Float32Array[]>;
    const bf16 = compareLogits(byDtype.F32, byDtype.BF16);
    const f16 = compareLogits(byDtype.F32, byDtype.F16);
    expect(bf16.maxAbsDiff).toBeGreaterThan(0); // the dtype really was applied
    expect(bf16.maxAbsDiff).toBeLessThan(0.5);
    expect(f16.maxAbsDiff).toBeLessThan(bf16.maxAbsDiff); // F16 has 3 more mantissa bits
    expect(bf16.top1Agreement).toBeGreaterThanOrEqual(6 / 7);
  });

  for (const modelType of ["llama", "qwen2", "qwen3"] as const) {
    it(`${modelType}: synthetic weights give sane, decisive logits`, () => {
      const spec: SyntheticSpec = { modelType, hidden: 64, layers: 3, heads: 4, kvHeads: 2, headDim: 16, intermediate: 128, vocab: 4096, seed: 1, dtype: "BF16" };
      const dir = freshDir(`sane-${modelType}`);
      writeSyntheticCheckpoint(dir, spec);
      for (const file of ["config.json", "model.safetensors", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json"]) {
        expect(existsSync(join(dir, file))).toBe(true);
      }
      const tokens = Array.from({ length: 24 }, (_, i) => (i * 389 + 1) % 4096);
      const logits = referenceLogits(dir, tokens);
      const cmp = compareLogits(logits, logits);
      expect(Number.isFinite(cmp.rmsA)).toBe(true);
      expect(cmp.rmsA).toBeGreaterThan(1);
      expect(cmp.rmsA).toBeLessThan(10);
      // Most positions should have a clear winner (not a flat distribution).
      const topProbs = logits.map((row) => Math.exp(Math.max(...logSoftmax(row))));
      expect(topProbs.filter((p) => p > 0.02).length).toBeGreaterThan(tokens.length / 2);
    });
  }

  it("the generator is deterministic in its seed", () => {
    const spec: SyntheticSpec = { ...SMALL, modelType: "qwen3", dtype: "F16", seed: 1234 };
    const a = syntheticTensors(spec);
    const b = syntheticTensors(spec);
    const c = syntheticTensors({ ...spec, seed: 1235 });
    expect(a.map((t) => Array.from(t.data))).toEqual(b.map((t) => Array.from(t.data)));
    expect(Array.from(a[0]!.data.slice(0, 8))).not.toEqual(Array.from(c[0]!.data.slice(0, 8)));
  });
});

// ---------------------------------------------------------------------------

describe("safetensors codecs", () => {
  it("F16: every finite bit pattern survives decode -> encode", () => {
    for (let bits = 0; bits < 0x10000; bits++) {
      const value = halfBitsToFloat(bits);
      if (Number.isNaN(value)) continue;
      expect(floatToHalfBits(value)).toBe(bits);
    }
  });

  it("F16/BF16 encoding rounds float32 inputs to the nearest representable value", () => {
    fc.assert(
      fc.property(fc.float({ min: -60000, max: 60000, noNaN: true }), (x) => {
        for (const [encode, decode, step] of [
          [floatToHalfBits, halfBitsToFloat, 1],
          [floatToBf16Bits, bf16BitsToFloat, 1],
        ] as const) {
          const bits = encode(x);
          const y = decode(bits);
          // neighbours in bit space (same sign): no representable value may be strictly closer
          for (const nb of [bits - step, bits + step]) {
            if (nb < 0 || nb > 0xffff || (nb & 0x7fff) === 0x7fff) continue;
            const z = decode(nb);
            if (Number.isFinite(z) && Math.sign(z) === Math.sign(y)) expect(Math.abs(z - x)).toBeGreaterThanOrEqual(Math.abs(y - x) * (1 - 1e-12));
          }
        }
      }),
      { numRuns: 2000 },
    );
  });

  it("reads the trained fixture's BF16 header and tensors", () => {
    const file = new SafetensorsFile(join(TINY_LLAMA, "model.safetensors"));
    expect(file.shape("model.embed_tokens.weight")).toEqual([4096, 256]);
    expect(file.shape("model.layers.0.self_attn.k_proj.weight")).toEqual([128, 256]);
    const norm = file.read("model.norm.weight");
    expect(norm.dtype).toBe("BF16");
    expect(norm.data.every((v) => Number.isFinite(v) && Math.abs(v) < 100)).toBe(true);
  });
});

// ---------------------------------------------------------------------------

describe("llama.cpp tokenizer harness", () => {
  // These vocab files and .inp/.out vectors ship with llama.cpp; the harness must reproduce
  // tests/test-tokenizer-0 exactly (add_special = false, parse_special = false).
  for (const vocab of ["ggml-vocab-llama-spm.gguf", "ggml-vocab-llama-bpe.gguf", "ggml-vocab-qwen2.gguf"]) {
    it(`reproduces ${vocab}.out`, async () => {
      // From the llama.cpp source bundle shipped in node-llama-cpp, so a fresh clone has them.
      const path = llamaSourcePath(`models/${vocab}`);
      llamaSourcePath(`models/${vocab}.inp`);
      llamaSourcePath(`models/${vocab}.out`);
      const cases = readTokenizerCases(path);
      expect(cases.length).toBeGreaterThan(40);
      for (const { text, expected } of cases) {
        expect({ text, tokens: await llamaCppTokenize(path, text) }).toEqual({ text, tokens: expected });
      }
    });
  }
});
