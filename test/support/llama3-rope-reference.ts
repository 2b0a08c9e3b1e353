// Llama 3's rope_freqs as llama.cpp's converter computes them, transcribed independently of src/
// from /work/llama.cpp-src conversion/llama.py (generate_extra_tensors, lines 298-326) with
// torch's float32 semantics written out: every intermediate below is a float32 tensor, so each
// operation rounds to float32 (a Float32Array store here).
//
//  line 304  freqs = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
//            arange is exact; `/ dim` rounds; `base ** t` is torch.pow(base, t) in float32
//            (taken as the correctly rounded float32 power); `1.0 / t` is Tensor.__rdiv__,
//            t.reciprocal() * 1.0 (torch/_tensor.py), one rounding.
//  line 317  wavelen = 2 * math.pi / freq: Python computes 2 * math.pi in double, then
//            freq.reciprocal() * float32(2 * pi): two roundings.
//  line 318/320  comparisons of the float32 wavelen with Python floats (exact here).
//  line 321  factor appended as a Python float, stored as float32 by torch.tensor(..., float32).
//  line 323  smooth = (old_context_len / wavelen - low) / (high - low):
//            wavelen.reciprocal() * old_context_len, minus low, divided by (high - low) (a
//            Python float), each rounded.
//  line 324  1 / ((1 - smooth) / factor + smooth): rsub, div, add, reciprocal, each rounded.

const cell = new Float32Array(1);
const r32 = (x: number): number => ((cell[0] = x), cell[0]!);

export interface Llama3RopeScaling {
  readonly theta: number;
  readonly headDim: number;
  readonly factor: number;
  readonly lowFreqFactor: number;
  readonly highFreqFactor: number;
  readonly originalContext: number;
}

export function referenceLlama3RopeFreqs(p: Llama3RopeScaling): Float32Array {
  const out: number[] = [];
  const lowWavelen = p.originalContext / p.lowFreqFactor; // Python float
  const highWavelen = p.originalContext / p.highFreqFactor;
  for (let k = 0; k < p.headDim; k += 2) {
    const exponent = r32(k / p.headDim);
    const power = r32(Math.pow(r32(p.theta), exponent));
    const freq = r32(r32(1 / power) * 1.0);
    const wavelen = r32(r32(1 / freq) * r32(2 * Math.PI));
    if (wavelen < r32(highWavelen)) {
      out.push(1);
    } else if (wavelen > r32(lowWavelen)) {
      out.push(r32(p.factor));
    } else {
      const ratio = r32(r32(1 / wavelen) * r32(p.originalContext));
      const shifted = r32(ratio - r32(p.lowFreqFactor));
      const smooth = r32(shifted / r32(p.highFreqFactor - p.lowFreqFactor));
      const oneMinus = r32(1 - smooth);
      const scaled = r32(oneMinus / r32(p.factor));
      const sum = r32(scaled + smooth);
      out.push(r32(r32(1 / sum) * 1));
    }
  }
  return Float32Array.from(out);
}
