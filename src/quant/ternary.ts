/**
 * Ternary ("1.58-bit") weights: every value of a tensor is -s, 0 or +s. TQ1_0 and
 * TQ2_0 store exactly that (a trit per weight and an fp16 scale per 256), so a ternary
 * checkpoint converts without loss; anything else would be badly damaged.
 */

/**
 * The tensor's scale s if every value is in {-s, 0, +s}; 0 for an all-zero tensor; undefined
 * otherwise. `previous` continues a check over a tensor read in chunks.
 */
export function ternaryScale(values: Float32Array, previous: number | undefined = 0): number | undefined {
  if (previous === undefined) return undefined;
  let scale = previous;
  for (let i = 0; i < values.length; i++) {
    const magnitude = Math.abs(values[i]!);
    if (magnitude === 0) continue;
    if (scale === 0) scale = magnitude;
    else if (magnitude !== scale) return undefined;
  }
  return scale;
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

function roundHalfToEven(x: number): number {
  const floor = Math.floor(x);
  const fraction = x - floor;
  if (fraction !== 0.5) return Math.round(x);
  return floor % 2 === 0 ? floor : floor + 1;
}
