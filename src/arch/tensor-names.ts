/**
 * Tensor roles: each one's GGUF name and the Hugging Face names it is stored under, as a
 * table (like gguf-py's MODEL_TENSORS and tensor_mapping.py). `{bid}` stands for the block
 * (layer) number; the `.weight` / `.bias` suffix carries over unchanged. An architecture
 * lists the roles it uses and may override a role's Hugging Face names.
 */
export const TENSOR_ROLES = {
  token_embd: { gguf: "token_embd", hf: ["model.embed_tokens"], kind: "embedding" },
  output_norm: { gguf: "output_norm", hf: ["model.norm"], kind: "norm" },
  output: { gguf: "output", hf: ["lm_head"], kind: "output" },
  attn_norm: { gguf: "blk.{bid}.attn_norm", hf: ["model.layers.{bid}.input_layernorm"], kind: "norm" },
  attn_q: { gguf: "blk.{bid}.attn_q", hf: ["model.layers.{bid}.self_attn.q_proj"], kind: "linear" },
  attn_k: { gguf: "blk.{bid}.attn_k", hf: ["model.layers.{bid}.self_attn.k_proj"], kind: "linear" },
  attn_v: { gguf: "blk.{bid}.attn_v", hf: ["model.layers.{bid}.self_attn.v_proj"], kind: "linear" },
  attn_output: { gguf: "blk.{bid}.attn_output", hf: ["model.layers.{bid}.self_attn.o_proj"], kind: "linear" },
  attn_q_norm: { gguf: "blk.{bid}.attn_q_norm", hf: ["model.layers.{bid}.self_attn.q_norm"], kind: "norm" },
  attn_k_norm: { gguf: "blk.{bid}.attn_k_norm", hf: ["model.layers.{bid}.self_attn.k_norm"], kind: "norm" },
  attn_sub_norm: { gguf: "blk.{bid}.attn_sub_norm", hf: ["model.layers.{bid}.self_attn.inner_attn_ln", "model.layers.{bid}.self_attn.attn_sub_norm"], kind: "norm" },
  ffn_norm: { gguf: "blk.{bid}.ffn_norm", hf: ["model.layers.{bid}.post_attention_layernorm"], kind: "norm" },
  ffn_sub_norm: { gguf: "blk.{bid}.ffn_sub_norm", hf: ["model.layers.{bid}.mlp.ffn_layernorm", "model.layers.{bid}.mlp.ffn_sub_norm"], kind: "norm" },
  ffn_gate: { gguf: "blk.{bid}.ffn_gate", hf: ["model.layers.{bid}.mlp.gate_proj"], kind: "linear" },
  ffn_up: { gguf: "blk.{bid}.ffn_up", hf: ["model.layers.{bid}.mlp.up_proj"], kind: "linear" },
  ffn_down: { gguf: "blk.{bid}.ffn_down", hf: ["model.layers.{bid}.mlp.down_proj"], kind: "linear" },
  // LFM2: llama.cpp names its final norm token_embd_norm (gguf-py MODEL_TENSORS[LFM2]) though it follows the last block.
  token_embd_norm: { gguf: "token_embd_norm", hf: ["model.embedding_norm"], kind: "norm" },
  shortconv_conv: { gguf: "blk.{bid}.shortconv.conv", hf: ["model.layers.{bid}.conv.conv"], kind: "conv" },
  shortconv_in_proj: { gguf: "blk.{bid}.shortconv.in_proj", hf: ["model.layers.{bid}.conv.in_proj"], kind: "linear" },
  shortconv_out_proj: { gguf: "blk.{bid}.shortconv.out_proj", hf: ["model.layers.{bid}.conv.out_proj"], kind: "linear" },
  // Fused projections (Phi-3): q, k, v rows stacked; gate rows then up rows, kept fused as llama.cpp's converter keeps them.
  attn_qkv: { gguf: "blk.{bid}.attn_qkv", hf: ["model.layers.{bid}.self_attn.qkv_proj"], kind: "linear" },
  ffn_gate_up: { gguf: "blk.{bid}.ffn_up", hf: ["model.layers.{bid}.mlp.gate_up_proj"], kind: "linear" },
  // Sandwich norms (gguf-py ATTN_POST_NORM, FFN_POST_NORM): on each sub-layer's output before the residual add.
  attn_post_norm: { gguf: "blk.{bid}.post_attention_norm", hf: ["model.layers.{bid}.post_attention_layernorm"], kind: "norm" },
  ffn_post_norm: { gguf: "blk.{bid}.post_ffw_norm", hf: ["model.layers.{bid}.post_feedforward_layernorm"], kind: "norm" },
} as const satisfies Record<string, { gguf: string; hf: readonly string[]; kind: RoleKind }>;

