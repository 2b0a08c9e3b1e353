/**
 * MLX's affine quantization, value for value.
 *
 * Follows the CPU kernel `quantize` in mlx/backend/cpu/quantized.cpp (and the
 * ops fallback `affine_quantize` in mlx/ops.cpp, which computes the same thing):
 * per group of `groupSize` consecutive values of a row,
 *
 *   scale = max((max - min) / (2^bits - 1), 1e-7), negated unless |min| > |max|
 *   edge  = whichever of min / max has the larger magnitude
 *   q0    = rint(edge / scale)
 *   if q0 != 0: scale = edge / q0, bias = edge      (the edge is exact, 0 lands on the grid)
 *   else:       bias = 0
 *   q     = clamp(rint((w - bias) / scale), 0, 2^bits - 1)
 *
 * Everything is float32 arithmetic (Math.fround after every operation), rint
 * rounds half to even, and the min/max/clamp comparisons are written the way
 * std::min / std::max evaluate them so NaN behaves as it does there. Scales and
 * biases come out as float32; the caller casts them to the weight dtype, as
 * MLX's `static_cast<T>(scale)` does.
 */
import { roundHalfToEven } from "../../quant/float.js";

/** Bit widths MLX's affine mode accepts (mlx/ops.cpp affine_quantize: 2..8 except 7). */
export type MlxBits = 2 | 3 | 4 | 5 | 6 | 8;
export const MLX_BITS: readonly MlxBits[] = [2, 3, 4, 5, 6, 8];

/** Group sizes MLX's affine mode accepts (mlx/ops.cpp affine_quantize). */
export type MlxGroupSize = 32 | 64 | 128;
export const MLX_GROUP_SIZES: readonly MlxGroupSize[] = [32, 64, 128];

const fround = Math.fround;
const EPS = fround(1e-7);

export interface AffineGroups {
  /** One quantized integer per input value, 0 .. 2^bits - 1. */
  readonly q: Uint8Array;
  /** One float32 scale and bias per group, before the cast to the weight dtype. */
  readonly scales: Float32Array;
  readonly biases: Float32Array;
}

/**
 * Quantizes `values` (a whole number of groups) into `out`, starting at group
 * `firstGroup` of `out` (so a caller can fill a buffer chunk by chunk). Returns
 * how many values were NaN, which MLX turns into an unspecified integer and we
 * store as 0.
 */
export function affineQuantize(values: Float32Array, groupSize: number, bits: MlxBits, out: AffineGroups): number {
  const groups = values.length / groupSize;
  if (!Number.isInteger(groups)) throw new Error(`affineQuantize: ${values.length} values are not a whole number of groups of ${groupSize}`);
  const nBins = (1 << bits) - 1;
  const { q, scales, biases } = out;
  let nan = 0;
  for (let g = 0; g < groups; g++) {
    const start = g * groupSize;
    const end = start + groupSize;
    let wMax = -Infinity;
    let wMin = Infinity;
    for (let i = start; i < end; i++) {
      const w = values[i]!;
      if (wMax < w) wMax = w; // std::max(w_max, w)
      if (w < wMin) wMin = w; // std::min(w_min, w)
    }
    const mask = Math.abs(wMin) > Math.abs(wMax);
    let scale = fround(fround(wMax - wMin) / nBins);
    if (scale < EPS) scale = EPS; // std::max(scale, eps)
    if (!mask) scale = -scale;
    const edge = mask ? wMin : wMax;
    const q0 = roundHalfToEven(fround(edge / scale));
    let bias = 0;
    if (q0 !== 0) {
      scale = fround(edge / q0);
      bias = edge;
    }
    for (let i = start; i < end; i++) {
      let x = roundHalfToEven(fround(fround(values[i]! - bias) / scale));
      if (x < 0) x = 0; // std::max(x, 0.0f)
      if (nBins < x) x = nBins; // std::min(x, n_bins)
      if (x !== x) {
        nan++;
        x = 0;
      }
      q[i] = x;
    }
    scales[g] = scale;
    biases[g] = bias;
  }
  return nan;
}
