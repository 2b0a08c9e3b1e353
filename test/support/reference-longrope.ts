// LongRoPE for the reference forward pass (Phi-3, MiniCPM4), following transformers'
// _compute_longrope_parameters and its dynamic update: the long factors when the sequence is
// longer than the original context, else the short ones; cos and sin scaled by the attention factor.
// Shares no code with src/.

type Config = Record<string, unknown>;

export interface RopeTables {
  /** Inverse frequency of each rotated pair, [rotaryDim / 2]. */
  readonly invFreq: Float64Array;
  /** Multiplier on cos and sin (the attention factor; 1 for plain RoPE). */
  readonly scale: number;
}

function factorList(scaling: Config, key: string, count: number): number[] {
  const value = scaling[key];
  if (!Array.isArray(value) || value.length !== count || !value.every((x) => typeof x === "number")) {
    throw new Error(`reference-longrope: rope_scaling.${key} must list ${count} numbers`);
  }
  return value as number[];
}

/**
 * The tables for a sequence of `seqLen` tokens. Phi-3 keeps original_max_position_embeddings at
 * the top level, MiniCPM4 inside rope_scaling; without either, the context is its own original.
 */
export function longRopeTables(config: Config, scaling: Config, rotaryDim: number, theta: number): (seqLen: number) => RopeTables {
  const maxPositions = config["max_position_embeddings"] as number;
  const original = (config["original_max_position_embeddings"] ?? scaling["original_max_position_embeddings"] ?? maxPositions) as number;
  const factor = maxPositions / original;
  const given = scaling["attention_factor"];
  const scale = typeof given === "number" ? given : factor <= 1 ? 1 : Math.sqrt(1 + Math.log(factor) / Math.log(original));
  const tables = (ext: number[]): RopeTables => ({
    invFreq: Float64Array.from(ext, (f, i) => 1 / (f * Math.pow(theta, (2 * i) / rotaryDim))),
    scale,
  });
  const long = tables(factorList(scaling, "long_factor", rotaryDim / 2));
  const short = tables(factorList(scaling, "short_factor", rotaryDim / 2));
  return (seqLen) => (seqLen > original ? long : short);
}
