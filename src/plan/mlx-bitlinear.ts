/**
 * mlx-lm's BitLinear layout (mlx_lm/models/bitlinear_layers.py; ml-explore/mlx-lm d78bf58), for
 * architectures whose file declares `mlx.bitLinear` (why each one does is said there):
 *  - `X.weight` uint8 [out / 4, in], where byte [r, c] holds the codes of rows r, r + out/4,
 *    r + 2 out/4, r + 3 out/4 at bits 0-1, 2-3, 4-5, 6-7, and code - 1 is the trit (the kernel,
 *    bitlinear_layers.py:59-64, 76);
 *  - `X.weight_scale` [1] in the activations' dtype, multiplying the matmul's output when the
 *    layer is built with invert_weight_scales False (bitlinear_layers.py:74, 102). We write
 *    weight_scale = s, the tensor's one ternary magnitude, so trit * weight_scale is exact;
 *  - config.json carries the architecture's `quantization_config` instead of a `quantization`
 *    block (load_model would take the affine path then, utils.py:391, 398).
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
