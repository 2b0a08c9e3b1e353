/**
 * BitNet b1.58 in mlx-lm's layout (mlx_lm/models/bitnet.py, bitlinear_layers.py; ml-explore/mlx-lm d78bf58):
 *  - every decoder linear layer is a BitLinear (bitnet.py:48-51, 107-109): `X.weight` uint8
 *    [out / 4, in], where byte [r, c] holds the codes of rows r, r + out/4, r + 2 out/4, r + 3 out/4
 *    at bits 0-1, 2-3, 4-5, 6-7 and code - 1 is the trit (the kernel, bitlinear_layers.py:59-64, 76),
 *    and `X.weight_scale` [1] in the activations' dtype (line 129-130);
 *  - the output of the matmul is multiplied by weight_scale: bitnet.py constructs its BitLinear
 *    layers with invert_weight_scales False (bitlinear_layers.py:102, 74), and bitnet_quantize
 *    only replaces nn.Linear modules (line 19), i.e. an untied lm_head, so `linear_class` never
 *    inverts a projection. We write weight_scale = s, the tensor's one ternary magnitude, so that
 *    trit * weight_scale is the ternary weight exactly;
 *  - config.json has no `quantization` (load_model would take the affine path, utils.py:391)
 *    but the architecture's `quantization_config`: quant_method "bitnet" (utils.py:398), offline, "autobitlinear"
 *    (transformers' AutoBitLinear also multiplies by weight_scale). BitNet checkpoints are tied
 *    (the architecture has no output layer), so bitnet_quantize finds no nn.Linear to replace.
 */

import { UserError } from "../errors.js";
import { SAFETENSORS_DTYPES } from "../readers/dtypes.js";
import type { MlxUnit } from "./mlx.js";

export function bitLinearUnit(base: Pick<MlxUnit, "source" | "module" | "role" | "dtype" | "parameters">): MlxUnit {
  const { source, module, dtype } = base;
  const [rows, inputs] = source.shape as [number, number];
  // The kernel reads out_features / 4 packed rows and four inputs at a time (bitlinear_layers.py:48-57).
  if (rows % 4 !== 0 || inputs % 4 !== 0) {
    throw new UserError(`mlx-lm's BitLinear needs both dimensions to be multiples of 4, this weight is [${rows}, ${inputs}]`, { file: source.file, tensor: source.name });
  }
  return {
    ...base,
    encoding: { kind: "bitlinear" },
    outputs: [
      { name: `${module}.weight`, dtype: "U8", shape: [rows / 4, inputs], byteLength: (rows / 4) * inputs },
      { name: `${module}.weight_scale`, dtype, shape: [1], byteLength: SAFETENSORS_DTYPES[dtype].bytes },
    ],
  };
}
