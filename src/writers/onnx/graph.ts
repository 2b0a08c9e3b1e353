import { attribute, ElementType, inlineTensor, int64Bytes, valueInfo, type AttributeValue, type Dim, type ModelProto, type NodeProto, type TensorProto, type ValueInfoProto } from "./proto.js";

export const MS_DOMAIN = "com.microsoft";

/** Opset versions the graph is written for: ONNX 17 plus ONNX Runtime's contrib ops. */
const OPSETS = [
  { domain: "", version: 17 },
  { domain: MS_DOMAIN, version: 1 },
] as const;

/** ONNX IR version 8 (ONNX 1.10+, every ONNX Runtime since 1.10 reads it). */
const IR_VERSION = 8;

/**
 * Collects nodes, initializers and graph inputs/outputs. Node outputs get unique
 * names from the node's name, so building code reads like the forward pass.
 */
export class GraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  readonly inputs: ValueInfoProto[] = [];
  readonly outputs: ValueInfoProto[] = [];
  private readonly usedNames = new Set<string>();
  private readonly constants = new Map<string, string>();

  input(name: string, elemType: ElementType, shape: readonly Dim[]): string {
    this.claim(name);
    this.inputs.push(valueInfo(name, elemType, shape));
    return name;
  }

  output(name: string, elemType: ElementType, shape: readonly Dim[]): void {
    this.outputs.push(valueInfo(name, elemType, shape));
  }

  initializer(tensor: TensorProto): string {
    this.claim(tensor.name!);
    this.initializers.push(tensor);
    return tensor.name!;
  }

  /** An int64 constant initializer, shared between nodes that use the same values. */
  int64(values: readonly number[], scalar = false): string {
    const key = `${scalar ? "s" : "v"}:${values.join(",")}`;
    const found = this.constants.get(key);
    if (found) return found;
    const name = this.unique(`const_i64_${scalar ? "s" : "v"}_${values.join("_").replaceAll("-", "m")}`);
    // unique() has claimed the name already.
    this.initializers.push(inlineTensor(name, ElementType.INT64, scalar ? [] : [values.length], int64Bytes(values)));
    this.constants.set(key, name);
    return name;
  }

  /** A float32 scalar constant initializer (muP multipliers), shared like the int64 ones. */
  float(value: number): string {
    const key = `f:${value}`;
    const found = this.constants.get(key);
    if (found) return found;
    const name = this.unique(`const_f32_${String(value).replaceAll("-", "m").replaceAll(".", "p")}`);
    this.initializers.push(inlineTensor(name, ElementType.FLOAT, [], new Uint8Array(new Float32Array([value]).buffer)));
    this.constants.set(key, name);
    return name;
  }

  /**
   * Adds a node named `name` and returns its output names. `outputs` may name them
   * (graph outputs must have fixed names); otherwise they are `${name}/output_${i}`.
   */
  node(
    opType: string,
    name: string,
    inputs: readonly string[],
    options: { outputs?: number | readonly string[]; attributes?: Record<string, AttributeValue>; domain?: string } = {},
  ): string[] {
    const nodeName = this.unique(name);
    const outputs =
      typeof options.outputs === "object"
        ? options.outputs.map((output) => (output === "" ? "" : this.claim(output)))
        : Array.from({ length: options.outputs ?? 1 }, (_, i) => this.claim(`${nodeName}/output_${i}`));
    this.nodes.push({
      name: nodeName,
      opType,
      domain: options.domain ?? "",
      input: [...inputs],
      output: outputs,
      attribute: Object.entries(options.attributes ?? {}).map(([key, value]) => attribute(key, value)),
    });
    return outputs;
  }

  /** Shorthand for a node with one output. */
  op(opType: string, name: string, inputs: readonly string[], attributes?: Record<string, AttributeValue>, domain?: string): string {
    return this.node(opType, name, inputs, { ...(attributes ? { attributes } : {}), ...(domain ? { domain } : {}) })[0]!;
  }

  model(graphName: string, docString: string, metadata: Record<string, string> = {}): ModelProto {
    return {
      irVersion: IR_VERSION,
      producerName: "edgequant",
      producerVersion: "0.1.0",
      docString,
      opsetImport: OPSETS.map((o) => ({ ...o })),
      metadataProps: Object.entries(metadata).map(([key, value]) => ({ key, value })),
      graph: { name: graphName, node: this.nodes, initializer: this.initializers, input: this.inputs, output: this.outputs },
    };
  }

  private unique(base: string): string {
    let name = base;
    for (let i = 1; this.usedNames.has(name); i++) name = `${base}_${i}`;
    this.usedNames.add(name);
    return name;
  }

  private claim(name: string): string {
    if (this.usedNames.has(name)) throw new Error(`internal: ONNX name '${name}' used twice`);
    this.usedNames.add(name);
    return name;
  }
}
