// phi3 -> MLX: the folder mlx-lm's phi3 model loads, with rules written from mlx-lm's own files
// (ml-explore/mlx-lm d78bf58), independently of src/:
//  P1 Names (mlx_lm/models/phi3.py): self_attn.qkv_proj, one Linear of n_heads*head_dim +
//     2*n_kv_heads*head_dim outputs (:61-62), self_attn.o_proj (:63), mlp.gate_up_proj of
//     2*intermediate outputs (:124), mlp.down_proj (:125), input_layernorm and
//     post_attention_layernorm (:140-142), model.embed_tokens (:166), model.norm (:170), and
//     lm_head only when tie_word_embeddings is false (:194-195). phi3.py has no sanitize(): the
//     Hugging Face names are kept as they are, fused.
//  P2 Quantized: every nn.Linear / nn.Embedding whose input dimension the group size divides
//     (mlx_lm/utils.py quantize_model), uint32 words, scales and biases in the float dtype.
//  P3 Mixed recipes (mlx_lm/convert.py:66-73): a path containing "v_proj" (so "qkv_proj" too) or
//     "down_proj" gets the high bits where use_more_bits holds, and lm_head always.
//  P4 The values: each quantized weight, dequantized with test/support/mlx-reference.ts, is
//     MLX's affine quantization of the source (bit for bit against the reference quantizer).
//  P5 phi3.py:36-39 requires rope_scaling's "type" key: a config with only "rope_type" is refused
//     (exit 2, naming config.json) rather than written for mlx-lm to reject at load.

import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { convertToMlx } from "../src/convert/mlx.js";
import { UserError } from "../src/errors.js";
import { tempDir } from "./support/cli.js";
import { castTo, dequantizeMlxFolder, moduleQuantization, readMlxFolder, referenceQuantizeMatrix, wordValues, type MlxFolder } from "./support/mlx-reference.js";
import { SafetensorsFile } from "./support/safetensors.js";
import { writeSyntheticCheckpoint, type SyntheticSpec } from "./support/synthetic-checkpoint.js";

const LAYERS = 4;
const SPEC = { hidden: 256, layers: LAYERS, heads: 4, headDim: 64, intermediate: 512, vocab: 4096, seed: 31, dtype: "BF16" } as const;
const MODELS: { label: string; spec: SyntheticSpec; tied: boolean }[] = [
  { label: "Phi-3.5-mini config (untied)", spec: { ...SPEC, modelType: "phi3.5", kvHeads: 4 }, tied: false },
  { label: "Phi-4-mini config (tied, GQA)", spec: { ...SPEC, modelType: "phi4-mini", kvHeads: 2 }, tied: true },
];
const useMoreBits = (i: number) => i < Math.floor(LAYERS / 8) || i >= Math.floor((7 * LAYERS) / 8) || (i - Math.floor(LAYERS / 8)) % 3 === 2;
/** P3 for mixed_3_6. */
const mixedBits = (module: string) => {
  if (module.includes("lm_head")) return 6;
  const layer = Number(/^model\.layers\.(\d+)\./.exec(module)?.[1] ?? 0);
  return (module.includes("v_proj") || module.includes("down_proj")) && useMoreBits(layer) ? 6 : 3;
};

