import type { DecoderHparams } from "./config.js";
import { DECODER_ROLES } from "./tensor-names.js";
import { PLAIN_DECODER, type Architecture, type GeneratedTensor } from "./types.js";

/** Llama 1/2/3 and Mistral: the reference decoder. */
export const llama: Architecture = {
  gguf: "llama",
  hfArchitectures: ["LlamaForCausalLM", "MistralForCausalLM"],
  formats: ["gguf", "onnx", "mlx"],
  tensors: DECODER_ROLES,
  interleaveRopeRows: true,
  features: () => PLAIN_DECODER,
  generatedTensors: llama3RopeFactors,
  // llama.cpp: 80 layers is 65B with full attention, 70B with grouped-query attention.
  is70B: ({ layers, heads, kvHeads }) => layers === 80 && heads !== kvHeads,
};

/**
 * Llama 3.1+ stretch low RoPE frequencies; llama.cpp reads the per-frequency
 * divisors from a `rope_freqs` tensor rather than from metadata.
 */
export function* llama3RopeFactors(hparams: DecoderHparams): Iterable<GeneratedTensor> {
  const scaling = hparams.ropeScaling;
  if (scaling.kind !== "llama3") return;
  const { factor, lowFreqFactor, highFreqFactor, originalContext } = scaling;
  const lowFreqWavelength = originalContext / lowFreqFactor;
  const highFreqWavelength = originalContext / highFreqFactor;
  const values = new Float32Array(hparams.headDim / 2);
  for (let i = 0; i < values.length; i++) {
    // Computed in float32 steps, as the reference converter does with torch.float32.
    const frequency = Math.fround(1 / Math.fround(hparams.ropeTheta ** Math.fround((2 * i) / hparams.headDim)));
    const wavelength = (2 * Math.PI) / frequency;
    if (wavelength < highFreqWavelength) values[i] = 1;
    else if (wavelength > lowFreqWavelength) values[i] = factor;
    else {
      const smooth = (originalContext / wavelength - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
      values[i] = 1 / ((1 - smooth) / factor + smooth);
    }
  }
  yield { gguf: "rope_freqs.weight", values };
}
