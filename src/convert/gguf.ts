import { OUTPUT_FORMAT_INFO } from "./formats.js";
import { basename } from "node:path";
import { resolveArchitecture } from "../arch/index.js";
import { planFromCheckpoint, planFromGguf, quantizationKeys, type GgufPlan, type PlannedTensor } from "../plan/gguf.js";
import { openCheckpoint, type Checkpoint } from "../readers/checkpoint.js";
import { openGgufInput } from "../readers/gguf-input.js";
import { encodeTensor } from "../quant/encode-tensor.js";
import { GgmlType, tensorBytes, ggmlTypeName } from "../quant/ggml-types.js";
import { KernelPool } from "../quant/pool.js";
import type { Scheme } from "../quant/schemes.js";
import { readVocabulary, tokenizerSummary, vocabularyMetadata, type TokenizerSummary, type Vocabulary } from "../tokenizer/index.js";
import type { GgufMetadata } from "../writers/gguf/metadata.js";
import { assignSplits, splitCount, splitMetadata, splitPath, type SplitRule } from "../writers/gguf/split.js";
import { writeGguf } from "../writers/gguf/writer.js";
import { UserError } from "../errors.js";

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
  /** Write gguf-split files instead of one file; `part` writes only split `index` (0-based) of `count`, for CI matrix jobs. */
  readonly split?: { readonly rule: SplitRule; readonly part?: { readonly index: number; readonly count: number } };
  /** Replace an earlier file at `output`. Default: refuse it. */
  readonly overwrite?: boolean;
  readonly onProgress?: (progress: ConversionProgress) => void;
}

export interface ConversionReport {
  /** The first (or only) file written. */
  readonly output: string;
  /** Every file written: one, or the splits (only the requested part with `split.part`). */
  readonly files: readonly string[];
  readonly format: "gguf";
  readonly architecture: string;
  readonly scheme: string;
  readonly tensors: number;
  readonly bytes: number;
  /** Absent when the source was a GGUF, whose vocabulary is copied as it is. */
  readonly tokenizer?: TokenizerSummary;
  readonly warnings: readonly string[];
}

/** Checkpoint or GGUF -> GGUF: read, plan, encode and write, a chunk of one tensor in memory at a time. */
export async function convertToGguf(options: GgufConversionOptions): Promise<ConversionReport> {
  OUTPUT_FORMAT_INFO.gguf.checkDestination(options.output, options.overwrite ?? false);
  if (options.source.endsWith(".gguf")) {
    const input = await openGgufInput(options.source);
    try {
      const plan = planFromGguf(input, options.scheme);
      return await writePlan(plan, new Map([...plan.metadata, ...quantizationKeys(options.scheme)]), [], options);
    } finally {
      await input.close();
    }
  }
  const checkpoint = await openCheckpoint(options.source);
  try {
    const { plan, metadata, vocabulary } = await ggufContents(checkpoint, options.scheme);
    const report = await writePlan(plan, metadata, vocabulary.warnings, options);
    return { ...report, tokenizer: tokenizerSummary(vocabulary) };
  } finally {
    await checkpoint.close();
  }
}

/**
 * Every tensor and key of the GGUF a checkpoint converts to: what `convert` writes and `plan`
 * sizes (`plan` passes the vocabulary it read for the first scheme: it is the same for all).
 */
export async function ggufContents(checkpoint: Checkpoint, scheme: Scheme, known?: Vocabulary): Promise<{ plan: GgufPlan; metadata: GgufMetadata; vocabulary: Vocabulary }> {
  const architecture = resolveArchitecture(checkpoint.config, checkpoint.configFile);
  const plan = planFromCheckpoint(checkpoint, architecture, scheme, basename(checkpoint.directory));
  const vocabulary = known ?? (await readVocabulary(checkpoint.directory, plan.hparams.vocabSize));
  const metadata = new Map([...plan.metadata, ...vocabularyMetadata(vocabulary), ...quantizationKeys(scheme)]);
  return { plan, metadata, vocabulary };
}

async function writePlan(plan: GgufPlan, metadata: GgufMetadata, initialWarnings: readonly string[], options: GgufConversionOptions): Promise<ConversionReport> {
  const warnings = [...initialWarnings];
  const files = outputFiles(plan, metadata, options);
  const writing = files.flatMap((file) => file.tensors);
  const quantized = writing.some((t) => !isFloatType(t.type));
  const pool = quantized ? new KernelPool(options.threads === undefined ? {} : { threads: options.threads }) : undefined;
  const totalBytes = writing.reduce((sum, t) => sum + tensorBytes(t.type, t.shape), 0);
  let doneBytes = 0;
  let bytes = 0;
  try {
    for (const file of files) {
      const written = await writeGguf(
        file.path,
        file.metadata,
        file.tensors.map((tensor) => ({
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
          onTensorWritten: (tensor, tensorBytesWritten) => {
            doneBytes += tensorBytesWritten;
            options.onProgress?.({ tensor: tensor.name, doneBytes, totalBytes });
          },
        },
      );
      bytes += written.bytes;
    }
  } finally {
    await pool?.destroy();
  }
  return {
    output: files[0]!.path,
    files: files.map((file) => file.path),
    format: "gguf",
    architecture: plan.architecture.gguf,
    scheme: options.scheme.name,
    tensors: writing.length,
    bytes,
    warnings,
  };
}

/** One file, or gguf-split files (all of them, or the one part a matrix job asked for). */
function outputFiles(plan: GgufPlan, metadata: GgufMetadata, options: GgufConversionOptions) {
  if (!options.split) return [{ path: options.output, metadata, tensors: plan.tensors }];
  const { rule, part } = options.split;
  const assignment = assignSplits(plan.tensors.map((t) => tensorBytes(t.type, t.shape)), rule);
  const count = splitCount(assignment);
  if (part !== undefined && part.count !== count) {
    throw new UserError(`--part ${part.index + 1}/${part.count}, but these settings cut this model into ${count} splits: use --part i/${count}`);
  }
  const indices = part === undefined ? [...Array(count).keys()] : [part.index];
  return indices.map((index) => ({
    path: splitPath(options.output, index, count),
    metadata: splitMetadata(metadata, index, count, plan.tensors.length),
    tensors: plan.tensors.filter((_, i) => assignment[i] === index),
  }));
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

function isFloatType(type: GgmlType): boolean {
  return type === GgmlType.F32 || type === GgmlType.F16 || type === GgmlType.BF16;
}
