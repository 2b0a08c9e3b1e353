// Configs and tensor layouts of the LongRoPE families for synthetic checkpoints: Phi-3.5-mini,
// Phi-4-mini (Phi3ForCausalLM, fused projections) and MiniCPM4 / BitCPM4 (MiniCPMForCausalLM).
// Every key of the real config.json is kept; sizes, layer counts, vocabulary, token ids and the
// length of the LongRoPE factor lists (half the rotary dimensions) follow the synthetic spec.

import type { FloatTensorToWrite } from "./safetensors.js";

/** The spec fields these configs read (a subset of SyntheticSpec, which imports this file). */
interface Sized {
  hidden: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  /** Shrinks original_max_position_embeddings so that llama.cpp's 256-cell test context uses the long factors. */
  originalContext?: number;
}

/** `count` values spread over a real factor list (first and last kept), so the shape of the curve survives. */
export function resampleFactors(real: readonly number[], count: number): number[] {
  if (count === 1) return [real[0]!];
  return Array.from({ length: count }, (_, i) => real[Math.round((i * (real.length - 1)) / (count - 1))]!);
}

// microsoft/Phi-3.5-mini-instruct config.json rope_scaling (huggingface.co/microsoft/Phi-3.5-mini-instruct/blob/main/config.json).
const PHI35_LONG = [
  1.0800000429153442, 1.1100000143051147, 1.1399999856948853, 1.340000033378601, 1.5899999141693115, 1.600000023841858, 1.6200000047683716, 2.620000123977661,
  3.2300000190734863, 3.2300000190734863, 4.789999961853027, 7.400000095367432, 7.700000286102295, 9.09000015258789, 12.199999809265137, 17.670000076293945,
  24.46000099182129, 28.57000160217285, 30.420001983642578, 30.840002059936523, 32.590003967285156, 32.93000411987305, 42.320003509521484, 44.96000289916992,
  50.340003967285156, 50.45000457763672, 57.55000305175781, 57.93000411987305, 58.21000289916992, 60.1400032043457, 62.61000442504883, 62.62000274658203,
  62.71000289916992, 63.1400032043457, 63.1400032043457, 63.77000427246094, 63.93000411987305, 63.96000289916992, 63.970001220703125, 64.02999877929688,
  64.06999969482422, 64.08000183105469, 64.12000274658203, 64.41000366210938, 64.4800033569336, 64.51000213623047, 64.52999877929688, 64.83999633789062,
];
const PHI35_SHORT = [
  1.0, 1.0199999809265137, 1.0299999713897705, 1.0299999713897705, 1.0499999523162842, 1.0499999523162842, 1.0499999523162842, 1.0499999523162842,
  1.0499999523162842, 1.0699999332427979, 1.0999999046325684, 1.1099998950958252, 1.1599998474121094, 1.1599998474121094, 1.1699998378753662, 1.2899998426437378,
  1.339999794960022, 1.679999828338623, 1.7899998426437378, 1.8199998140335083, 1.8499997854232788, 1.8799997568130493, 1.9099997282028198, 1.9399996995925903,
  1.9899996519088745, 2.0199997425079346, 2.0199997425079346, 2.0199997425079346, 2.0199997425079346, 2.0199997425079346, 2.0199997425079346, 2.0299997329711914,
  2.0299997329711914, 2.0299997329711914, 2.0299997329711914, 2.0299997329711914, 2.0299997329711914, 2.0299997329711914, 2.0299997329711914, 2.0299997329711914,
  2.0799996852874756, 2.0899996757507324, 2.189999580383301, 2.2199995517730713, 2.5899994373321533, 2.729999542236328, 2.749999523162842, 2.8399994373321533,
];
// microsoft/Phi-4-mini-instruct config.json rope_scaling (its short_factor is 48 x 1.0).
const PHI4_LONG = [
  1, 1.118320672, 1.250641126, 1.398617824, 1.564103225, 1.74916897, 1.956131817, 2.187582649, 2.446418898, 2.735880826, 3.059592084, 3.421605075,
  3.826451687, 4.279200023, 4.785517845, 5.351743533, 5.984965424, 6.693110555, 7.485043894, 8.370679318, 9.36110372, 10.4687158, 11.70738129, 13.09260651,
  14.64173252, 16.37415215, 18.31155283, 20.47818807, 22.90118105, 25.61086418, 28.64115884, 32.03, 32.1, 32.13, 32.23, 32.6, 32.61, 32.64, 32.66, 32.7,
  32.71, 32.93, 32.97, 33.28, 33.49, 33.5, 44.16, 47.77,
];
// OpenBMB's MiniCPM LongRoPE factors (OpenBMB/MiniCPM, the 32-entry list its LongRoPE configs carry; long and short equal).
const MINICPM_FACTORS = [
  1.0004360675811768, 1.0668443441390991, 1.1631425619125366, 1.3025742769241333, 1.5040205717086792, 1.7941505908966064, 2.2101221084594727, 2.802666664123535,
  3.6389970779418945, 4.804192543029785, 6.39855432510376, 8.527148246765137, 11.277542114257812, 14.684998512268066, 18.69317054748535, 23.13019371032715,
  27.72362518310547, 32.1606559753418, 36.168827056884766, 39.57627868652344, 42.32667541503906, 44.45526885986328, 46.04962921142578, 47.21482849121094,
  48.05115509033203, 48.64370346069336, 49.05967712402344, 49.34980392456055, 49.551246643066406, 49.69068145751953, 49.78697967529297, 49.85338592529297,
];