/**
 * What a role's weight is: it decides which tensors get quantized and which stay float.
 * "conv" is a depthwise convolution kernel [channels, 1, width]: every runtime keeps it float.
 */
export type RoleKind = "embedding" | "output" | "linear" | "norm" | "conv";

export type TensorRole = keyof typeof TENSOR_ROLES;

/** The roles of a Llama-style decoder; architectures add or drop a few. */
export const DECODER_ROLES: readonly TensorRole[] = [
  "token_embd", "output_norm", "output",
  "attn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
  "ffn_norm", "ffn_gate", "ffn_up", "ffn_down",
];

/** Roles a checkpoint may leave out: without `output`, the token embedding is the output layer (tied). */
export const OPTIONAL_ROLES: ReadonlySet<TensorRole> = new Set(["output"]);

/** Checkpoint tensors that carry no weights any runtime needs (buffers saved by older transformers). */
const IGNORED_HF_TENSORS = [/\.rotary_emb\.inv_freq$/];

export function isIgnoredTensor(hfName: string): boolean {
  return IGNORED_HF_TENSORS.some((pattern) => pattern.test(hfName));
}

export function roleKind(role: TensorRole): RoleKind {
  return TENSOR_ROLES[role].kind;
}

/** The Linear weights inside decoder blocks (what BitNet ternarises and MLX's 1.58-bit mode packs). */
export function isBlockLinear(role: TensorRole): boolean {
  return roleKind(role) === "linear";
}

/** The part of an architecture the name mapping reads. */
export interface TensorNaming {
  readonly tensors: readonly TensorRole[];
  /** Hugging Face names that differ from the table's, by role. */
  readonly hfNames?: Partial<Readonly<Record<TensorRole, readonly string[]>>>;
}

function hfPatterns(naming: TensorNaming, role: TensorRole): readonly string[] {
  return naming.hfNames?.[role] ?? TENSOR_ROLES[role].hf;
}

export interface MappedName {
  readonly role: TensorRole;
  readonly gguf: string;
  readonly block: number | undefined;
  /** "weight" or "bias". */
  readonly suffix: string;
}

/** Builds a lookup from Hugging Face names to roles and GGUF names for one architecture. */
export function tensorNameMapper(naming: TensorNaming): (hfName: string) => MappedName | undefined {
  const patterns = naming.tensors.flatMap((role) =>
    hfPatterns(naming, role).map((hf) => ({
      role,
      regex: new RegExp(`^${hf.replaceAll(".", "\\.").replace("{bid}", "(\\d+)")}\\.(weight|bias)$`),
      gguf: TENSOR_ROLES[role].gguf,
    })),
  );
  return (hfName) => {
    for (const { role, regex, gguf } of patterns) {
      const match = regex.exec(hfName);
      if (!match) continue;
      const block = match.length === 3 ? Number(match[1]) : undefined;
      const suffix = match[match.length - 1]!;
      return { role, block, suffix, gguf: `${gguf.replace("{bid}", String(block))}.${suffix}` };
    }
    return undefined;
  };
}

/** The Hugging Face module path of a role (its first name), e.g. for block 3 of attn_q. */
export function hfModule(naming: TensorNaming, role: TensorRole, block?: number): string {
  const pattern = hfPatterns(naming, role)[0]!;
  return block === undefined ? pattern : pattern.replace("{bid}", String(block));
}

/** The Hugging Face tensor name of a role's weight or bias. */
export function hfTensorName(naming: TensorNaming, role: TensorRole, block?: number, suffix: "weight" | "bias" = "weight"): string {
  return `${hfModule(naming, role, block)}.${suffix}`;
}

