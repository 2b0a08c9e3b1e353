// MLX output for BitNet b1.58: the folder mlx-lm's models/bitnet.py loads, with its BitLinear layers
// holding exactly the ternary weights. Rules written from ml-explore/mlx-lm d78bf58:
//  B1 Names (mlx_lm/models/bitnet.py): model.embed_tokens (152); model.layers.N.self_attn.{q,k,v,o}_proj
//     (48-51) and .self_attn.attn_sub_norm (60); .mlp.{gate,down,up}_proj (107-109) and .mlp.ffn_sub_norm
//     (111); .input_layernorm, .post_attention_layernorm (127-129); model.norm (156); lm_head only when
//     tie_word_embeddings is false (182-183), sanitize() drops it otherwise (202-203); BitNet b1.58
//     checkpoints are tied (edgequant's bitnet architecture, like llama.cpp's graph, has no output layer).
//  B2 BitLinear parameters (mlx_lm/models/bitlinear_layers.py): weight uint8 [(out + 3) // 4, in]
//     (110-111), weight_scale [1] (114), no bias unless the layer has one (116-119).
//  B3 Values: the kernel multiplies x by ((w >> 2i) & 3) - 1 of packed row r for output row
//     r + i * out/4 (59-64, 76) and scales by weight_scale (74), not inverted for bitnet.py's layers
//     (constructed with the default invert_weight_scales=False, 102). test/support/mlx-reference.ts
//     referenceBitLinear unpacks exactly that.
//  B4 weight_scale has the activations' dtype (the kernel asserts x.dtype == weight_scale.dtype, 129-130).
//  B5 config.json (mlx_lm/utils.py load_model): no "quantization" (else the affine path, 391-392);
//     quantization_config.quant_method "bitnet" (398-401), whose bitnet_quantize turns every remaining
//     nn.Linear into a BitLinear (bitlinear_layers.py:16-29): tied, there is none.
//  B6 The FFN is relu²-gated (bitnet.py:114): a SiLU BitNet (1bitLLM) would compute wrong text.

import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { convertToMlx } from "../src/convert/mlx.js";
import { UserError } from "../src/errors.js";
import { tempDir } from "./support/cli.js";
import { BITNET_SPEC, writeBitnetMaster, writeBitnetPacked } from "./support/bitnet-checkpoints.js";
import { dequantizeMlxFolder, readMlxFolder, referenceBitLinear, type MlxFolder } from "./support/mlx-reference.js";
import { bitnetWeightQuant } from "./support/reference-forward.js";
import { roundToDtype, SafetensorsFile } from "./support/safetensors.js";
import { writeSyntheticCheckpoint } from "./support/synthetic-checkpoint.js";

const dir = tempDir("edgequant-mlx-bitnet-");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const PROJECTIONS = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"];

/** B1, B2, B4: every tensor mlx-lm's bitnet model declares, no other. */
function expectedTensors(): { name: string; dtype: string; shape: number[] }[] {
  const { hidden, heads, kvHeads, headDim, intermediate, vocab, layers } = BITNET_SPEC;
  const out = [{ name: "model.embed_tokens.weight", dtype: "BF16", shape: [vocab, hidden] }, { name: "model.norm.weight", dtype: "BF16", shape: [hidden] }];
  const outIn: Record<string, [number, number]> = {
    "self_attn.q_proj": [heads * headDim, hidden], "self_attn.k_proj": [kvHeads * headDim, hidden], "self_attn.v_proj": [kvHeads * headDim, hidden],
    "self_attn.o_proj": [hidden, heads * headDim], "mlp.gate_proj": [intermediate, hidden], "mlp.up_proj": [intermediate, hidden], "mlp.down_proj": [hidden, intermediate],
  };
  for (let l = 0; l < layers; l++) {
    const p = `model.layers.${l}`;
    for (const [module, [o, i]] of Object.entries(outIn)) {
      out.push({ name: `${p}.${module}.weight`, dtype: "U8", shape: [Math.floor((o + 3) / 4), i] });
      out.push({ name: `${p}.${module}.weight_scale`, dtype: "BF16", shape: [1] });
    }
    out.push({ name: `${p}.input_layernorm.weight`, dtype: "BF16", shape: [hidden] }, { name: `${p}.post_attention_layernorm.weight`, dtype: "BF16", shape: [hidden] });
    out.push({ name: `${p}.self_attn.attn_sub_norm.weight`, dtype: "BF16", shape: [heads * headDim] }, { name: `${p}.mlp.ffn_sub_norm.weight`, dtype: "BF16", shape: [intermediate] });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : 1));
}

function tensorList(folder: MlxFolder) {
  return [...folder.tensors.values()].map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape })).sort((a, b) => (a.name < b.name ? -1 : 1));
}

