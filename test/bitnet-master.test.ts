// Regression: a BitNet master-weight checkpoint (BF16 floats) whose config carries
// quantization_config.quant_method "bitnet" -- microsoft/bitnet-b1.58-2B-4T-bf16's config.json,
// transcribed in test/support/bitnet-checkpoints.ts -- is master weights, not packed 2-bit codes:
// the layout is read from the tensors (no uint8 weight beside a weight_scale), since the packed
// release carries the same quant_method.
//
// Its hidden_act is relu2, and llama.cpp's bitnet graph computes a SiLU gate (src/models/bitnet.cpp,
// LLM_FFN_SILU): edgequant refuses that GGUF. The lossless TQ1_0/TQ2_0 conversion is therefore shown
// on the same checkpoint with that one key set to "silu" (every other key, quantization_config
// included, kept); mlx-bitnet.test.ts converts the unchanged config to MLX, which runs relu².

import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gguf } from "@huggingface/gguf";
import { afterAll, describe, expect, it } from "vitest";
import { convertToGguf } from "../src/convert/gguf.js";
import { resolveScheme } from "../src/quant/schemes.js";
import { BITNET_SPEC, writeBitnetMaster } from "./support/bitnet-checkpoints.js";
import { runCli, tempDir } from "./support/cli.js";
import { requireGgml } from "./support/ggml-oracle.js";
import { bitnetWeightQuant } from "./support/reference-forward.js";
import { roundToDtype, SafetensorsFile } from "./support/safetensors.js";

const dir = tempDir("edgequant-bitnet-master-");
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const ggml = requireGgml();

const source = writeBitnetMaster(join(dir, "bitnet-b1.58-2B-4T-bf16-tiny"));
const HF_NAME: Record<string, string> = {
  attn_q: "self_attn.q_proj", attn_k: "self_attn.k_proj", attn_v: "self_attn.v_proj", attn_output: "self_attn.o_proj",
  ffn_gate: "mlp.gate_proj", ffn_up: "mlp.up_proj", ffn_down: "mlp.down_proj",
};
const TQ_BLOCK_BYTES: Record<number, number> = { 34: 54, 35: 66 }; // GGML_TYPE_TQ1_0, TQ2_0: bytes per 256 weights

describe("BitNet master weights with quantization_config.quant_method bitnet", () => {
  it("inspect says master weights, not packed 2-bit codes", () => {
    const config = JSON.parse(readFileSync(join(source, "config.json"), "utf8"));
    expect(config.quantization_config.quant_method).toBe("bitnet");
    expect(JSON.parse(runCli(["inspect", source, "--json"]).stdout).ternary).toBe("bitnet-master-weights");
    const text = runCli(["inspect", source]).stdout;
    expect(text).toContain("BitNet master weights: --bits 1.58 ternarises them (absmean) as the model does");
    expect(text).not.toMatch(/packed/i);
  });

  it("GGUF of the relu² config is refused, naming hidden_act (exit 2)", () => {
    const result = runCli(["convert", source, "--to", "gguf", "--bits", "1.58", "-o", join(dir, "refused.gguf"), "--no-progress"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/hidden_act 'relu2' is not what llama\.cpp's bitnet graph computes/);
  });

  it("with hidden_act silu, TQ1_0 and TQ2_0 dequantize (ggml) to the absmean-ternarised weights exactly", async () => {
    const config = JSON.parse(readFileSync(join(source, "config.json"), "utf8"));
    writeFileSync(join(source, "config.json"), JSON.stringify({ ...config, hidden_act: "silu" }, null, 2));
    const weights = new SafetensorsFile(join(source, "model.safetensors"));
    for (const scheme of ["tq1_0", "tq2_0"]) {
      const path = join(dir, `master-${scheme}.gguf`);
      await convertToGguf({ source, output: path, scheme: resolveScheme({ scheme }) });
      const parsed = await gguf(path, { allowLocalFile: true });
      const file = readFileSync(path);
      let tensors = 0;
      let mismatches = 0;
      for (const info of parsed.tensorInfos) {
        const bytesPerBlock = TQ_BLOCK_BYTES[info.dtype];
        if (bytesPerBlock === undefined) continue;
        const count = info.shape.reduce((a, b) => a * Number(b), 1);
        const start = Number(parsed.tensorDataOffset + info.offset);
        const ours = ggml.dequantize(info.dtype, file.subarray(start, start + (count / 256) * bytesPerBlock), count);
        const [, block, role] = /^blk\.(\d+)\.(\w+)\.weight$/.exec(info.name)!;
        // transformers' WeightQuant (float32), rounded to the checkpoint's BF16 as llama.cpp's converter keeps it.
        const expected = bitnetWeightQuant(Float32Array.from(weights.read(`model.layers.${block}.${HF_NAME[role!]}.weight`).data));
        for (let i = 0; i < count; i++) if (ours[i] !== roundToDtype(expected[i]!, "BF16")) mismatches++;
        tensors++;
      }
      console.log(`[bitnet-master] ${scheme}: ${tensors} ternary tensors, ${mismatches} weights differ from the absmean-ternarised source`);
      expect(tensors).toBe(BITNET_SPEC.layers * 7);
      expect(mismatches).toBe(0);
    }
  });
});