const AUTO_MAP_PHI3 = { AutoConfig: "configuration_phi3.Phi3Config", AutoModelForCausalLM: "modeling_phi3.Phi3ForCausalLM" };

/**
 * microsoft/Phi-3.5-mini-instruct's config.json (as transcribed in sdpython/experimental-experiment's
 * get_phi35_untrained, which cites huggingface.co/microsoft/Phi-3.5-mini-instruct/blob/main/config.json).
 * No head_dim, no partial rotary, untied, sliding_window 262144 (llama.cpp's phi3 graph turns SWA off).
 */
export function phi35Config(spec: Sized, common: Record<string, unknown>): Record<string, unknown> {
  const { head_dim: _h, rope_theta: _t, max_position_embeddings: _m, ...sized } = common;
  const rotary = spec.hidden / spec.heads;
  return {
    ...sized,
    _name_or_path: "Phi-3.5-mini-instruct",
    attention_dropout: 0.0,
    auto_map: AUTO_MAP_PHI3,
    embd_pdrop: 0.0,
    hidden_act: "silu",
    initializer_range: 0.02,
    max_position_embeddings: 131072,
    model_type: "phi3",
    original_max_position_embeddings: spec.originalContext ?? 4096,
    pad_token_id: common["eos_token_id"],
    resid_pdrop: 0.0,
    rms_norm_eps: 1e-5,
    rope_scaling: { long_factor: resampleFactors(PHI35_LONG, rotary / 2), short_factor: resampleFactors(PHI35_SHORT, rotary / 2), type: "longrope" },
    rope_theta: 10000.0,
    sliding_window: 262144,
    torch_dtype: "bfloat16",
    use_cache: true,
    attention_bias: false,
  };
}

/**
 * microsoft/Phi-4-mini-instruct's config.json (huggingface.co/microsoft/Phi-4-mini-instruct/blob/main/config.json):
 * grouped-query attention, partial_rotary_factor 0.75, tied embeddings, LongRoPE with short factors of 1.
 */
export function phi4MiniConfig(spec: Sized, common: Record<string, unknown>): Record<string, unknown> {
  const { head_dim: _h, rope_theta: _t, max_position_embeddings: _m, ...sized } = common;
  const rotary = Math.floor(Math.floor(0.75 * spec.hidden) / spec.heads);
  return {
    ...sized,
    _name_or_path: "Phi-4-mini-instruct",
    attention_bias: false,
    attention_dropout: 0.0,
    auto_map: { ...AUTO_MAP_PHI3, AutoTokenizer: "Xenova/gpt-4o" },
    embd_pdrop: 0.0,
    full_attn_mod: 1,
    hidden_act: "silu",
    initializer_range: 0.02,
    interpolate_factor: 1,
    lm_head_bias: false,
    max_position_embeddings: 131072,
    mlp_bias: false,
    model_type: "phi3",
    original_max_position_embeddings: spec.originalContext ?? 4096,
    pad_token_id: common["eos_token_id"],
    partial_rotary_factor: 0.75,
    resid_pdrop: 0.0,
    rms_norm_eps: 1e-5,
    rope_scaling: { long_factor: resampleFactors(PHI4_LONG, rotary / 2), short_factor: Array.from({ length: rotary / 2 }, () => 1.0), type: "longrope" },
    rope_theta: 10000.0,
    sliding_window: 262144,
    torch_dtype: "bfloat16",
    transformers_version: "4.45.0",
    use_cache: true,
  };
}

