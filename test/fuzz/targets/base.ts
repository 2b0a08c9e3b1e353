// The valid model every fuzz case starts from: a micro Llama (1 layer, hidden 8) with the tiny
// Llama's real tokenizer, written once per process, and the planners each case is fed to.
import { copyFileSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { resolveArchitecture } from "../../../src/arch/index.js";
import { planFromCheckpoint } from "../../../src/plan/gguf.js";
import { planMlx } from "../../../src/plan/mlx.js";
import { resolveScheme } from "../../../src/quant/schemes.js";
import { openCheckpoint } from "../../../src/readers/checkpoint.js";
import { readVocabulary } from "../../../src/tokenizer/index.js";
import { TINY_LLAMA } from "../../support/cli.js";
import { writeSafetensors } from "../../support/safetensors.js";

export const MICRO_CONFIG: Readonly<Record<string, unknown>> = {
  ...(JSON.parse(readFileSync(join(TINY_LLAMA, "config.json"), "utf8")) as Record<string, unknown>),
  hidden_size: 8, intermediate_size: 16, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, head_dim: 4,
};

const SIDE_FILES = ["tokenizer.model", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"];

/** name -> shape of the micro Llama's tensors. */
export const MICRO_TENSORS: Readonly<Record<string, number[]>> = {
  "model.embed_tokens.weight": [4096, 8],
  "model.layers.0.input_layernorm.weight": [8],
  "model.layers.0.self_attn.q_proj.weight": [8, 8],
  "model.layers.0.self_attn.k_proj.weight": [4, 8],
  "model.layers.0.self_attn.v_proj.weight": [4, 8],
  "model.layers.0.self_attn.o_proj.weight": [8, 8],
  "model.layers.0.post_attention_layernorm.weight": [8],
  "model.layers.0.mlp.gate_proj.weight": [16, 8],
  "model.layers.0.mlp.up_proj.weight": [16, 8],
  "model.layers.0.mlp.down_proj.weight": [8, 16],
  "model.norm.weight": [8],
  "lm_head.weight": [4096, 8],
};

let base: string | undefined;

/** The micro model's folder (created on first use). */
export function microModel(): string {
  if (base && existsSync(base)) return base;
  base = join(tmpdir(), `edgequant-fuzz-base-${process.pid}`);
  mkdirSync(base, { recursive: true });
  for (const file of SIDE_FILES) copyFileSync(join(TINY_LLAMA, file), join(base, file));
  writeFileSync(join(base, "config.json"), JSON.stringify(MICRO_CONFIG));
  let seed = 1;
  const tensors = Object.entries(MICRO_TENSORS).map(([name, shape]) => {
    const count = shape.reduce((a, b) => a * b, 1);
    const data = Float32Array.from({ length: count }, () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31 - 0.5) * 0.2);
    return { name, shape, data, dtype: "F32" as const };
  });
  writeSafetensors(join(base, "model.safetensors"), tensors);
  return base;
}

/** Links the micro model's files into `scratch`, except those the case writes itself. */
export function linkMicroModel(scratch: string, except: readonly string[]): void {
  const from = microModel();
  for (const file of [...SIDE_FILES, "config.json", "model.safetensors"]) {
    if (!except.includes(file)) symlinkSync(join(from, file), join(scratch, file));
  }
}

/** Everything a conversion decides before writing: the GGUF and MLX plans and the vocabulary. */
export async function planEverything(folder: string): Promise<void> {
  const checkpoint = await openCheckpoint(folder);
  try {
    const architecture = resolveArchitecture(checkpoint.config, checkpoint.configFile);
    const plan = planFromCheckpoint(checkpoint, architecture, resolveScheme("f16"), "fuzz");
    if (architecture.formats.includes("mlx")) planMlx(checkpoint, architecture, { bits: 4, groupSize: 64 });
    await readVocabulary(folder, plan.hparams.vocabSize);
    for (const tensor of plan.tensors) {
      if (tensor.origin.kind === "source") await tensor.origin.tensor.read(0, Math.min(tensor.origin.tensor.byteLength, 64));
    }
  } finally {
    await checkpoint.close();
  }
}
