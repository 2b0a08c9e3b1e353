import { existsSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { gguf } from "@huggingface/gguf";
import { afterAll, describe, expect, it } from "vitest";
import { convertToGguf } from "../src/convert/gguf.js";
import { GgmlType } from "../src/quant/ggml-types.js";
import { resolveScheme } from "../src/quant/schemes.js";
import { CORPUS, TINY_LLAMA, TINY_LLAMA_TERNARY, runCli, tempDir } from "./support/cli.js";
import { requireGgml } from "./support/ggml-oracle.js";
import { compareLogits } from "./support/logit-metrics.js";
import { disposeLlamaCpp, llamaCppLogits, llamaCppTokenize } from "./support/llama-cpp.js";
import { llamaCppPerplexity } from "./support/perplexity.js";
import { referenceLogits } from "./support/reference-forward.js";
import { SafetensorsFile, type TensorToWrite } from "./support/safetensors.js";
import { syntheticConfig, syntheticTensors, writeHfFolder, writeSyntheticCheckpoint } from "./support/synthetic-checkpoint.js";

const dir = tempDir();
afterAll(async () => {
  await disposeLlamaCpp();
  rmSync(dir, { recursive: true, force: true });
});

// ggml's dequantizer decodes the TQ files; without it the suite fails here, naming the library.
const ggml = requireGgml();

async function convert(source: string, scheme: string, name = scheme): Promise<string> {
  const output = join(dir, `${source.split("/").at(-1)}-${name}.gguf`);
  await convertToGguf({ source, output, scheme: resolveScheme({ scheme }) });
  return output;
}

/** Every TQ tensor of a GGUF, dequantized by ggml itself. */
async function ternaryTensors(path: string): Promise<{ name: string; type: GgmlType; shape: number[]; values: Float32Array }[]> {
  const parsed = await gguf(path, { allowLocalFile: true });
  const file = readFileSync(path);
  const bytesPerBlock = { [GgmlType.TQ1_0]: 54, [GgmlType.TQ2_0]: 66 } as Record<number, number>;
  return parsed.tensorInfos
    .filter((info) => info.dtype === GgmlType.TQ1_0 || info.dtype === GgmlType.TQ2_0)
    .map((info) => {
      const shape = info.shape.map(Number).reverse();
      const count = shape.reduce((a, b) => a * b, 1);
      const start = Number(parsed.tensorDataOffset + info.offset);
      const bytes = file.subarray(start, start + (count / 256) * bytesPerBlock[info.dtype]!);
      return { name: info.name, type: info.dtype as unknown as GgmlType, shape, values: ggml.dequantize(info.dtype, bytes, count) };
    });
}

/** HF rotate-half rows -> llama.cpp's interleaved pairs, written here independently of src/. */
function interleave(values: Float32Array, rows: number, columns: number, heads: number): Float32Array {
  const out = new Float32Array(values.length);
  const perHead = rows / heads;
  for (let r = 0; r < rows; r++) {
    const head = Math.floor(r / perHead);
    const within = r % perHead;
    const target = head * perHead + (within % (perHead / 2)) * 2 + Math.floor(within / (perHead / 2));
    out.set(values.subarray(r * columns, (r + 1) * columns), target * columns);
  }
  return out;
}

const HF_NAME: Record<string, string> = {
  attn_q: "self_attn.q_proj", attn_k: "self_attn.k_proj", attn_v: "self_attn.v_proj", attn_output: "self_attn.o_proj",
  ffn_gate: "mlp.gate_proj", ffn_up: "mlp.up_proj", ffn_down: "mlp.down_proj",
};

/**
 * A BitNet checkpoint in the packed layout of microsoft/bitnet-b1.58-2B-4T (quant_method "bitnet"):
 * uint8 [out/4, in] codes, row block k at bits 2k..2k+1, trit = code - 1, weight_scale = 1/s.
 * Returns the folder and the weights it stands for, computed here from the codes.
 */
const packedBitnet = once(() => {
  const spec = { modelType: "bitnet" as const, hidden: 256, layers: 2, heads: 4, kvHeads: 2, headDim: 64, intermediate: 512, vocab: 4096, seed: 3, dtype: "BF16" as const };
  let seed = 12345;
  const random = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const expected = new Map<string, Float32Array>();
  const tensors = syntheticTensors(spec).flatMap((tensor): TensorToWrite[] => {
    if (!/_proj\.weight$/.test(tensor.name)) return [tensor];
    const [rows, columns] = tensor.shape as [number, number];
    const weightScale = 2 ** (3 + Math.floor(random() * 4)); // 1/weight_scale must be fp16-exact for TQ's fp16 block scale
    const codes = new Uint8Array((rows / 4) * columns);
    const values = new Float32Array(rows * columns);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < columns; c++) {
        const code = Math.floor(random() * 3);
        codes[(r % (rows / 4)) * columns + c]! |= code << (2 * Math.floor(r / (rows / 4)));
        values[r * columns + c] = (code - 1) / weightScale;
      }
    }
    expected.set(tensor.name, values);
    return [
      { name: tensor.name, shape: [rows / 4, columns], data: codes, dtype: "U8" },
      { name: tensor.name.replace(/\.weight$/, ".weight_scale"), shape: [1], data: [weightScale], dtype: "BF16" },
    ];
  });
  const source = join(dir, "bitnet-packed");
  writeHfFolder(source, { ...syntheticConfig(spec), quantization_config: { quant_method: "bitnet", linear_class: "autobitlinear", quantization_mode: "offline" } }, tensors);
  return { source, expected };
});

