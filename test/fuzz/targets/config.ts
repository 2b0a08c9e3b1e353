import { writeFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { convertToOnnx } from "../../../src/convert/onnx.js";
import type { FuzzTarget } from "../target.js";
import { linkMicroModel, MICRO_CONFIG, planEverything } from "./base.js";
import { anyJson } from "./values.js";

/** Keys the converters read, and a few they should ignore. */
const KEYS = [
  "architectures", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim",
  "max_position_embeddings", "rms_norm_eps", "rope_theta", "rope_scaling", "rope_parameters", "vocab_size", "tie_word_embeddings",
  "bos_token_id", "eos_token_id", "torch_dtype", "quantization_config", "hidden_act", "attention_bias", "mlp_bias", "model_type",
];

const ROPE_SCALING = fc.record({
  rope_type: fc.oneof(fc.constantFrom("linear", "yarn", "llama3", "longrope", "dynamic", "default"), anyJson),
  factor: anyJson,
  original_max_position_embeddings: anyJson,
  low_freq_factor: anyJson,
  high_freq_factor: anyJson,
}, { requiredKeys: [] });

interface ConfigCase {
  readonly edits: readonly [string, unknown][];
  /** Also export to ONNX (slower: it writes a model), which sizes constants by the config. */
  readonly onnx: boolean;
}

export const configTarget: FuzzTarget<ConfigCase> = {
  name: "config",
  description: "config.json with read keys set to values of every type and size",
  input: fc.record({
    edits: fc.array(fc.tuple(fc.constantFrom(...KEYS), fc.oneof(anyJson, ROPE_SCALING)), { minLength: 1, maxLength: 4 }),
    onnx: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
  }),
  async run(input, scratch) {
    const config: Record<string, unknown> = { ...MICRO_CONFIG };
    for (const [key, value] of input.edits) config[key] = value;
    writeFileSync(join(scratch, "config.json"), JSON.stringify(config));
    linkMicroModel(scratch, ["config.json"]);
    await planEverything(scratch);
    if (input.onnx) await convertToOnnx({ source: scratch, output: join(scratch, "onnx-out"), bits: 32 });
  },
};
