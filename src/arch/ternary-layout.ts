import type { Checkpoint } from "../readers/checkpoint.js";
import type { Architecture } from "./types.js";

/**
 * How a checkpoint stores ternary linear weights, when it does in a way the converter must undo:
 * packed 2-bit codes (uint8 weights beside a `weight_scale`, as microsoft/bitnet-b1.58-2B-4T
 * stores them), or BitNet master weights that the model ternarises. Decided from the tensors,
 * not from `quantization_config`: the BF16 master-weight release carries the same
 * `quant_method` as the packed one. Fake-quantized float checkpoints need nothing.
 */
export function ternaryLayout(checkpoint: Checkpoint, architecture: Architecture): "packed" | "absmean" | undefined {
  if (!architecture.ternarisesLinearWeights) return undefined;
  for (const tensor of checkpoint.tensors.values()) {
    if (tensor.dtype === "U8" && tensor.name.endsWith(".weight") && checkpoint.tensors.has(`${tensor.name}_scale`)) return "packed";
  }
  return "absmean";
}
