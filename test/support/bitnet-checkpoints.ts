// BitNet b1.58 checkpoints in the layout of microsoft/bitnet-b1.58-2B-4T (the model mlx-lm's
// models/bitnet.py is written for): relu² FFN, sub-norms named attn_sub_norm / ffn_sub_norm,
// tied embeddings, and quantization_config quant_method "bitnet".

import { roundToDtype, type TensorToWrite } from "./safetensors.js";
import { syntheticTensors, writeHfFolder, type SyntheticSpec } from "./synthetic-checkpoint.js";

export const BITNET_SPEC: SyntheticSpec = { modelType: "bitnet", hidden: 256, layers: 2, heads: 4, kvHeads: 1, headDim: 64, intermediate: 512, vocab: 4096, seed: 21, dtype: "BF16" };

/**
 * huggingface.co/microsoft/bitnet-b1.58-2B-4T-bf16 config.json, every key kept (as transcribed in
 * the model's notes, e.g. kevbuh/bitnet's README, and unsloth-zoo's BitNet test for the
 * quantization_config); sizes, layer count, vocabulary and token ids are the spec's. It has no
 * head_dim: hidden_size / num_attention_heads. The packed release carries the same keys with
 * quantization_mode "offline" (vLLM's BitNetBitBLASConfig docstring quotes that block).
 */
export function bitnet2B4TConfig(spec: SyntheticSpec, quantizationMode: "online" | "offline", tied = true): Record<string, unknown> {
  return {
    architectures: ["BitNetForCausalLM"],
    auto_map: { AutoConfig: "configuration_bitnet.BitNetConfig", AutoModelForCausalLM: "modeling_bitnet.BitNetForCausalLM" },
    bos_token_id: 1,
    eos_token_id: 2,
    hidden_act: "relu2",
    hidden_size: spec.hidden,
    initializer_range: 0.02,
    intermediate_size: spec.intermediate,
    max_position_embeddings: 4096,
    model_type: "bitnet",
    rms_norm_eps: 1e-5,
    num_attention_heads: spec.heads,
    num_hidden_layers: spec.layers,
    num_key_value_heads: spec.kvHeads,
    rope_theta: 500000.0,
    tie_word_embeddings: tied,
    torch_dtype: "bfloat16",
    use_cache: true,
    vocab_size: spec.vocab,
    quantization_config: { quant_method: "bitnet", linear_class: "autobitlinear", quantization_mode: quantizationMode },
  };
}

/** The synthetic tensors under 2B-4T's sub-norm names. */
function tensors2B4T(spec: SyntheticSpec): TensorToWrite[] {
  return syntheticTensors(spec).map((t) => ({
    ...t,
    name: t.name.replace(".self_attn.inner_attn_ln.", ".self_attn.attn_sub_norm.").replace(".mlp.ffn_layernorm.", ".mlp.ffn_sub_norm."),
  }));
}

/** BF16 master weights with the -bf16 release's config (quantization_mode online). */
export function writeBitnetMaster(dir: string, tied = true): string {
  const spec = { ...BITNET_SPEC, tieEmbeddings: tied };
  writeHfFolder(dir, bitnet2B4TConfig(spec, "online", tied), tensors2B4T(spec));
  return dir;
}

/**
 * The packed release's layout: every linear weight as uint8 [out/4, in], row block k at bits
 * 2k..2k+1, code - 1 the trit, beside a BF16 weight_scale that llama.cpp's converter divides by
 * (conversion/base.py dequant_bitnet, "the scale is inverted"). Powers of two keep 1/weight_scale
 * exact in BF16. Returns the codes, scale and weights each linear weight stands for.
 */
export function writeBitnetPacked(dir: string): Map<string, { codes: Uint8Array; weightScale: number; values: Float32Array }> {
  let seed = 777;
  const random = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const expected = new Map<string, { codes: Uint8Array; weightScale: number; values: Float32Array }>();
  const tensors = tensors2B4T(BITNET_SPEC).flatMap((tensor): TensorToWrite[] => {
    if (!/_proj\.weight$/.test(tensor.name)) return [tensor];
    const [rows, columns] = tensor.shape as [number, number];
    const weightScale = 2 ** (2 + Math.floor(random() * 5));
    const codes = new Uint8Array((rows / 4) * columns);
    const values = new Float32Array(rows * columns);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < columns; c++) {
        const code = Math.floor(random() * 3);
        codes[(r % (rows / 4)) * columns + c]! += code * 4 ** Math.floor(r / (rows / 4));
        values[r * columns + c] = roundToDtype((code - 1) / weightScale, "BF16");
      }
    }
    expected.set(tensor.name, { codes, weightScale, values });
    return [
      { name: tensor.name, shape: [rows / 4, columns], data: codes, dtype: "U8" },
      { name: tensor.name.replace(/\.weight$/, ".weight_scale"), shape: [1], data: [weightScale], dtype: "BF16" },
    ];
  });
  writeHfFolder(dir, bitnet2B4TConfig(BITNET_SPEC, "offline"), tensors);
  return expected;
}

