import { UserError } from "../errors.js";
import { f32, u32 } from "../writers/gguf/metadata.js";
import type { ConfigReader, DecoderHparams, HfConfig } from "./config.js";
import { TENSOR_ROLES, type TensorRole } from "./tensor-names.js";
import { PLAIN_DECODER, type Architecture } from "./types.js";

const ROLES: readonly TensorRole[] = [
  "token_embd", "output_norm", "output",
  "attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "attn_q_norm", "attn_k_norm", "attn_post_norm",
  "ffn_norm", "ffn_gate", "ffn_up", "ffn_down", "ffn_post_norm",
];

/** Gemma 3's pre-FFN norm; post_attention_layernorm is the attention output's norm (attn_post_norm). */
const OWN_NAMES: Partial<Record<TensorRole, string>> = { ffn_norm: "model.layers.{bid}.pre_feedforward_layernorm" };

/**
 * Every role under its text-only name and under the two names of Gemma3ForConditionalGeneration's
 * text tower (transformers < 4.52 wrote `language_model.model.*`, later `model.language_model.*`).
 */
function wrappedNames(): Partial<Record<TensorRole, readonly string[]>> {
  const names: Partial<Record<TensorRole, readonly string[]>> = {};
  for (const role of ROLES) {
    const name = OWN_NAMES[role] ?? TENSOR_ROLES[role].hf[0]!;
    names[role] = name.startsWith("model.")
      ? [name, name.replace(/^model\./, "model.language_model."), name.replace(/^model\./, "language_model.model.")]
      : [name, `language_model.${name}`];
  }
  return names;
}

/** llama.cpp's gemma3 graph without a sliding_window_pattern key: every 6th layer is global (load_swa_pattern(ml, 6)). */
const SWA_PERIOD = 6;
const NORM_ROLES = ROLES.filter((role) => TENSOR_ROLES[role].kind === "norm");
/** Gemma3RMSNorm computes x * (1 + w). */
const NORM_OFFSET = 1;
/** llama.cpp's rope_freq_base_train_swa without a freq_base_swa key; transformers' rope_local_base_freq default. */
const DEFAULT_LOCAL_THETA = 10000;

/** Which layers use the sliding window, as transformers' Gemma3TextConfig derives them. */
function slidingLayers(config: ConfigReader, layers: number): boolean[] {
  const types = config.config["layer_types"];
  if (Array.isArray(types)) return types.map((type) => type === "sliding_attention");
  const pattern = config.optionalNumber(["sliding_window_pattern", "_sliding_window_pattern"]) ?? SWA_PERIOD;
  return Array.from({ length: layers }, (_, il) => (il + 1) % pattern !== 0);
}

/** The sliding layers' RoPE base, where llama.cpp's converter finds it. */
function localRopeTheta(config: ConfigReader): number | undefined {
  const rope = config.object("rope_parameters") ?? config.object("rope_scaling");
  const sliding = rope?.["sliding_attention"] as HfConfig | undefined;
  if (typeof sliding?.["rope_theta"] === "number") return sliding["rope_theta"];
  return config.optionalNumber(["local_rope_theta", "rope_local_theta", "rope_theta_local", "swa_rope_theta", "rope_local_base_freq"]);
}

/** sliding_window_pattern 1 means no sliding layers: the converter then writes no window. */
function hasSlidingWindow(config: ConfigReader): boolean {
  return config.optionalNumber(["sliding_window_pattern"]) !== 1;
}

