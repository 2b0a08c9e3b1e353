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
 * divisors from a `rope_freqs` tensor rather than from metadata. Computed as
 * llama.cpp's converter does (conversion/llama.py generate_extra_tensors), in
 * float32 at every step: its values are float32 torch tensors, and torch divides
 * a Python number by a tensor as `tensor.reciprocal() * number`.
 */
export function* llama3RopeFactors(hparams: DecoderHparams): Iterable<GeneratedTensor> {
  const scaling = hparams.ropeScaling;
  if (scaling.kind !== "llama3") return;
  const f = Math.fround;
  const factor = f(scaling.factor);
  const lowFreqFactor = f(scaling.lowFreqFactor);
  const originalContext = f(scaling.originalContext);
  // Python floats, compared with and subtracted from float32 tensors as float32.
  const lowFreqWavelength = f(scaling.originalContext / scaling.lowFreqFactor);
  const highFreqWavelength = f(scaling.originalContext / scaling.highFreqFactor);
  const band = f(scaling.highFreqFactor - scaling.lowFreqFactor);
  const twoPi = f(2 * Math.PI);
  const values = new Float32Array(hparams.headDim / 2);
  for (let i = 0; i < values.length; i++) {
    const frequency = f(1 / f(f(hparams.ropeTheta) ** f((2 * i) / hparams.headDim)));
    const wavelength = f(f(1 / frequency) * twoPi);
    if (wavelength < highFreqWavelength) values[i] = 1;
    else if (wavelength > lowFreqWavelength) values[i] = factor;
    else {
      const smooth = f(f(f(f(1 / wavelength) * originalContext) - lowFreqFactor) / band);
      values[i] = f(1 / f(f(f(1 - smooth) / factor) + smooth));
    }
  }
  yield { gguf: "rope_freqs.weight", values };
}
