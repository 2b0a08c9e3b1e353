import { hfModule, presentHfTensorName, type TensorRole } from "../../arch/tensor-names.js";
import { UserError } from "../../errors.js";
import type { WeightEncoding } from "../../plan/onnx.js";
import type { SourceTensor } from "../../readers/source-tensor.js";
import type { DecoderSource } from "./decoder.js";
import { GraphBuilder, MS_DOMAIN } from "./graph.js";
import { methodBits, type NBitsLayout } from "./nbits.js";
import { ElementType } from "./proto.js";
import { expectShape, writeFloatTensor, writeNBits, writeTransposed } from "./weights.js";

const F = ElementType.FLOAT;

function describe(encoding: Extract<WeightEncoding, { kind: "nbits" }>): string {
  const { method } = encoding;
  return `${method.kind === "ternary" ? `ternary (2-bit, scale ${method.scale})` : `${method.kind} (${methodBits(method)}-bit)`}, block ${encoding.blockSize}`;
}

/**
 * Writes the checkpoint's weights as the graph asks for them, by tensor role: each weight is
 * encoded as the plan says, streamed into the external data file, and wired into its node.
 */
export class OnnxWeights {
  /** Weight encodings by Hugging Face tensor name, for the report. */
  readonly encodings = new Map<string, string>();

  constructor(
    private readonly src: DecoderSource,
    private readonly g: GraphBuilder,
  ) {}

  /** The Hugging Face tensor name of a role's weight (or bias), under whichever of its names the checkpoint uses. */
  name(role: TensorRole, block?: number, suffix: "weight" | "bias" = "weight"): string {
    return presentHfTensorName(this.src.architecture, role, (name) => this.src.tensor(name) !== undefined, block, suffix);
  }

  /** Node names follow the Hugging Face module path, as onnxruntime-genai's builder names them. */
  node(role: TensorRole, block?: number): string {
    return `/${hfModule(this.src.architecture, role, block).replaceAll(".", "/")}`;
  }

  private required(name: string, shape: readonly number[]): SourceTensor {
    const tensor = this.src.tensor(name);
    if (!tensor) throw new UserError(`checkpoint has no tensor '${name}'`);
    expectShape(tensor, shape);
    return tensor;
  }

  /** A 1-D float32 weight (norms, biases). */
  async vector(role: TensorRole, block: number | undefined, width: number, suffix: "weight" | "bias" = "weight"): Promise<string> {
    const name = this.name(role, block, suffix);
    const source = this.required(name, [width]);
    const proto = await writeFloatTensor(this.src.writer, name, source, "F32", this.src.stats);
    this.src.onTensor(name, source.byteLength);
    this.encodings.set(name, "F32");
    return this.g.initializer(proto);
  }

  rmsNorm(x: string, weight: string, role: TensorRole, block?: number): string {
    return this.g.op("SimplifiedLayerNormalization", `${this.node(role, block)}/SimplifiedLayerNorm`, [x, weight], { axis: -1, epsilon: { float: this.src.hparams.rmsNormEps }, stash_type: 1 });
  }

  /**
   * x W^T (+ b) for the role's weight [out, in]; `from` names the role whose tensor holds the
   * weight (the token embedding for a tied output), written under this role's own name.
   */
  async linear(x: string, role: TensorRole, block: number | undefined, inFeatures: number, outFeatures: number, from: TensorRole = role): Promise<string> {
    const g = this.g;
    const weightName = this.name(role, block);
    const source = this.required(this.name(from, block), [outFeatures, inFeatures]);
    const encoding = await this.src.plan.linear(role, source);
    const node = this.node(role, block);
    let y: string;
    if (encoding.kind === "float") {
      const proto = await writeTransposed(this.src.writer, `${weightName}.T`, source, encoding.storage, this.src.stats);
      let weight = g.initializer(proto);
      if (encoding.storage !== "F32") weight = g.op("Cast", `${node}/weight_cast`, [weight], { to: F });
      y = g.op("MatMul", `${node}/MatMul`, [x, weight]);
      this.encodings.set(weightName, encoding.storage);
    } else {
      const bits = methodBits(encoding.method);
      const layout: NBitsLayout = { bits, blockSize: encoding.blockSize, k: inFeatures, n: outFeatures };
      const tensors = await writeNBits(this.src.writer, weightName, source, layout, encoding.method, this.src.stats);
      const inputs = [x, g.initializer(tensors.b), g.initializer(tensors.scales)];
      if (tensors.zeroPoints) inputs.push(g.initializer(tensors.zeroPoints));
      y = g.op("MatMulNBits", `${node}/MatMulNBits`, inputs, { K: inFeatures, N: outFeatures, bits, block_size: encoding.blockSize, accuracy_level: this.src.accuracyLevel }, MS_DOMAIN);
      this.encodings.set(weightName, `MatMulNBits ${describe(encoding)}`);
    }
    this.src.onTensor(source.name, source.byteLength);
    if (from === role && this.src.tensor(this.name(role, block, "bias"))) y = g.op("Add", `${node}/Add`, [y, await this.vector(role, block, outFeatures, "bias")]);
    return y;
  }

  /** The token embedding lookup: a float Gather, or GatherBlockQuantized on MatMulNBits' blocks. */
  async embedding(inputIds: string): Promise<string> {
    const g = this.g;
    const { vocabSize, hiddenSize } = this.src.hparams;
    const name = this.name("token_embd");
    const node = this.node("token_embd");
    const source = this.required(name, [vocabSize, hiddenSize]);
    const encoding = await this.src.plan.embedding(source);
    let x: string;
    if (encoding.kind === "float") {
      const proto = await writeFloatTensor(this.src.writer, name, source, encoding.storage, this.src.stats);
      this.encodings.set(name, `Gather ${encoding.storage}`);
      x = g.op("Gather", `${node}/Gather`, [g.initializer(proto), inputIds], { axis: 0 });
      if (encoding.storage !== "F32") x = g.op("Cast", `${node}/Cast`, [x], { to: F });
    } else {
      // Same blocks as MatMulNBits, with B flattened to [vocab, hidden * bits / 8] as GatherBlockQuantized wants it.
      const bits = methodBits(encoding.method);
      const layout: NBitsLayout = { bits, blockSize: encoding.blockSize, k: hiddenSize, n: vocabSize };
      const tensors = await writeNBits(this.src.writer, name, source, layout, encoding.method, this.src.stats, { flat: true });
      const inputs = [g.initializer(tensors.b), inputIds, g.initializer(tensors.scales)];
      if (tensors.zeroPoints) inputs.push(g.initializer(tensors.zeroPoints));
      x = g.op("GatherBlockQuantized", `${node}/GatherBlockQuantized`, inputs, { bits, block_size: encoding.blockSize, gather_axis: 0, quantize_axis: 1 }, MS_DOMAIN);
      this.encodings.set(name, `GatherBlockQuantized ${describe(encoding)}`);
    }
    this.src.onTensor(name, source.byteLength);
    return x;
  }
}
