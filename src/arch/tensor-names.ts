/**
 * Hugging Face -> GGUF tensor names, as a table (like gguf-py's tensor_mapping.py).
 * `{bid}` stands for the block (layer) number. The `.weight` / `.bias` suffix
 * carries over unchanged.
 */
export const TENSOR_NAMES = {
  token_embd: { gguf: "token_embd", hf: ["model.embed_tokens"] },
  output_norm: { gguf: "output_norm", hf: ["model.norm"] },
  output: { gguf: "output", hf: ["lm_head"] },
  attn_norm: { gguf: "blk.{bid}.attn_norm", hf: ["model.layers.{bid}.input_layernorm"] },
  attn_q: { gguf: "blk.{bid}.attn_q", hf: ["model.layers.{bid}.self_attn.q_proj"] },
  attn_k: { gguf: "blk.{bid}.attn_k", hf: ["model.layers.{bid}.self_attn.k_proj"] },
  attn_v: { gguf: "blk.{bid}.attn_v", hf: ["model.layers.{bid}.self_attn.v_proj"] },
  attn_output: { gguf: "blk.{bid}.attn_output", hf: ["model.layers.{bid}.self_attn.o_proj"] },
  attn_q_norm: { gguf: "blk.{bid}.attn_q_norm", hf: ["model.layers.{bid}.self_attn.q_norm"] },
  attn_k_norm: { gguf: "blk.{bid}.attn_k_norm", hf: ["model.layers.{bid}.self_attn.k_norm"] },
  attn_sub_norm: { gguf: "blk.{bid}.attn_sub_norm", hf: ["model.layers.{bid}.self_attn.inner_attn_ln", "model.layers.{bid}.self_attn.attn_sub_norm"] },
  ffn_norm: { gguf: "blk.{bid}.ffn_norm", hf: ["model.layers.{bid}.post_attention_layernorm"] },
  ffn_sub_norm: { gguf: "blk.{bid}.ffn_sub_norm", hf: ["model.layers.{bid}.mlp.ffn_layernorm", "model.layers.{bid}.mlp.ffn_sub_norm"] },
  ffn_gate: { gguf: "blk.{bid}.ffn_gate", hf: ["model.layers.{bid}.mlp.gate_proj"] },
  ffn_up: { gguf: "blk.{bid}.ffn_up", hf: ["model.layers.{bid}.mlp.up_proj"] },
  ffn_down: { gguf: "blk.{bid}.ffn_down", hf: ["model.layers.{bid}.mlp.down_proj"] },
} as const;

export type TensorRole = keyof typeof TENSOR_NAMES;

/** The tensors of a Llama-style decoder block stack; architectures add or drop a few. */
export const DECODER_ROLES: readonly TensorRole[] = [
  "token_embd", "output_norm", "output",
  "attn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
  "ffn_norm", "ffn_gate", "ffn_up", "ffn_down",
];

/** Checkpoint tensors that carry no weights llama.cpp needs (buffers saved by older transformers). */
export const IGNORED_HF_TENSORS = [/\.rotary_emb\.inv_freq$/];

export interface MappedName {
  readonly role: TensorRole;
  readonly gguf: string;
  readonly block: number | undefined;
}

/** Builds a lookup from HF names to GGUF names for the roles an architecture declares. */
export function tensorNameMapper(roles: readonly TensorRole[]): (hfName: string) => MappedName | undefined {
  const patterns = roles.flatMap((role) =>
    TENSOR_NAMES[role].hf.map((hf) => ({
      role,
      regex: new RegExp(`^${hf.replaceAll(".", "\\.").replace("{bid}", "(\\d+)")}\\.(weight|bias)$`),
      gguf: TENSOR_NAMES[role].gguf,
    })),
  );
  return (hfName) => {
    for (const { role, regex, gguf } of patterns) {
      const match = regex.exec(hfName);
      if (!match) continue;
      const hasBlock = match.length === 3;
      const block = hasBlock ? Number(match[1]) : undefined;
      const suffix = match[match.length - 1]!;
      return { role, block, gguf: `${gguf.replace("{bid}", String(block))}.${suffix}` };
    }
    return undefined;
  };
}
