import type { DecoderHparams, RopeScaling } from "../../arch/config.js";
import { UserError } from "../../errors.js";

/** cos/sin of position x inverse frequency for every position up to the context length, computed in float64. */
export function rotaryCaches(h: DecoderHparams): { cos: Float32Array; sin: Float32Array } {
  const half = h.headDim / 2;
  const inv = inverseFrequencies(h.ropeTheta, h.headDim, h.ropeScaling);
  const cos = new Float32Array(h.contextLength * half);
  const sin = new Float32Array(h.contextLength * half);
  for (let p = 0; p < h.contextLength; p++) {
    for (let i = 0; i < half; i++) {
      const angle = p * inv[i]!;
      cos[p * half + i] = Math.cos(angle);
      sin[p * half + i] = Math.sin(angle);
    }
  }
  return { cos, sin };
}

function inverseFrequencies(theta: number, headDim: number, scaling: RopeScaling): Float64Array {
  const half = headDim / 2;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / Math.pow(theta, (2 * i) / headDim);
  switch (scaling.kind) {
    case "none":
      return inv;
    case "linear":
      return inv.map((f) => f / scaling.factor);
    case "llama3": {
      const { factor, lowFreqFactor, highFreqFactor, originalContext } = scaling;
      const lowWavelength = originalContext / lowFreqFactor;
      const highWavelength = originalContext / highFreqFactor;
      return inv.map((f) => {
        const wavelength = (2 * Math.PI) / f;
        if (wavelength < highWavelength) return f;
        if (wavelength > lowWavelength) return f / factor;
        const smooth = (originalContext / wavelength - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
        return (1 - smooth) * (f / factor) + smooth * f;
      });
    }
    case "yarn":
    case "longrope":
      throw new UserError(`${scaling.kind} rope scaling is not supported by the ONNX export yet (supported: none, linear, llama3)`);
  }
}