/** B5, and every other key of the source config kept. */
function expectBitnetConfig(folder: MlxFolder, source: string): void {
  const sourceConfig = JSON.parse(readFileSync(join(source, "config.json"), "utf8")) as Record<string, unknown>;
  expect(folder.config["quantization"]).toBeUndefined();
  expect(folder.config["quantization_config"]).toEqual({ quant_method: "bitnet", linear_class: "autobitlinear", quantization_mode: "offline" });
  for (const [key, value] of Object.entries(sourceConfig)) if (key !== "quantization_config") expect(folder.config[key], key).toEqual(value);
  expect(folder.config["model_type"]).toBe("bitnet");
}

/** Non-projection tensors: the source's BF16 bytes, decoded. */
function expectFloatsKept(folder: MlxFolder, source: SafetensorsFile): number {
  const dequantized = dequantizeMlxFolder(folder);
  let kept = 0;
  for (const name of source.names()) {
    if (/_proj\.weight(_scale)?$/.test(name)) continue;
    expect(Array.from(dequantized.get(name)!.data), name).toEqual(Array.from(source.read(name).data));
    kept++;
  }
  return kept;
}

describe("BitNet master weights (microsoft/bitnet-b1.58-2B-4T-bf16's config) -> MLX BitLinear", () => {
  it("has mlx-lm's tensors and config, and every BitLinear weight is the absmean-ternarised source exactly (B1-B5)", async () => {
    const source = writeBitnetMaster(join(dir, "master"));
    const output = join(dir, "master-mlx");
    const report = await convertToMlx({ source, output, bits: 1.58 });
    const folder = readMlxFolder(output);
    expect(tensorList(folder)).toEqual(expectedTensors());
    expectBitnetConfig(folder, source);
    const file = new SafetensorsFile(join(source, "model.safetensors"));
    let weights = 0;
    let mismatches = 0;
    for (let l = 0; l < BITNET_SPEC.layers; l++) {
      for (const module of PROJECTIONS) {
        const name = `model.layers.${l}.${module}.weight`;
        // transformers' WeightQuant in float32, then the cast back to the checkpoint's BF16 (torch_dtype).
        const expected = Array.from(bitnetWeightQuant(Float32Array.from(file.read(name).data)), (x) => roundToDtype(x, "BF16"));
        const ours = referenceBitLinear(folder.tensors.get(name)!, folder.tensors.get(`${name.slice(0, -7)}.weight_scale`)!);
        expect(new Set(expected.map(Math.abs)).size, name).toBeLessThanOrEqual(2);
        for (let i = 0; i < expected.length; i++) if (ours.data[i] !== expected[i]) mismatches++;
        weights += expected.length;
      }
    }
    const kept = expectFloatsKept(folder, file);
    console.log(`[mlx-bitnet] master weights: ${weights} BitLinear weights, ${mismatches} differ from the ternarised source; ${kept} float tensors kept; ${report.bitsPerWeight.toFixed(3)} bits per weight`);
    expect(mismatches).toBe(0);
    expect(report.layers).toEqual({ quantized: { "1.58": BITNET_SPEC.layers * 7 }, float: 1 });
    expect(report.bitLinear).toBe(true);
  });
});

describe("packed BitNet (microsoft/bitnet-b1.58-2B-4T's layout) -> MLX BitLinear", () => {
  it("the packed codes come out byte for byte, with weight_scale = 1 / the source's inverted scale (B2, B3)", async () => {
    const source = join(dir, "packed");
    const expected = writeBitnetPacked(source);
    const output = join(dir, "packed-mlx");
    await convertToMlx({ source, output, bits: 1.58 });
    const folder = readMlxFolder(output);
    expect(tensorList(folder)).toEqual(expectedTensors());
    expectBitnetConfig(folder, source);
    let mismatches = 0;
    for (const [name, { codes, weightScale, values }] of expected) {
      const packed = folder.tensors.get(name)!;
      expect(Buffer.from(packed.bytes).equals(Buffer.from(codes)), name).toBe(true);
      const ours = referenceBitLinear(packed, folder.tensors.get(`${name.slice(0, -7)}.weight_scale`)!);
      expect(ours.scale).toBe(1 / weightScale);
      for (let i = 0; i < values.length; i++) if (ours.data[i] !== values[i]) mismatches++;
    }
    console.log(`[mlx-bitnet] packed: ${expected.size} BitLinear weights, codes identical, ${mismatches} weights differ`);
    expect(mismatches).toBe(0);
  });
});

describe("what mlx-lm's bitnet model cannot run is refused", () => {
  it("a SiLU BitNet (1bitLLM layout) names hidden_act (B6); other bit widths name --bits 1.58", async () => {
    const silu = join(dir, "silu");
    writeSyntheticCheckpoint(silu, { ...BITNET_SPEC, dtype: "F32" });
    const error = await convertToMlx({ source: silu, output: join(dir, "silu-mlx"), bits: 1.58 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect((error as Error).message).toMatch(/hidden_act 'silu' is not what mlx-lm's bitnet model computes \(relu²/);
    const master = writeBitnetMaster(join(dir, "bits"));
    await expect(convertToMlx({ source: master, output: join(dir, "bits-mlx"), bits: 4 })).rejects.toThrow(/BitLinear.*--bits 1\.58; got 4/);
  });
});