/** Refuses what llama.cpp's gemma3 graph would compute differently from transformers. */
function checkConfig(config: ConfigReader): void {
  const fail = (key: string, why: string) => {
    throw new UserError(`'${key}': ${why}`, { file: config.file });
  };
  if (config.config["attn_logit_softcapping"] !== undefined && config.config["attn_logit_softcapping"] !== null) {
    fail("attn_logit_softcapping", "Gemma 3 has none; llama.cpp's converter refuses a value");
  }
  if (config.boolean("use_bidirectional_attention", false)) fail("use_bidirectional_attention", "bidirectional Gemma 3 (EmbeddingGemma) is not a causal decoder");
  const hparams = config.decoderHparams();
  // llama.cpp scales queries by 1/sqrt(head_dim), or 1/sqrt(hidden/heads) for the 62-layer 27B.
  const scalar = config.optionalNumber(["query_pre_attn_scalar"]) ?? hparams.headDim;
  const expected = hparams.layers === 62 ? hparams.hiddenSize / hparams.heads : hparams.headDim;
  if (scalar !== expected) fail("query_pre_attn_scalar", `llama.cpp's gemma3 graph scales queries by 1/sqrt(${expected}), not 1/sqrt(${scalar})`);
  if (!hasSlidingWindow(config)) return;
  const sliding = slidingLayers(config, hparams.layers);
  if (sliding.length !== hparams.layers) fail("layer_types", `${sliding.length} entries for ${hparams.layers} layers`);
  const mismatch = sliding.findIndex((swa, il) => swa !== il % SWA_PERIOD < SWA_PERIOD - 1);
  if (mismatch >= 0) fail("layer_types", `layer ${mismatch} breaks the every-${SWA_PERIOD}th-layer-global pattern llama.cpp's gemma3 graph applies`);
}

/**
 * Gemma 3 (Gemma3ForCausalLM, and the text tower of Gemma3ForConditionalGeneration): q/k norms,
 * sandwich norms around attention and FFN, GELU-tanh gated FFN, embeddings scaled by
 * sqrt(hidden), sliding-window layers with their own RoPE base, tied output. Its RMSNorms compute
 * x * (1 + w); llama.cpp's converter stores 1 + w (conversion/gemma.py Gemma3Model), NeoX RoPE
 * on unpermuted Q/K. Graph: src/models/gemma3.cpp.
 */
export const gemma3: Architecture = {
  gguf: "gemma3",
  hfArchitectures: ["Gemma3ForCausalLM", "Gemma3ForConditionalGeneration"],
  formats: ["gguf", "onnx", "mlx"],
  tensors: ROLES,
  hfNames: wrappedNames(),
  ignoredHfTensors: [/^(model\.)?(vision_tower|multi_modal_projector)\./],
  interleaveRopeRows: false,
  configDefaults: {
    // transformers' Gemma3TextConfig (models/gemma3/configuration_gemma3.py) defaults the converter reads
    vocab_size: 262_208, num_attention_heads: 8, num_key_value_heads: 4, head_dim: 256, hidden_activation: "gelu_pytorch_tanh",
    max_position_embeddings: 131_072, rms_norm_eps: 1e-6, tie_word_embeddings: true, rope_theta: 1_000_000.0,
    query_pre_attn_scalar: 256, sliding_window: 4096, rope_local_base_freq: 10_000.0, sliding_window_pattern: 6,
  },
  features: (config, hparams) => ({
    ...PLAIN_DECODER,
    qkNorm: true,
    // transformers' Gemma3TextScaledWordEmbedding and query_pre_attn_scalar; llama.cpp's graph hardcodes both.
    embeddingScale: Math.sqrt(hparams.hiddenSize),
    attentionScale: (config.optionalNumber(["query_pre_attn_scalar"]) ?? hparams.headDim) ** -0.5,
    multipliersImplied: true,
    normWeightOffset: NORM_OFFSET,
    ffnActivation: "gelu_tanh",
    ...(hasSlidingWindow(config)
      ? { slidingWindow: { window: config.integer(["sliding_window"]), layers: slidingLayers(config, hparams.layers), ropeTheta: localRopeTheta(config) ?? DEFAULT_LOCAL_THETA } }
      : {}),
  }),
  extraMetadata: function* (_hparams: DecoderHparams, config: ConfigReader) {
    if (hasSlidingWindow(config)) yield ["gemma3.attention.sliding_window", u32(config.integer(["sliding_window"]))];
    const local = localRopeTheta(config);
    if (local !== undefined) yield ["gemma3.rope.freq_base_swa", f32(local)];
    const softcap = config.optionalNumber(["final_logit_softcapping"]);
    if (softcap) yield ["gemma3.final_logit_softcapping", f32(softcap)];
  },
  checkConfig,
  ggufValueTransforms: [{ roles: NORM_ROLES, add: NORM_OFFSET }],
  llamaCppGraph: { swaPeriod: SWA_PERIOD, embeddingScale: true },
};
