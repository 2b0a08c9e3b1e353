/**
 * Ternary ("1.58-bit") weights: every value of a tensor is -s, 0 or +s. TQ1_0 and
 * TQ2_0 store exactly that (a trit per weight and an fp16 scale per 256), so a ternary
 * checkpoint converts without loss; anything else would be badly damaged.
 */
import { roundHalfToEven } from "./float.js";

/**
 * Follows a tensor chunk by chunk: its scale s is the first nonzero magnitude seen (a
 * non-finite one is no scale), and every later value must be 0 or ±s. The one check for
 * every writer that stores ternary weights losslessly and for `inspect`.
 */
export class TernaryScan {
  /** s so far; undefined while only zeros were seen. */
  scale: number | undefined;
  /** False from the first value that is neither 0 nor ±scale. */
  ternary = true;
  /** That value. */
  offender: number | undefined;

  /** Scans the next chunk; false once the tensor is known not to be ternary (later chunks are not looked at). */
  check(values: Float32Array): boolean {
    if (!this.ternary) return false;
    let scale = this.scale;
    for (let i = 0; i < values.length; i++) {
      const value = values[i]!;
      if (value === 0) continue;
      const magnitude = Math.abs(value);
      if (scale === undefined && Number.isFinite(magnitude)) scale = magnitude;
      else if (magnitude !== scale) {
        this.ternary = false;
        this.offender = value;
        break;
      }
    }
    this.scale = scale;
    return this.ternary;
  }

  /** The tensor's scale if it is ternary (0 for an all-zero tensor), else undefined. */
  get exactScale(): number | undefined {
    return this.ternary ? (this.scale ?? 0) : undefined;
  }
}

/**
 * BitNet's weight quantisation of full-precision master weights, in float32 as
 * llama.cpp's converter does it: s = max(mean|W|, 1e-5), W' = clamp(round(W / s), -1, 1) * s
 * (computed as W * (1/s), rounded half to even, divided by 1/s).
 */
export function absmeanTernarise(values: Float32Array): Float32Array {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += Math.abs(values[i]!);
  const scale = Math.fround(Math.max(Math.fround(sum / values.length), 1e-5));
  const inverse = Math.fround(1 / scale);
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const trit = Math.max(-1, Math.min(1, roundHalfToEven(Math.fround(values[i]! * inverse))));
    out[i] = trit / inverse;
  }
  return out;
}
