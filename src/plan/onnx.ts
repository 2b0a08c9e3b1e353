/**
 * Decides how every weight of an ONNX export is stored, before it is written: float (32 or
 * 16 bits), or MatMulNBits / GatherBlockQuantized blocks with GGUF Q8_0 / Q4_0 math, or ternary
 * 2-bit codes. The choices follow llama.cpp's mixtures: the output projection stays at 8 bits
 * in a 4-bit export (Q4_0 keeps output.weight at Q6_K), the token embedding follows the scheme.
 */
import { isBlockLinear, type TensorRole } from "../arch/tensor-names.js";
import type { OnnxBits } from "../options.js";
import type { SourceTensor } from "../readers/source-tensor.js";
import type { NBitsMethod } from "../writers/onnx/nbits.js";
import { ternaryStatistics, type FloatStorage } from "../writers/onnx/weights.js";


/** How one weight is stored. */
export type WeightEncoding =
  | { readonly kind: "float"; readonly storage: FloatStorage }
  | { readonly kind: "nbits"; readonly blockSize: number; readonly method: NBitsMethod };

export class OnnxWeightPlan {
  /** Weights at 1.58 bits that were not ternary and were ternarised anyway (lossy), by name. */
  readonly lossyTernary: string[] = [];

  constructor(
    readonly bits: OnnxBits,
    readonly groupSize: number,
    /** The float storage of weights kept in float at 1.58 bits: the source's, F32 or F16. */
    private readonly keptFloat: FloatStorage,
  ) {}

  /** Float and 8-bit weights are stored the same way whatever the tensor; 4 and 1.58 bits depend on it. */
  private common(): WeightEncoding | undefined {
    if (this.bits === 32) return { kind: "float", storage: "F32" };
    if (this.bits === 16) return { kind: "float", storage: "F16" };
    if (this.bits === 8) return this.nbits({ kind: "q8_0" });
    return undefined;
  }

  private nbits(method: NBitsMethod): WeightEncoding {
    return { kind: "nbits", blockSize: this.groupSize, method };
  }

  /** A MatMul weight: a block Linear, or the output projection (which may be the tied embedding). */
  async linear(role: TensorRole, source: SourceTensor): Promise<WeightEncoding> {
    const common = this.common();
    if (common) return common;
    const head = !isBlockLinear(role);
    if (this.bits === 4) return this.nbits(head ? { kind: "q8_0" } : { kind: "q4_0" });
    const { exact, absMean } = await ternaryStatistics(source);
    if (exact !== undefined) return this.nbits({ kind: "ternary", scale: exact });
    // BitNet keeps the output projection in full precision; so do we when it is not ternary.
    if (head) return { kind: "float", storage: this.keptFloat };
    this.lossyTernary.push(source.name);
    return this.nbits({ kind: "ternary", scale: Math.fround(Math.max(absMean, 1e-5)) });
  }

  /** The token embedding table: a float Gather or a GatherBlockQuantized, Q4_0 in a 4-bit export as in a Q4_0 GGUF. */
  async embedding(source: SourceTensor): Promise<WeightEncoding> {
    const common = this.common();
    if (common) return common;
    if (this.bits === 4) return this.nbits({ kind: "q4_0" });
    const { exact } = await ternaryStatistics(source);
    return exact !== undefined ? this.nbits({ kind: "ternary", scale: exact }) : { kind: "float", storage: this.keptFloat };
  }
}
