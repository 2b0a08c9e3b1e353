import { existsSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { gguf, GGUFValueType } from "@huggingface/gguf";
import { UserError } from "./errors.js";
import { openCheckpoint } from "./readers/checkpoint.js";
import { ggmlTypeName, tensorBytes, type GgmlType } from "./quant/ggml-types.js";

export interface InspectedTensor {
  readonly name: string;
  /** safetensors dtype or ggml type name. */
  readonly type: string;
  /** PyTorch order, outermost first, for both formats so they compare directly. */
  readonly shape: readonly number[];
  readonly bytes: number;
}

export interface InspectReport {
  readonly path: string;
  readonly format: "safetensors" | "gguf";
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly tensors: readonly InspectedTensor[];
  readonly totalBytes: number;
  readonly parameters: number;
}

/** Lists tensors and metadata of a safetensors checkpoint (file or folder) or a GGUF file. */
export async function inspect(path: string): Promise<InspectReport> {
  if (!existsSync(path)) throw new UserError("no such file or folder", { file: path });
  const isGguf = statSync(path).isFile() && path.endsWith(".gguf");
  return isGguf ? inspectGguf(path) : inspectCheckpoint(path);
}

async function inspectCheckpoint(path: string): Promise<InspectReport> {
  const checkpoint = await openCheckpoint(path);
  try {
    const tensors = [...checkpoint.tensors.values()].map((t) => ({ name: t.name, type: t.dtype, shape: t.shape, bytes: t.byteLength }));
    return report(resolve(path), "safetensors", { config: checkpoint.config }, tensors);
  } finally {
    await checkpoint.close();
  }
}

async function inspectGguf(path: string): Promise<InspectReport> {
  const parsed = await gguf(resolve(path), { allowLocalFile: true, typedMetadata: true }).catch((cause: Error) => {
    throw new UserError(`not a readable GGUF file (${cause.message})`, { file: path });
  });
  const metadata: Record<string, unknown> = {};
  for (const [key, entry] of Object.entries(parsed.typedMetadata)) {
    if (key === "version" || key === "tensor_count" || key === "kv_count") continue;
    const { value, type } = entry as { value: unknown; type: GGUFValueType };
    // Vocabularies hold 100k+ entries: summarise arrays instead of printing them.
    metadata[key] = type === GGUFValueType.ARRAY && Array.isArray(value) ? `[${value.length} items]` : typeof value === "bigint" ? Number(value) : value;
  }
  const tensors = parsed.tensorInfos.map((info) => {
    const shape = info.shape.map(Number).reverse();
    const type = info.dtype as unknown as GgmlType;
    return { name: info.name, type: ggmlTypeName(type), shape, bytes: tensorBytes(type, shape) };
  });
  return report(resolve(path), "gguf", metadata, tensors);
}

function report(path: string, format: InspectReport["format"], metadata: Record<string, unknown>, tensors: InspectedTensor[]): InspectReport {
  return {
    path,
    format,
    metadata,
    tensors,
    totalBytes: tensors.reduce((sum, t) => sum + t.bytes, 0),
    parameters: tensors.reduce((sum, t) => sum + t.shape.reduce((a, b) => a * b, 1), 0),
  };
}
