/**
 * Which bits and group size each module gets.
 *
 * Mixed recipes follow mlx-lm's `mixed_quant_predicate_builder`
 * (mlx_lm/convert.py): recipe "L_H" quantizes with L bits except, at H bits,
 * the output layer and the value / down projections of the layers where
 * `use_more_bits` holds (llama.cpp's rule, ../../quant/mixtures.ts). Python's floor
 * division and modulo there agree with C's truncating ones: the layer index is never
 * negative, and `index - n // 8` is negative only where `index < n // 8` has already decided.
 */

import type { TensorRole } from "../../arch/tensor-names.js";
import { useMoreBits } from "../../quant/mixtures.js";
import { MLX_GROUP_SIZES, type MlxBits, type MlxGroupSize } from "./affine.js";

export type MixedRecipe = "2_6" | "3_4" | "3_6" | "4_6";
export const MIXED_RECIPES: Readonly<Record<MixedRecipe, { readonly low: MlxBits; readonly high: MlxBits }>> = {
  "2_6": { low: 2, high: 6 },
  "3_4": { low: 3, high: 4 },
  "3_6": { low: 3, high: 6 },
  "4_6": { low: 4, high: 6 },
};

export function isMixedRecipe(value: unknown): value is MixedRecipe {
  return typeof value === "string" && Object.hasOwn(MIXED_RECIPES, value);
}

/**
 * The bits mlx-lm's mixed predicate gives a weight, by its role: the value and down
 * projections of decoder layer `block` where use_more_bits holds, and the output layer,
 * get the high bits (mlx-lm matches "v_proj" / "down_proj" / "lm_head" in the module path).
 */
export function mixedBits(recipe: MixedRecipe, role: TensorRole, block: number | undefined, layers: number): MlxBits {
  const { low, high } = MIXED_RECIPES[recipe];
  if (role === "output") return high;
  const more = useMoreBits(block ?? 0, layers);
  // "v_proj" also matches a fused "qkv_proj" path (Phi-3), so the fused projection gets the high bits too.
  if ((role === "attn_v" || role === "attn_qkv" || role === "ffn_down") && more) return high;
  return low;
}

/**
 * The group size for a weight whose rows have `inputs` values: the requested
 * one if it divides `inputs`, else the largest size MLX allows that does, else
 * undefined (the weight stays in float). mlx-lm itself keeps any weight whose
 * input dimension the group size does not divide in float
 * (mlx_lm/utils.py quantize_model, `module.weight.shape[-1] % group_size`).
 */
export function chooseGroupSize(inputs: number, requested: MlxGroupSize): MlxGroupSize | undefined {
  if (inputs % requested === 0) return requested;
  const fits = MLX_GROUP_SIZES.filter((size) => inputs % size === 0);
  return fits.length === 0 ? undefined : Math.max(...fits) as MlxGroupSize;
}
