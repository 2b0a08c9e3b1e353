// Regression: Llama 3's rope_freqs tensor equals the one llama.cpp's converter writes, bit for bit.
// Ours used to compute the wavelengths and the smooth blend in float64 and differed from
// llama.cpp's float32 tensors in the last bit of 3 values each for both models below.

import { describe, expect, it } from "vitest";
import { ConfigReader } from "../src/arch/config.js";
import { llama3RopeFactors } from "../src/arch/llama.js";
import { referenceLlama3RopeFreqs } from "./support/llama3-rope-reference.js";

// The rope keys of huggingface.co/meta-llama/Llama-3.2-1B and /Llama-3.1-8B config.json, with the
// shape keys the hyperparameter reader needs (head_dim 64 and 128), as those files state them.
const MODELS = {
  "Llama-3.2-1B": {
    hidden_size: 2048, num_attention_heads: 32, num_key_value_heads: 8, head_dim: 64, num_hidden_layers: 16,
    intermediate_size: 8192, max_position_embeddings: 131072, rms_norm_eps: 1e-5, vocab_size: 128256, tie_word_embeddings: true,
    rope_theta: 500000.0,
    rope_scaling: { factor: 32.0, high_freq_factor: 4.0, low_freq_factor: 1.0, original_max_position_embeddings: 8192, rope_type: "llama3" },
  },
  "Llama-3.1-8B": {
    hidden_size: 4096, num_attention_heads: 32, num_key_value_heads: 8, num_hidden_layers: 32,
    intermediate_size: 14336, max_position_embeddings: 131072, rms_norm_eps: 1e-5, vocab_size: 128256, tie_word_embeddings: false,
    rope_theta: 500000.0,
    rope_scaling: { factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 8192, rope_type: "llama3" },
  },
} as const;

const bits = (values: Float32Array) => Array.from(new Uint32Array(values.buffer, values.byteOffset, values.length));

/** The float64 computation ours used to do, to show the test tells the two apart. */
function float64Freqs(theta: number, headDim: number, factor: number): Float32Array {
  const out = new Float32Array(headDim / 2);
  for (let i = 0; i < out.length; i++) {
    const freq = Math.fround(1 / Math.fround(theta ** Math.fround((2 * i) / headDim)));
    const wavelen = (2 * Math.PI) / freq;
    const smooth = (8192 / wavelen - 1) / 3;
    out[i] = wavelen < 2048 ? 1 : wavelen > 8192 ? factor : 1 / ((1 - smooth) / factor + smooth);
  }
  return out;
}

describe("llama3 rope_freqs equal llama.cpp's converter's float32 values", () => {
  for (const [model, config] of Object.entries(MODELS)) {
    it(`${model}: every value bitwise equal`, () => {
      const hparams = new ConfigReader(config, `${model}/config.json`).decoderHparams();
      const generated = [...llama3RopeFactors(hparams)];
      expect(generated.map((t) => t.gguf)).toEqual(["rope_freqs.weight"]);
      const ours = generated[0]!.values;
      const headDim = hparams.headDim;
      const { factor } = config.rope_scaling;
      const expected = referenceLlama3RopeFreqs({ theta: config.rope_theta, headDim, factor, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 8192 });
      expect(ours.length).toBe(headDim / 2);
      const differing = bits(ours).filter((b, i) => b !== bits(expected)[i]).length;
      const blended = Array.from(expected).filter((v) => v !== 1 && v !== factor).length;
      const oldDiffering = bits(float64Freqs(config.rope_theta, headDim, factor)).filter((b, i) => b !== bits(expected)[i]).length;
      console.log(`[llama3-rope] ${model}: ${ours.length} values (${blended} blended), ${differing} differ from the float32 reference; the float64 computation differed in ${oldDiffering}`);
      expect(bits(ours)).toEqual(bits(expected));
      expect(blended).toBeGreaterThan(0);
      expect(oldDiffering).toBeGreaterThan(0);
    });
  }
});