/** The name of a role's tensor the checkpoint has (a role may have several Hugging Face names), else the first. */
export function presentHfTensorName(naming: TensorNaming, role: TensorRole, has: (hfName: string) => boolean, block?: number, suffix: "weight" | "bias" = "weight"): string {
  const names = hfPatterns(naming, role).map((pattern) => `${block === undefined ? pattern : pattern.replace("{bid}", String(block))}.${suffix}`);
  return names.find(has) ?? names[0]!;
}

/**
 * The required tensors `has` does not find: every non-optional role's weight (under any of its
 * Hugging Face names) and the required biases, in every block. Each is named by its first name.
 */
export function missingHfTensors(
  naming: TensorNaming & { readonly requiredBiases?: readonly TensorRole[] },
  layers: number,
  has: (hfName: string) => boolean,
  blockRoles?: (block: number) => readonly TensorRole[],
): string[] {
  const missing: string[] = [];
  const check = (role: TensorRole, block: number | undefined, suffix: "weight" | "bias") => {
    const names = hfPatterns(naming, role).map((pattern) => `${block === undefined ? pattern : pattern.replace("{bid}", String(block))}.${suffix}`);
    if (!names.some(has)) missing.push(names[0]!);
  };
  const required = naming.tensors.filter((role) => !OPTIONAL_ROLES.has(role));
  for (const role of required) if (!isBlockRole(role)) check(role, undefined, "weight");
  for (let block = 0; block < layers; block++) {
    const inBlock = blockRoles?.(block);
    for (const role of required) if (isBlockRole(role) && (!inBlock || inBlock.includes(role))) check(role, block, "weight");
    for (const role of naming.requiredBiases ?? []) check(role, block, "bias");
  }
  return missing;
}

function isBlockRole(role: TensorRole): boolean {
  return TENSOR_ROLES[role].gguf.includes("{bid}");
}

/**
 * Whether a tensor of a converted artifact (GGUF, MLX, ONNX) holds the token embedding,
 * including its quantization side tensors (`.scales`, `.biases`, `_quantized`...).
 */
export function isTokenEmbeddingTensor(name: string): boolean {
  return name === "token_embd.weight" || TOKEN_EMBEDDING_ARTIFACT_NAMES.some((pattern) => pattern.test(name));
}

/** By the module's last name part, so wrapped models (`model.language_model.embed_tokens`) count too. */
const TOKEN_EMBEDDING_ARTIFACT_NAMES = TENSOR_ROLES.token_embd.hf.map((hf) => {
  const module = hf.split(".").at(-1)!;
  return new RegExp(`(^|\\.)${module}\\.(weight(\\.|_|$)|scales$|biases$)`);
});

/** Whether a tensor of an MLX or ONNX artifact is a separate output projection (untied embeddings). */
export function isOutputTensor(name: string): boolean {
  return name.startsWith("output.") || TENSOR_ROLES.output.hf.some((hf) => name.startsWith(`${hf}.`));
}

/** GGUF names of the convolution kernels (role kind "conv"), which llama.cpp's converter and quantizer keep F32. */
const CONV_KERNEL_GGUF = Object.values(TENSOR_ROLES as Record<string, { gguf: string; kind: RoleKind }>)
  .filter((role) => role.kind === "conv")
  .map((role) => new RegExp(`^${role.gguf.replaceAll(".", "\\.").replace("{bid}", "\\d+")}\\.weight$`));

export function isConvKernelTensor(ggufName: string): boolean {
  return CONV_KERNEL_GGUF.some((pattern) => pattern.test(ggufName));
}

/** A depthwise kernel [channels, 1, width] as GGUF stores it, 2-D (llama.cpp's converter squeezes the middle axis). */
export function ggufConvShape(shape: readonly number[]): readonly number[] {
  return shape.length === 3 && shape[1] === 1 ? [shape[0]!, shape[2]!] : shape;
}

/** The same kernel as mlx-lm's Conv1d holds it, [channels, width, 1] (the models' sanitize() swaps the last two axes). */
export function mlxConvShape(shape: readonly number[]): readonly number[] {
  return shape.length === 3 && shape[1] === 1 ? [shape[0]!, shape[2]!, 1] : shape;
}
