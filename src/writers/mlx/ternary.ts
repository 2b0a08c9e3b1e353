/**
 * Ternary (BitNet b1.58-style) weights as MLX 2-bit affine groups.
 *
 * A tensor whose every value is 0 or ±s is stored losslessly with scale = s and
 * bias = -s in every group: q = 0, 1, 2 dequantize to -s, 0, +s exactly
 * (s * 2 - s = s and s * 1 - s = 0 are exact in any float format). MLX's own
 * quantizer would not be lossless here: for a group {-s, 0, s} it picks
 * scale = -s/2 and bias = s, and -s falls off the 2-bit grid.
 */

import { roundHalfToEven } from "../../quant/float.js";
import type { AffineGroups } from "./affine.js";

/** Exact encoding of ternary values with one scale for the whole tensor. */
export function encodeTernary(values: Float32Array, scale: number, groupSize: number, out: AffineGroups): void {
  const { q, scales, biases } = out;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    q[i] = v === 0 ? 1 : v > 0 ? 2 : 0;
  }
  const groups = values.length / groupSize;
  scales.fill(scale, 0, groups);
  biases.fill(-scale, 0, groups);
}

/**
 * Lossy ternarization of arbitrary values, for a checkpoint that is not ternary
 * when the caller accepted the loss: per group, s = mean |w| (BitNet b1.58's
 * absmean, taken per group rather than per tensor), rounded to the weight dtype
 * by `round`, and q = clamp(rint(w / s), -1, 1) + 1. Returns the number of
 * values that were not finite (stored as 0).
 */
export function encodeLossyTernary(values: Float32Array, groupSize: number, round: (x: number) => number, out: AffineGroups): number {
  const { q, scales, biases } = out;
  const groups = values.length / groupSize;
  let nonFinite = 0;
  for (let g = 0; g < groups; g++) {
    const start = g * groupSize;
    let sum = 0;
    for (let i = start; i < start + groupSize; i++) {
      const v = values[i]!;
      if (Number.isFinite(v)) sum += Math.abs(v);
    }
    const scale = round(sum / groupSize);
    for (let i = start; i < start + groupSize; i++) {
      const v = values[i]!;
      if (!Number.isFinite(v)) nonFinite++;
      if (!(scale > 0) || !Number.isFinite(v)) {
        q[i] = 1;
        continue;
      }
      const t = roundHalfToEven(v / scale);
      q[i] = t > 0 ? 2 : t < 0 ? 0 : 1;
    }
    scales[g] = scale;
    biases[g] = -scale;
  }
  return nonFinite;
}
