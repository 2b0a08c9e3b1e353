import type { DecoderHparams, RopeScaling } from "../../arch/config.js";
import { UserError } from "../../errors.js";

export interface RotaryTable {
  readonly cos: Float32Array;
  readonly sin: Float32Array;
}

/**
 * cos/sin of position x inverse frequency for every position up to the context length and each
 * rotated pair (rope_dim / 2 of them), computed in float64. LongRoPE has two tables (short and
 * long factors) chosen at run time by the total sequence length, both scaled by its attention factor.
 */
export interface RotaryCaches {
  readonly short: RotaryTable;
  readonly long?: { readonly table: RotaryTable; readonly originalContext: number };
}

/** One cos or sin table holds context x rope_dim/2 floats; beyond this it is a config error, not a model. */
const MAX_TABLE_FLOATS = 2 ** 27;

/**
 * Refuses, before any work, a context whose cos/sin tables (sized by max_position_embeddings, as
 * onnxruntime-genai's builder sizes them) could not be held: 2^27 floats per table covers a 1M
 * context at rope_dim 256.
 */
export function checkRotaryTables(h: DecoderHparams, configFile: string): void {
  const floats = h.contextLength * (h.ropeDim / 2);
  if (floats > MAX_TABLE_FLOATS) {
    throw new UserError(
      `max_position_embeddings ${h.contextLength} would make each ONNX cos/sin table ${(floats * 4 / 2 ** 30).toFixed(1)} GiB; ` +
        "set it in config.json to the longest context the model is to run",
      { file: configFile },
    );
  }
}

export function rotaryCaches(h: DecoderHparams): RotaryCaches {
  const s = h.ropeScaling;
  if (s.kind !== "longrope") return { short: table(h, inverseFrequencies(h.ropeTheta, h.ropeDim, s), 1) };
  const withFactors = (factors: readonly number[]) => inverseFrequencies(h.ropeTheta, h.ropeDim, { kind: "none" }).map((f, i) => f / factors[i]!);
  return {
    short: table(h, withFactors(s.shortFactor), s.attnFactor),
    long: { table: table(h, withFactors(s.longFactor), s.attnFactor), originalContext: s.originalContext },
  };
}

function table(h: DecoderHparams, inv: Float64Array, scale: number): RotaryTable {
  const half = h.ropeDim / 2;
  const cos = new Float32Array(h.contextLength * half);
  const sin = new Float32Array(h.contextLength * half);
  for (let p = 0; p < h.contextLength; p++) {
    for (let i = 0; i < half; i++) {
      const angle = p * inv[i]!;
      cos[p * half + i] = Math.cos(angle) * scale;
      sin[p * half + i] = Math.sin(angle) * scale;
    }
  }
  return { cos, sin };
}

function inverseFrequencies(theta: number, ropeDim: number, scaling: RopeScaling): Float64Array {
  const half = ropeDim / 2;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / Math.pow(theta, (2 * i) / ropeDim);
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
      throw new UserError(`${scaling.kind} rope scaling is not supported by the ONNX export yet (supported: none, linear, llama3, longrope)`);
  }
}
