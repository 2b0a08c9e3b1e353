import { existsSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { GGUFValueType } from "@huggingface/gguf";
import { UserError } from "./errors.js";
import { ARCHITECTURES } from "./arch/index.js";
import { ternaryLayout } from "./arch/ternary-layout.js";
import { decodeFloats } from "./quant/float.js";
import { TernaryScan } from "./quant/ternary.js";
import { openCheckpoint, type Checkpoint } from "./readers/checkpoint.js";
import { readGgufHeader } from "./readers/gguf-header.js";
import { isFloatDtype, type FloatDtype } from "./readers/dtypes.js";
import { ggmlTypeName, tensorBytes, type GgmlType } from "./quant/ggml-types.js";

export interface InspectedTensor {
  readonly name: string;
  /** safetensors dtype or ggml type name. */
  readonly type: string;
  /** PyTorch order, outermost first, for both formats so they compare directly. */
  readonly shape: readonly number[];
  readonly bytes: number;
}

/** How a checkpoint holds ternary (1.58-bit) weights, which decides whether --bits 1.58 is lossless. */
export type TernaryKind =
  | "bitnet-packed" // uint8 2-bit codes + weight_scale
  | "bitnet-master-weights" // full precision, ternarised by the model (absmean)
  | "fake-quantized" // floats that are already {-s, 0, +s} per tensor (BitCPM, ternary fine-tunes)
  | "not-ternary";

export const INSPECT_REPORT_SCHEMA = "edgequant-inspect/v1";

export interface InspectOptions {
  /** Cut metadata arrays (vocabularies hold 100k+ entries) to this many items; their full lengths go to `truncatedArrays`. */
  readonly maxArray?: number;
}

export interface InspectReport {
  readonly schema: typeof INSPECT_REPORT_SCHEMA;
  readonly path: string;
  readonly format: "safetensors" | "gguf";
  /** Checkpoints only. */
  readonly ternary?: TernaryKind;
  readonly metadata: Readonly<Record<string, unknown>>;
  /** GGUF only: each key's value type as GGUF names it (UINT32, STRING, ARRAY[STRING], ...). */
  readonly metadataTypes?: Readonly<Record<string, string>>;
  /** Arrays cut by `maxArray`: key -> full length. */
  readonly truncatedArrays?: Readonly<Record<string, number>>;
  readonly tensors: readonly InspectedTensor[];
  readonly totalBytes: number;
  readonly parameters: number;
}

/** Lists tensors and metadata of a safetensors checkpoint (file or folder) or a GGUF file. */
export async function inspect(path: string, options: InspectOptions = {}): Promise<InspectReport> {
  if (!existsSync(path)) throw new UserError("no such file or folder", { file: path });
  const isGguf = statSync(path).isFile() && path.endsWith(".gguf");
  return isGguf ? inspectGguf(path, options) : inspectCheckpoint(path);
}

async function inspectCheckpoint(path: string): Promise<InspectReport> {
  const checkpoint = await openCheckpoint(path);
  try {
    const tensors = [...checkpoint.tensors.values()].map((t) => ({ name: t.name, type: t.dtype, shape: t.shape, bytes: t.byteLength }));
    return { ...report(resolve(path), "safetensors", { config: checkpoint.config }, tensors), ternary: await ternaryKind(checkpoint) };
  } finally {
    await checkpoint.close();
  }
}

async function inspectGguf(path: string, options: InspectOptions): Promise<InspectReport> {
  const parsed = await readGgufHeader(path);
  const metadata: Record<string, unknown> = {};
  const metadataTypes: Record<string, string> = {};
  const truncatedArrays: Record<string, number> = {};
  for (const [key, entry] of Object.entries(parsed.typedMetadata)) {
    if (key === "version" || key === "tensor_count" || key === "kv_count") continue;
    const { value, type, subType } = entry as { value: unknown; type: GGUFValueType; subType?: GGUFValueType };
    metadataTypes[key] = type === GGUFValueType.ARRAY ? `ARRAY[${GGUFValueType[subType ?? GGUFValueType.ARRAY]}]` : GGUFValueType[type];
    if (Array.isArray(value) && options.maxArray !== undefined && value.length > options.maxArray) {
      truncatedArrays[key] = value.length;
      metadata[key] = value.slice(0, options.maxArray).map(jsonNumber);
    } else metadata[key] = Array.isArray(value) ? value.map(jsonNumber) : jsonNumber(value);
  }
  const tensors = parsed.tensorInfos.map((info) => {
    const shape = info.shape.map(Number).reverse();
    const type = info.dtype as unknown as GgmlType;
    return { name: info.name, type: ggmlTypeName(type), shape, bytes: tensorBytes(type, shape) };
  });
  return {
    ...report(resolve(path), "gguf", metadata, tensors),
    metadataTypes,
    ...(Object.keys(truncatedArrays).length > 0 ? { truncatedArrays } : {}),
  };
}

/** 64-bit integers as JSON numbers when exact, else as decimal strings. */
function jsonNumber(value: unknown): unknown {
  if (typeof value !== "bigint") return value;
  return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
}

const LINEAR_WEIGHT = /\.(q|k|v|o|gate|up|down)_proj\.weight$/;

/** Packed and master-weight BitNet are known from the config; floats are read until one is not ternary. */
async function ternaryKind(checkpoint: Checkpoint): Promise<TernaryKind> {
  const architecture = ARCHITECTURES.find((arch) => arch.hfArchitectures.includes(String((checkpoint.config["architectures"] as unknown[] | undefined)?.[0])));
  const layout = architecture && ternaryLayout(checkpoint, architecture);
  if (layout === "packed") return "bitnet-packed";
  if (layout === "absmean") return "bitnet-master-weights";
  const linear = [...checkpoint.tensors.values()].filter((t) => LINEAR_WEIGHT.test(t.name) && isFloatDtype(t.dtype));
  if (linear.length === 0) return "not-ternary";
  for (const tensor of linear) {
    if (!new TernaryScan().check(decodeFloats(await tensor.file.read(tensor.name), tensor.dtype as FloatDtype))) return "not-ternary";
  }
  return "fake-quantized";
}

function report(path: string, format: InspectReport["format"], metadata: Record<string, unknown>, tensors: InspectedTensor[]): InspectReport {
  return {
    schema: INSPECT_REPORT_SCHEMA,
    path,
    format,
    metadata,
    tensors,
    totalBytes: tensors.reduce((sum, t) => sum + t.bytes, 0),
    parameters: tensors.reduce((sum, t) => sum + t.shape.reduce((a, b) => a * b, 1), 0),
  };
}
