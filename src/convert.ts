import { basename } from "node:path";
import { resolveArchitecture } from "./arch/index.js";
import { planFromCheckpoint, planFromGguf, type GgufPlan, type PlannedTensor } from "./plan/gguf-plan.js";
import { openCheckpoint } from "./readers/checkpoint.js";
import { openGgufInput } from "./readers/gguf-input.js";
import { encodeTensor } from "./quant/encode-tensor.js";
import { GgmlType, tensorBytes, ggmlTypeName } from "./quant/ggml-types.js";
import { KernelPool } from "./quant/pool.js";
import type { Scheme } from "./quant/schemes.js";
import { explainPreTokenizer, readVocabulary, vocabularyMetadata, type Vocabulary } from "./tokenizer/index.js";
import type { GgufMetadata } from "./writers/gguf/metadata.js";
import { writeGguf } from "./writers/gguf/writer.js";

export interface ConversionProgress {
  readonly tensor: string;
  readonly doneBytes: number;
  readonly totalBytes: number;
}

export interface GgufConversionOptions {
  /** A model folder, a .safetensors file, or an F32/F16/BF16 .gguf to re-quantize. */
  readonly source: string;
  readonly output: string;
  readonly scheme: Scheme;
  /** Quantization worker threads; default: available cores. Output bytes do not depend on it. */
  readonly threads?: number;
  /** Quantize non-ternary weights to TQ1_0/TQ2_0 anyway; by default they are refused (exit 2). */
  readonly allowLossyTernary?: boolean;
  readonly onProgress?: (progress: ConversionProgress) => void;
}

export interface ConversionReport {
  readonly output: string;
  readonly format: "gguf";
  readonly architecture: string;
  readonly scheme: string;
  readonly tensors: number;
  readonly bytes: number;
  /** Absent when the source was a GGUF, whose vocabulary is copied as it is. */
  readonly tokenizer?: { readonly model: "llama" | "gpt2"; readonly pre?: string; readonly preDecision?: string };
  readonly warnings: readonly string[];
}

/** Checkpoint or GGUF -> GGUF: read, plan, encode and write, a chunk of one tensor in memory at a time. */
export async function convertToGguf(options: GgufConversionOptions): Promise<ConversionReport> {
  if (options.source.endsWith(".gguf")) {
    const input = await openGgufInput(options.source);
    try {
      const plan = planFromGguf(input, options.scheme);
      return await writePlan(plan, plan.metadata, [], options);
    } finally {
      await input.close();
    }
  }
  const checkpoint = await openCheckpoint(options.source);
  try {
    const architecture = resolveArchitecture(checkpoint.config, checkpoint.configFile);
    const plan = planFromCheckpoint(checkpoint, architecture, options.scheme, basename(checkpoint.directory));
    const vocabulary = await readVocabulary(checkpoint.directory, plan.hparams.vocabSize);
    const metadata = new Map([...plan.metadata, ...vocabularyMetadata(vocabulary)]);
    const report = await writePlan(plan, metadata, vocabulary.warnings, options);
    return { ...report, tokenizer: tokenizerSummary(vocabulary) };
  } finally {
    await checkpoint.close();
  }
}

async function writePlan(plan: GgufPlan, metadata: GgufMetadata, initialWarnings: readonly string[], options: GgufConversionOptions): Promise<ConversionReport> {
  const warnings = [...initialWarnings];
  const quantized = plan.tensors.some((t) => !isFloatType(t.type));
  const pool = quantized ? new KernelPool(options.threads === undefined ? {} : { threads: options.threads }) : undefined;
  const totalBytes = plan.tensors.reduce((sum, t) => sum + tensorBytes(t.type, t.shape), 0);
  let doneBytes = 0;
  const written = await writeGguf(
    options.output,
    metadata,
    plan.tensors.map((tensor) => ({
      name: tensor.name,
      type: tensor.type,
      shape: tensor.shape,
      produce: async function* () {
        const stats = { nonFiniteInSource: 0, overflowed: 0 };
        yield* encodeTensor(tensor, stats, { ...(pool ? { pool } : {}), allowLossyTernary: options.allowLossyTernary ?? false });
        warnings.push(...tensorWarnings(tensor, stats.nonFiniteInSource, stats.overflowed));
      },
    })),
    {
      onTensorWritten: (tensor, bytes) => {
        doneBytes += bytes;
        options.onProgress?.({ tensor: tensor.name, doneBytes, totalBytes });
      },
    },
  ).finally(() => pool?.destroy());
  return {
    output: options.output,
    format: "gguf",
    architecture: plan.architecture.gguf,
    scheme: options.scheme.name,
    tensors: plan.tensors.length,
    bytes: written.bytes,
    warnings,
  };
}

function tensorWarnings(tensor: PlannedTensor, nonFinite: number, overflowed: number): string[] {
  const source = tensor.origin.kind === "source" ? tensor.origin.tensor.name : tensor.name;
  const warnings: string[] = [];
  if (nonFinite > 0) warnings.push(`tensor '${source}': ${nonFinite} NaN/Inf values in the source, converted as they are; the model may produce NaN`);
  if (overflowed > 0) {
    warnings.push(`tensor '${source}': ${overflowed} values exceed the ${ggmlTypeName(tensor.type)} range and became ±Inf; use --scheme bf16 or f32`);
  }
  return warnings;
}

function tokenizerSummary(vocabulary: Vocabulary): ConversionReport["tokenizer"] {
  if (vocabulary.model === "llama") return { model: "llama" };
  return { model: "gpt2", pre: vocabulary.pre.name, preDecision: explainPreTokenizer(vocabulary.pre) };
}

function isFloatType(type: GgmlType): boolean {
  return type === GgmlType.F32 || type === GgmlType.F16 || type === GgmlType.BF16;
}