/** A BitNet checkpoint of full-precision master weights (1bitLLM layout). */
const masterBitnet = once(() => {
  const source = join(dir, "bitnet-master");
  writeSyntheticCheckpoint(source, { modelType: "bitnet", hidden: 256, layers: 3, heads: 4, kvHeads: 2, headDim: 64, intermediate: 512, vocab: 4096, seed: 11, dtype: "F32" });
  return source;
});

function once<T>(make: () => T): () => T {
  let value: { made: T } | undefined;
  return () => (value ??= { made: make() }).made;
}

describe("1.58-bit is lossless on a ternary checkpoint", () => {
  for (const scheme of ["tq1_0", "tq2_0"]) {
    it(`tiny-llama-ternary -> ${scheme}: every dequantized weight equals the source weight (mismatches: 0)`, async () => {
      const path = await convert(TINY_LLAMA_TERNARY, scheme);
      const source = new SafetensorsFile(join(TINY_LLAMA_TERNARY, "model.safetensors"));
      const config = JSON.parse(readFileSync(join(TINY_LLAMA_TERNARY, "config.json"), "utf8"));
      const tensors = await ternaryTensors(path);
      let compared = 0;
      let mismatches = 0;
      for (const tensor of tensors) {
        const [, block, role] = /^blk\.(\d+)\.(\w+)\.weight$/.exec(tensor.name)!;
        const original = source.read(`model.layers.${block}.${HF_NAME[role!]}.weight`).data;
        const [rows, columns] = tensor.shape as [number, number];
        const heads = role === "attn_q" ? config.num_attention_heads : role === "attn_k" ? config.num_key_value_heads : 0;
        const expected = heads ? interleave(original, rows, columns, heads) : original;
        for (let i = 0; i < expected.length; i++) if (tensor.values[i] !== expected[i]) mismatches++;
        compared += expected.length;
      }
      const parameters = (await gguf(path, { allowLocalFile: true })).tensorInfos.reduce((sum, t) => sum + t.shape.reduce((a, b) => a * Number(b), 1), 0);
      console.log(
        `${scheme}: ${tensors.length} ternary tensors, ${compared} weights compared, ${mismatches} mismatches; ` +
          `file ${((8 * statSync(path).size) / parameters).toFixed(3)} bits per weight (embedding Q4_K and output Q6_K included)`,
      );
      expect(tensors).toHaveLength(6 * 7);
      expect(mismatches).toBe(0);
    });
  }

  it("a packed BitNet checkpoint (uint8 codes, inverted weight_scale) converts to TQ1_0/TQ2_0 without loss", async () => {
    const { source, expected } = packedBitnet();
    for (const scheme of ["tq1_0", "tq2_0"]) {
      const converted = await ternaryTensors(await convert(source, scheme));
      let mismatches = 0;
      for (const tensor of converted) {
        const [, block, role] = /^blk\.(\d+)\.(\w+)\.weight$/.exec(tensor.name)!;
        const values = expected.get(`model.layers.${block}.${HF_NAME[role!]}.weight`)!;
        for (let i = 0; i < values.length; i++) if (tensor.values[i] !== values[i]) mismatches++;
      }
      console.log(`packed BitNet -> ${scheme}: ${converted.length} tensors, ${mismatches} mismatches`);
      expect(converted).toHaveLength(2 * 7);
      expect(mismatches).toBe(0);
    }
  });
});