/**
 * openbmb/MiniCPM4-0.5B's config.json (huggingface.co/openbmb/MiniCPM4-0.5B). No verbatim copy was
 * reachable: reconstructed from the model card and the MiniCPM4.1-8B config keys a FastDeploy port
 * restates (scale_emb 12, scale_depth 1.4, dim_model_base 256, mup_denominator 32, rope_scaling
 * {rope_type longrope, long_factor, short_factor, original_max_position_embeddings}). The real lists
 * are equal and the original context is the maximum; here the short list differs (sqrt of the long
 * one) so a test can tell which one llama.cpp used. BitCPM4-0.5B has the same config.
 */
export function miniCpm4Config(spec: Sized, common: Record<string, unknown>): Record<string, unknown> {
  const { head_dim: _h, ...sized } = common;
  const factors = resampleFactors(MINICPM_FACTORS, spec.hidden / spec.heads / 2);
  return {
    ...sized,
    architectures: ["MiniCPMForCausalLM"],
    auto_map: { AutoConfig: "configuration_minicpm.MiniCPMConfig", AutoModel: "modeling_minicpm.MiniCPMModel", AutoModelForCausalLM: "modeling_minicpm.MiniCPMForCausalLM" },
    model_type: "minicpm",
    hidden_act: "silu",
    initializer_range: 0.1,
    max_position_embeddings: 32768,
    rms_norm_eps: 1e-6,
    rope_theta: 10000.0,
    rope_scaling: { rope_type: "longrope", long_factor: factors, short_factor: factors.map((f) => Math.sqrt(f)), original_max_position_embeddings: spec.originalContext ?? 32768 },
    torch_dtype: "bfloat16",
    use_cache: true,
    scale_emb: 12,
    dim_model_base: spec.hidden / 4,
    scale_depth: 1.4,
    mup_denominator: 32,
  };
}

/** Phi-3 stores q, k, v as one qkv_proj and gate, up as one gate_up_proj (rows stacked in that order). */
export function fusePhi3Projections(tensors: FloatTensorToWrite[]): FloatTensorToWrite[] {
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const fused = new Set<string>();
  const out: FloatTensorToWrite[] = [];
  const stack = (name: string, parts: string[]): FloatTensorToWrite => {
    const pieces = parts.map((p) => byName.get(p)!);
    parts.forEach((p) => fused.add(p));
    const rows = pieces.reduce((sum, t) => sum + t.shape[0]!, 0);
    const data = new Float32Array(pieces.reduce((sum, t) => sum + t.data.length, 0));
    let offset = 0;
    for (const piece of pieces) {
      data.set(piece.data, offset);
      offset += piece.data.length;
    }
    return { name, shape: [rows, pieces[0]!.shape[1]!], data, dtype: pieces[0]!.dtype };
  };
  for (const tensor of tensors) {
    if (fused.has(tensor.name)) continue;
    const q = /^(model\.layers\.\d+)\.self_attn\.q_proj\.weight$/.exec(tensor.name);
    const gate = /^(model\.layers\.\d+)\.mlp\.gate_proj\.weight$/.exec(tensor.name);
    if (q) out.push(stack(`${q[1]}.self_attn.qkv_proj.weight`, ["q", "k", "v"].map((x) => `${q[1]}.self_attn.${x}_proj.weight`)));
    else if (gate) out.push(stack(`${gate[1]}.mlp.gate_up_proj.weight`, ["gate", "up"].map((x) => `${gate[1]}.mlp.${x}_proj.weight`)));
    else out.push(tensor);
  }
  return out;
}

/**
 * BitCPM4 stores fake-quantized float weights: each linear weight takes the values {-s, 0, +s}
 * with s its mean |w| (absmean ternarisation), so an F32 GGUF holds them exactly.
 */
export function ternariseLinears(tensors: FloatTensorToWrite[]): FloatTensorToWrite[] {
  return tensors.map((t) => {
    if (!/^model\.layers\.\d+\.(self_attn|mlp)\.\w+_proj\.weight$/.test(t.name)) return t;
    let sum = 0;
    for (const w of t.data) sum += Math.abs(w);
    const s = sum / t.data.length;
    return { ...t, data: t.data.map((w) => s * Math.max(-1, Math.min(1, Math.round(w / s)))) };
  });
}