const dir = tempDir("edgequant-mlx-phi3-");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.each(MODELS)("phi3 -> MLX, $label", ({ label, spec, tied }) => {
  const source = join(dir, label.replace(/\W+/g, "-"));
  const folders = new Map<string, MlxFolder>();
  beforeAll(async () => {
    writeSyntheticCheckpoint(source, spec);
    for (const mixed of [false, true]) {
      const output = join(source, mixed ? "mlx-mixed" : "mlx-4bit");
      await convertToMlx({ source, output, bits: mixed ? 3 : 4, ...(mixed ? { mixed: "3_6" as const } : {}) });
      folders.set(mixed ? "mixed" : "4bit", readMlxFolder(output));
    }
  });

  it("keeps the fused Hugging Face names and shapes mlx-lm's phi3 declares (P1, P2)", () => {
    const { hidden, heads, kvHeads, headDim, intermediate, vocab } = spec;
    const expected: [string, number[]][] = [["model.embed_tokens", [vocab, hidden]], ["model.norm", [hidden]]];
    if (!tied) expected.push(["lm_head", [vocab, hidden]]);
    for (let l = 0; l < LAYERS; l++) {
      const p = `model.layers.${l}`;
      expected.push([`${p}.self_attn.qkv_proj`, [(heads + 2 * kvHeads) * headDim, hidden]], [`${p}.self_attn.o_proj`, [hidden, heads * headDim]]);
      expected.push([`${p}.mlp.gate_up_proj`, [2 * intermediate, hidden]], [`${p}.mlp.down_proj`, [hidden, intermediate]]);
      expected.push([`${p}.input_layernorm`, [hidden]], [`${p}.post_attention_layernorm`, [hidden]]);
    }
    const names: string[] = [];
    for (const [module, shape] of expected) {
      if (shape.length === 1) {
        names.push(`${module}.weight`);
        continue;
      }
      names.push(`${module}.weight`, `${module}.scales`, `${module}.biases`);
      const folder = folders.get("4bit")!;
      expect(folder.tensors.get(`${module}.weight`)?.shape, module).toEqual([shape[0], (shape[1]! * 4) / 32]);
      expect(folder.tensors.get(`${module}.weight`)?.dtype, module).toBe("U32");
      expect(folder.tensors.get(`${module}.scales`)?.shape, module).toEqual([shape[0], shape[1]! / 64]);
      expect(folder.tensors.get(`${module}.scales`)?.dtype, module).toBe("BF16");
    }
    for (const folder of folders.values()) expect([...folder.tensors.keys()].sort()).toEqual(names.sort());
  });

  it("gives qkv_proj, down_proj and lm_head the high bits of a mixed recipe where mlx-lm does (P3)", () => {
    const { config } = folders.get("mixed")!;
    const quantized = [...folders.get("mixed")!.tensors.keys()].filter((n) => n.endsWith(".scales")).map((n) => n.slice(0, -".scales".length));
    for (const module of quantized) expect(moduleQuantization(config, module).bits, module).toBe(mixedBits(module));
    expect(quantized.filter((m) => moduleQuantization(config, m).bits === 6).some((m) => m.endsWith("qkv_proj"))).toBe(true);
  });

  it("dequantizes to MLX's affine quantization of the source, bit for bit (P4)", () => {
    const weights = new SafetensorsFile(join(source, "model.safetensors"));
    for (const [variant, folder] of folders) {
      const dequantized = dequantizeMlxFolder(folder);
      let checked = 0;
      for (const name of weights.names()) {
        const module = name.slice(0, name.lastIndexOf("."));
        if (!folder.tensors.has(`${module}.scales`)) continue;
        const { group_size: groupSize, bits } = moduleQuantization(folder.config, module);
        const w = weights.read(name);
        const reference = referenceQuantizeMatrix(w.data, w.shape[1]!, groupSize, bits, "BF16");
        expect(Array.from(wordValues(folder.tensors.get(`${module}.weight`)!)), `${variant} ${module}`).toEqual(Array.from(reference.words));
        // Unpacked, each value is the reference's q * scale + bias with the scale and bias as stored (BF16), in float32.
        const values = dequantized.get(name)!.data;
        let differing = 0;
        for (let i = 0; i < values.length; i++) {
          const group = reference.groups[Math.floor(i / groupSize)]!;
          const expected = Math.fround(Math.fround(castTo("BF16", group.scale) * reference.q[i]!) + castTo("BF16", group.bias));
          if (values[i] !== expected) differing++;
        }
        expect(differing, `${variant} ${module}`).toBe(0);
        checked++;
      }
      expect(checked).toBe(4 * LAYERS + (tied ? 1 : 2));
    }
  });
});

describe("phi3 configs mlx-lm's phi3 model cannot load (P5)", () => {
  it("a rope_scaling with rope_type but no type is refused, naming config.json", async () => {
    const source = join(dir, "rope-type-only");
    writeSyntheticCheckpoint(source, { ...SPEC, modelType: "phi4-mini", kvHeads: 2 });
    const config = JSON.parse(readFileSync(join(source, "config.json"), "utf8"));
    const { type: _type, ...rest } = config.rope_scaling;
    writeFileSync(join(source, "config.json"), JSON.stringify({ ...config, rope_scaling: { ...rest, rope_type: "longrope" } }));
    const run = convertToMlx({ source, output: join(source, "mlx"), bits: 4 });
    await expect(run).rejects.toThrow(UserError);
    await expect(run).rejects.toThrow(/config\.json.*'type'.*mlx-lm's phi3/);
  });
});