describe("llama.cpp's perplexity on our TQ1_0/TQ2_0 of tiny-llama-ternary is within 0.5% of our F16's", () => {
  it("8 windows of 256 tokens of held-out text", async () => {
    const corpus = readFileSync(CORPUS, "utf8");
    const results: Record<string, number> = {};
    for (const scheme of ["f16", "tq1_0", "tq2_0"]) {
      results[scheme] = (await llamaCppPerplexity(await convert(TINY_LLAMA_TERNARY, scheme, `${scheme}-ppl`), corpus, { window: 256, bos: 1, maxWindows: 8 })).perplexity;
    }
    console.log(`tiny-llama-ternary perplexity: f16 ${results["f16"]!.toFixed(4)}, tq1_0 ${results["tq1_0"]!.toFixed(4)}, tq2_0 ${results["tq2_0"]!.toFixed(4)}`);
    for (const scheme of ["tq1_0", "tq2_0"]) expect(Math.abs(results[scheme]! / results["f16"]! - 1)).toBeLessThan(0.005);
  });
});

describe("bitnet through TQ2_0 still computes the reference model", () => {
  // Not a bit-exact comparison, by design of the format and of llama.cpp's TQ rules:
  // - the tied embedding/output is Q6_K (llama.cpp's choice for TQ files), ~1.8% relative error;
  // - llama.cpp's TQ matmul quantizes activations to 8 bits per block of 256 (Q8_K);
  // - TQ's fp16 block scale rounds the absmean scale (at most 2^-11 relative).
  // On this random (untrained, so sensitive) model we measured max |diff| 0.53 with logits RMS 3.05
  // and 97% top-1 agreement; the bound leaves 2x headroom. F32 output matches to 5e-6 (logits.test.ts).
  it("same top-1 at >= 95% of positions, max |diff| <= 1.0", async () => {
    const source = masterBitnet();
    const path = await convert(source, "tq2_0");
    const tokens = (await llamaCppTokenize(path, readFileSync(CORPUS, "utf8").slice(5000, 5300))).slice(0, 64);
    const result = compareLogits(await llamaCppLogits(path, tokens), referenceLogits(source, tokens));
    console.log(
      `bitnet tq2_0: ${result.positions} positions, max |diff| ${result.maxAbsDiff.toExponential(2)} (logits RMS ${result.rmsA.toFixed(2)}), ` +
        `top-1 agreement ${(100 * result.top1Agreement).toFixed(1)}%, mean KL ${result.meanKl.toExponential(2)}`,
    );
    expect(result.top1Agreement).toBeGreaterThanOrEqual(0.95);
    expect(result.maxAbsDiff).toBeLessThanOrEqual(1.0);
  });
});

describe("inspect recognises how a checkpoint is ternary", () => {
  it("fake-quantized floats, and a normally trained model as not ternary", () => {
    const ternary = JSON.parse(runCli(["inspect", TINY_LLAMA_TERNARY, "--json"]).stdout);
    const normal = JSON.parse(runCli(["inspect", TINY_LLAMA, "--json"]).stdout);
    expect(ternary.ternary).toBe("fake-quantized");
    expect(normal.ternary).toBe("not-ternary");
    expect(runCli(["inspect", TINY_LLAMA_TERNARY]).stdout).toContain("ternary: every linear weight is {-s, 0, +s}: --bits 1.58 is lossless");
  });

  it("packed and master-weight BitNet checkpoints", () => {
    expect(JSON.parse(runCli(["inspect", packedBitnet().source, "--json"]).stdout).ternary).toBe("bitnet-packed");
    expect(JSON.parse(runCli(["inspect", masterBitnet(), "--json"]).stdout).ternary).toBe("bitnet-master-weights");
  });
});

describe("a normally trained model asked for 1.58 bits is refused, unless forced", () => {
  it("refused: exit 2, the measured error, the flag that forces it, nothing written", () => {
    const output = join(dir, "refused.gguf");
    const result = runCli(["convert", TINY_LLAMA, "--to", "gguf", "--bits", "1.58", "-o", output, "--no-progress"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      /tensor 'model\.layers\.\d+\.\w+\.\w+_proj\.weight': not ternary: its weights are not all -s, 0 or \+s, so TQ1_0 would change them by \d+\.\d% \(relative RMS error\)\./,
    );
    expect(result.stderr).toContain("use --bits 4 (q4_k_m), or pass --allow-lossy-ternary to quantize it anyway");
    expect(existsSync(output)).toBe(false);
  });

  it("--allow-lossy-ternary writes the TQ1_0 file", () => {
    const output = join(dir, "forced.gguf");
    const result = runCli(["convert", TINY_LLAMA, "--to", "gguf", "--bits", "1.58", "--allow-lossy-ternary", "-o", output, "--no-progress"]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain("tq1_0");
    expect(existsSync(output)).toBe(true);
  });
});
