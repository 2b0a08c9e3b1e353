import type { GgufValue } from "../writers/gguf/metadata.js";
import { f32, i32s, str, u32 } from "../writers/gguf/metadata.js";
import type { ConfigReader, DecoderHparams } from "./config.js";
import type { Architecture, DecoderFeatures } from "./types.js";

/** The `{arch}.*` hyperparameter keys llama.cpp reads for a decoder-only model. */
export function* decoderMetadata(arch: Architecture, hparams: DecoderHparams, features: DecoderFeatures, config: ConfigReader): Iterable<[string, GgufValue]> {
  const key = (name: string) => `${arch.gguf}.${name}`;
  yield [key("vocab_size"), u32(hparams.vocabSize)];
  yield [key("context_length"), u32(hparams.contextLength)];
  yield [key("embedding_length"), u32(hparams.hiddenSize)];
  yield [key("block_count"), u32(hparams.layers)];
  yield [key("feed_forward_length"), u32(hparams.intermediateSize)];
  yield [key("attention.head_count"), u32(hparams.heads)];
  // Hybrid models list it per layer, 0 for layers without attention (llama.cpp's converter writes an INT32 array).
  yield [key("attention.head_count_kv"), arch.blockRoles ? i32s(kvHeadsPerLayer(arch, hparams, config)) : u32(hparams.kvHeads)];
  yield [key("attention.layer_norm_rms_epsilon"), f32(hparams.rmsNormEps)];
  if (hparams.explicitHeadDim !== undefined) {
    yield [key("attention.key_length"), u32(hparams.explicitHeadDim)];
    yield [key("attention.value_length"), u32(hparams.explicitHeadDim)];
  }
  yield [key("rope.dimension_count"), u32(hparams.ropeDim)];
  yield [key("rope.freq_base"), f32(hparams.ropeTheta)];
  const scaling = hparams.ropeScaling;
  if (scaling.kind === "linear" || scaling.kind === "yarn") {
    yield [key("rope.scaling.type"), str(scaling.kind)];
    yield [key("rope.scaling.factor"), f32(scaling.factor)];
  }
  if (scaling.kind === "yarn") {
    yield [key("rope.scaling.original_context_length"), u32(scaling.originalContext)];
    if (scaling.extFactor !== undefined) yield [key("rope.scaling.yarn_ext_factor"), f32(scaling.extFactor)];
    if (scaling.attnFactor !== undefined) yield [key("rope.scaling.yarn_attn_factor"), f32(scaling.attnFactor)];
    if (scaling.betaFast !== undefined) yield [key("rope.scaling.yarn_beta_fast"), f32(scaling.betaFast)];
    if (scaling.betaSlow !== undefined) yield [key("rope.scaling.yarn_beta_slow"), f32(scaling.betaSlow)];
  }
  if (scaling.kind === "longrope") {
    // The type makes llama.cpp load the factor tensors (minicpm); the original context picks long vs short.
    yield [key("rope.scaling.type"), str("longrope")];
    yield [key("rope.scaling.original_context_length"), u32(scaling.originalContext)];
    yield [key("rope.scaling.attn_factor"), f32(scaling.attnFactor)];
  }
  // llama.cpp's names for the muP multipliers (LLM_KV_ATTENTION_SCALE, EMBEDDING_SCALE, RESIDUAL_SCALE, LOGIT_SCALE).
  if (!features.multipliersImplied) yield* multiplierKeys(key, features);
  if (arch.extraMetadata) yield* arch.extraMetadata(hparams, config);
}

function* multiplierKeys(key: (name: string) => string, features: DecoderFeatures): Iterable<[string, GgufValue]> {
  if (features.attentionScale !== undefined) yield [key("attention.scale"), f32(features.attentionScale)];
  if (features.embeddingScale !== undefined) yield [key("embedding_scale"), f32(features.embeddingScale)];
  if (features.residualScale !== undefined) yield [key("residual_scale"), f32(features.residualScale)];
  if (features.logitDivisor !== undefined) yield [key("logit_scale"), f32(features.logitDivisor)];
}

/** KV heads of each layer: none in the blocks a hybrid architecture gives no attention. */
export function kvHeadsPerLayer(arch: Architecture, hparams: DecoderHparams, config: ConfigReader): number[] {
  return withoutAttentionless(arch, config, Array.from({ length: hparams.layers }, () => hparams.kvHeads));
}

/** `kvHeads` (one per layer) with 0 for the blocks without attention (no attn_k role). */
export function withoutAttentionless(arch: Architecture, config: ConfigReader, kvHeads: readonly number[]): number[] {
  const roles = arch.blockRoles?.(config);
  return kvHeads.map((n, block) => (!roles || roles(block).includes("attn_k") ? n : 0));
}

/** The shared hyperparameters with the architecture's corrections; `config` carries arch.configDefaults. */
export function architectureHparams(arch: Architecture, config: ConfigReader): DecoderHparams {
  const hparams = config.decoderHparams();
  return arch.hparams?.(hparams, config) ?? hparams;
}
