import type { DecoderHparams } from "./config.js";
import type { GeneratedTensor } from "./types.js";

/**
 * LongRoPE's per-frequency divisors as llama.cpp's converters write them (conversion/phi.py,
 * conversion/minicpm.py): two float32 tensors of rope_dim/2; llama.cpp's graph picks the long
 * one when the context exceeds rope.scaling.original_context_length (llama_model::get_rope_factors).
 */
export function* longRopeFactors(hparams: DecoderHparams): Iterable<GeneratedTensor> {
  const scaling = hparams.ropeScaling;
  if (scaling.kind !== "longrope") return;
  yield { gguf: "rope_factors_long.weight", values: Float32Array.from(scaling.longFactor) };
  yield { gguf: "rope_factors_short.weight", values: Float32Array.from(scaling.shortFactor) };
}
