import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { join, resolve } from "node:path";
import { contentDigest } from "./content-key.js";

/** Model shapes for benchmark checkpoints; `tinyllama1b` is TinyLlama-1.1B's. */
export const BENCH_SHAPES = {
  tinyllama1b: { hidden: 2048, layers: 22, heads: 32, kvHeads: 4, intermediate: 5632, vocab: 32000 },
} as const;

export interface BenchShape { hidden: number; layers: number; heads: number; kvHeads: number; intermediate: number; vocab: number }

const REPO_ROOT = resolve(import.meta.dirname, "../..");
const CACHE = join(REPO_ROOT, ".cache/bench");
const SHARD_BYTES = 1 << 30;

/** What the checkpoint is made from: this generator and the tokenizer files it copies. */
const GENERATOR_FILES = ["test/support/large-checkpoint.ts", ...["tokenizer.model", "tokenizer_config.json", "special_tokens_map.json"].map((f) => `test/fixtures/tiny-llama/${f}`)];

/**
 * Writes (once, then reuses) a deterministic BF16 Llama checkpoint of the
 * given shape, sharded with an index as large Hub models are. Tensors are
 * generated and written one at a time, so building it needs little memory.
 * The folder is keyed by the generator's content, so an edit here builds a new one.
 */
export function syntheticCheckpoint(name: keyof typeof BENCH_SHAPES): string {
  const key = contentDigest(GENERATOR_FILES, REPO_ROOT).slice(0, 16);
  const dir = join(CACHE, `${name}-bf16-${key}`);
  if (existsSync(join(dir, "model.safetensors.index.json"))) return dir;
  // Checkpoints of an earlier generator are stale: they are gigabytes, so remove them.
  const stale = new RegExp(`^${name}-bf16(-[0-9a-f]{16})?$`);
  if (existsSync(CACHE)) for (const old of readdirSync(CACHE)) if (stale.test(old)) rmSync(join(CACHE, old), { recursive: true, force: true });
  const shape = BENCH_SHAPES[name];
  const building = `${dir}.building`;
  rmSync(building, { recursive: true, force: true });
  mkdirSync(building, { recursive: true });

  const tensors = tensorShapes(shape);
  const shards: { name: string; shape: number[] }[][] = [[]];
  let shardBytes = 0;
  for (const tensor of tensors) {
    const bytes = tensor.shape.reduce((a, b) => a * b, 2);
    if (shardBytes + bytes > SHARD_BYTES && shards.at(-1)!.length > 0) {
      shards.push([]);
      shardBytes = 0;
    }
    shards.at(-1)!.push(tensor);
    shardBytes += bytes;
  }
  const weightMap: Record<string, string> = {};
  const random = seeded(42);
  shards.forEach((shardTensors, i) => {
    const file = `model-${String(i + 1).padStart(5, "0")}-of-${String(shards.length).padStart(5, "0")}.safetensors`;
    writeShard(join(building, file), shardTensors, random);
    for (const tensor of shardTensors) weightMap[tensor.name] = file;
  });
  writeFileSync(join(building, "model.safetensors.index.json"), JSON.stringify({ metadata: {}, weight_map: weightMap }, null, 2));
  writeFileSync(join(building, "config.json"), JSON.stringify(config(shape), null, 2));
  // A real SentencePiece tokenizer; the vocabulary is padded to vocab_size as llama.cpp's converter does.
  for (const file of ["tokenizer.model", "tokenizer_config.json", "special_tokens_map.json"]) {
    copyFileSync(join(REPO_ROOT, "test/fixtures/tiny-llama", file), join(building, file));
  }
  renameSync(building, dir);
  return dir;
}

function tensorShapes(s: BenchShape): { name: string; shape: number[] }[] {
  const headDim = s.hidden / s.heads;
  const tensors = [{ name: "model.embed_tokens.weight", shape: [s.vocab, s.hidden] }];
  for (let b = 0; b < s.layers; b++) {
    const p = `model.layers.${b}`;
    tensors.push(
      { name: `${p}.input_layernorm.weight`, shape: [s.hidden] },
      { name: `${p}.self_attn.q_proj.weight`, shape: [s.hidden, s.hidden] },
      { name: `${p}.self_attn.k_proj.weight`, shape: [s.kvHeads * headDim, s.hidden] },
      { name: `${p}.self_attn.v_proj.weight`, shape: [s.kvHeads * headDim, s.hidden] },
      { name: `${p}.self_attn.o_proj.weight`, shape: [s.hidden, s.hidden] },
      { name: `${p}.post_attention_layernorm.weight`, shape: [s.hidden] },
      { name: `${p}.mlp.gate_proj.weight`, shape: [s.intermediate, s.hidden] },
      { name: `${p}.mlp.up_proj.weight`, shape: [s.intermediate, s.hidden] },
      { name: `${p}.mlp.down_proj.weight`, shape: [s.hidden, s.intermediate] },
    );
  }
  tensors.push({ name: "model.norm.weight", shape: [s.hidden] }, { name: "lm_head.weight", shape: [s.vocab, s.hidden] });
  return tensors;
}

function config(s: BenchShape) {
  return {
    architectures: ["LlamaForCausalLM"], model_type: "llama",
    hidden_size: s.hidden, intermediate_size: s.intermediate, num_hidden_layers: s.layers,
    num_attention_heads: s.heads, num_key_value_heads: s.kvHeads, max_position_embeddings: 2048,
    rms_norm_eps: 1e-5, rope_theta: 10000, vocab_size: s.vocab, tie_word_embeddings: false,
    bos_token_id: 1, eos_token_id: 2, torch_dtype: "bfloat16",
  };
}

function writeShard(path: string, tensors: { name: string; shape: number[] }[], random: () => number) {
  const header: Record<string, unknown> = { __metadata__: { format: "pt" } };
  let offset = 0;
  for (const t of tensors) {
    const bytes = t.shape.reduce((a, b) => a * b, 2);
    header[t.name] = { dtype: "BF16", shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - ((8 + json.length) % 8)) % 8);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));
  const fd = openSync(path, "w");
  try {
    writeSync(fd, prefix);
    writeSync(fd, Buffer.from(json));
    for (const t of tensors) {
      const count = t.shape.reduce((a, b) => a * b, 1);
      const isNorm = t.shape.length === 1;
      const values = new Uint16Array(count);
      const scratch = new Float32Array(1);
      const bits = new Uint32Array(scratch.buffer);
      for (let i = 0; i < count; i++) {
        // Roughly normal, std ~0.02 (norm weights around 1), like an initialised transformer.
        scratch[0] = isNorm ? 1 + (random() - 0.5) * 0.1 : (random() + random() + random() - 1.5) * 0.04;
        values[i] = bits[0]! >>> 16;
      }
      writeSync(fd, new Uint8Array(values.buffer));
    }
  } finally {
    closeSync(fd);
  }
}

function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), state | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
