// Small GGUF files with all-zero weights (valid data for every ggml type: a zero scale decodes to
// zeros) in architectures and layouts edgequant's converter does not produce: gemma3 with sliding-
// window attention, and tied Q4_0 embeddings. llama.cpp loads them and reports its buffers, which
// checks the fit model's handling of SWA caches and duplicated (repacked) output matrices.

import { GgmlType, tensorBytes } from "../../src/quant/ggml-types.js";
import { f32, f32s, i32s, str, strings, u32, type GgufMetadata } from "../../src/writers/gguf/metadata.js";
import { writeGguf, type GgufTensorPlan } from "../../src/writers/gguf/writer.js";

export interface SyntheticModel {
  readonly arch: "llama" | "gemma3";
  readonly layers: number;
  readonly embd: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly ff: number;
  readonly vocab: number;
  readonly context: number;
  /** Type of the 2-D weight matrices (norms are F32). */
  readonly type: GgmlType;
  /** No output.weight: the token embedding doubles as the output matrix. */
  readonly tied: boolean;
  readonly slidingWindow?: number;
}

function vocabulary(size: number): { tokens: string[]; types: number[] } {
  const tokens = ["<unk>", "<s>", "</s>"];
  const types = [2, 3, 3];
  for (let b = 0; b < 256 && tokens.length < size; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
    types.push(6);
  }
  while (tokens.length < size) {
    tokens.push(`▁w${tokens.length}`);
    types.push(1);
  }
  return { tokens, types };
}

export async function writeSyntheticGguf(path: string, m: SyntheticModel): Promise<void> {
  const a = m.arch;
  const { tokens, types } = vocabulary(m.vocab);
  const metadata: GgufMetadata = new Map([
    ["general.architecture", str(a)],
    ["general.name", str(`synthetic-${a}`)],
    [`${a}.context_length`, u32(m.context)],
    [`${a}.embedding_length`, u32(m.embd)],
    [`${a}.block_count`, u32(m.layers)],
    [`${a}.feed_forward_length`, u32(m.ff)],
    [`${a}.attention.head_count`, u32(m.heads)],
    [`${a}.attention.head_count_kv`, u32(m.kvHeads)],
    [`${a}.attention.key_length`, u32(m.headDim)],
    [`${a}.attention.value_length`, u32(m.headDim)],
    [`${a}.attention.layer_norm_rms_epsilon`, f32(1e-6)],
    [`${a}.rope.freq_base`, f32(10000)],
    [`${a}.rope.dimension_count`, u32(m.headDim)],
    ...(m.slidingWindow ? ([[`${a}.attention.sliding_window`, u32(m.slidingWindow)]] as const) : []),
    ["tokenizer.ggml.model", str("llama")],
    ["tokenizer.ggml.tokens", strings(tokens)],
    ["tokenizer.ggml.scores", f32s(new Float32Array(tokens.length))],
    ["tokenizer.ggml.token_type", i32s(types)],
    ["tokenizer.ggml.bos_token_id", u32(1)],
    ["tokenizer.ggml.eos_token_id", u32(2)],
    ["tokenizer.ggml.unknown_token_id", u32(0)],
  ]);
  const tensors: { name: string; type: GgmlType; shape: number[] }[] = [];
  const matrix = (name: string, shape: number[]) => tensors.push({ name, type: m.type, shape });
  const vector = (name: string, n: number) => tensors.push({ name, type: GgmlType.F32, shape: [n] });
  matrix("token_embd.weight", [m.vocab, m.embd]);
  for (let i = 0; i < m.layers; i++) {
    const p = `blk.${i}`;
    vector(`${p}.attn_norm.weight`, m.embd);
    matrix(`${p}.attn_q.weight`, [m.heads * m.headDim, m.embd]);
    matrix(`${p}.attn_k.weight`, [m.kvHeads * m.headDim, m.embd]);
    matrix(`${p}.attn_v.weight`, [m.kvHeads * m.headDim, m.embd]);
    matrix(`${p}.attn_output.weight`, [m.embd, m.heads * m.headDim]);
    if (a === "gemma3") {
      vector(`${p}.attn_q_norm.weight`, m.headDim);
      vector(`${p}.attn_k_norm.weight`, m.headDim);
      vector(`${p}.post_attention_norm.weight`, m.embd);
      vector(`${p}.post_ffw_norm.weight`, m.embd);
    }
    vector(`${p}.ffn_norm.weight`, m.embd);
    matrix(`${p}.ffn_gate.weight`, [m.ff, m.embd]);
    matrix(`${p}.ffn_up.weight`, [m.ff, m.embd]);
    matrix(`${p}.ffn_down.weight`, [m.embd, m.ff]);
  }
  vector("output_norm.weight", m.embd);
  if (!m.tied) matrix("output.weight", [m.vocab, m.embd]);
  const plans: GgufTensorPlan[] = tensors.map((t) => ({
    ...t,
    produce: async function* () {
      yield new Uint8Array(tensorBytes(t.type, t.shape));
    },
  }));
  await writeGguf(path, metadata, plans);
}
