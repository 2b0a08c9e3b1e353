/**
 * The output kinds a recipe can ask for, one entry each: how to build it from
 * the resolved source and what it is called in the manifest. A new format is a
 * new entry here plus its block in formats/recipe.schema.json. Writers other
 * than GGUF load when a recipe asks for them.
 */
import { join } from "node:path";
import { convertToGguf } from "../convert/gguf.js";
import type { ConfigReader } from "../arch/config.js";
import type { Architecture } from "../arch/types.js";
import { OUTPUT_FORMAT_INFO } from "../convert/formats.js";
import { resolveScheme } from "../quant/schemes.js";
import { parseByteSize } from "../options.js";
import type { ArtifactFormat } from "./manifest.js";
import type { GgufOutput, MlxOutput, OnnxOutput, RecipeOutput } from "./recipe.js";

interface BuildContext {
  /** The model folder or file to read. */
  readonly source: string;
  /** Absolute destination: the .gguf file or the model folder. */
  readonly destination: string;
  readonly threads?: number;
  readonly onProgress: (done: number, total: number, detail: string) => void;
}

interface BuiltArtifact {
  /** Every file written, absolute. */
  readonly files: readonly string[];
  /** The artifact's main path: the GGUF (first split) or the folder. */
  readonly path: string;
  readonly scheme: string;
  readonly architecture: string;
  readonly settings: Readonly<Record<string, unknown>>;
  readonly warnings: readonly string[];
}

interface OutputKind<O extends RecipeOutput> {
  readonly format: ArtifactFormat;
  /** A single file or a model folder. */
  readonly layout: "file" | "folder";
  /** Short text for logs: "q4_k_m", "onnx int4 genai"... */
  describe(output: O): string;
  /** What may already sit at the destination; throws before any work starts. */
  checkDestination(destination: string, output: O): void;
  /** Refuses a model this output cannot be made from, from its config alone (before weights are read or downloaded). */
  checkSource?(architecture: Architecture, config: ConfigReader, configFile: string): void | Promise<void>;
  build(output: O, context: BuildContext): Promise<BuiltArtifact>;
}

/** A recipe owns its --out folder: running it again replaces its earlier artifacts, in every format. */
const REPLACES_EARLIER = true;

const ONNX_SCHEMES: Record<string, string> = { "32": "fp32", "16": "fp16", "8": "int8", "4": "int4", "1.58": "ternary" };

const gguf: OutputKind<GgufOutput> = {
  format: "gguf",
  layout: OUTPUT_FORMAT_INFO.gguf.layout,
  describe: (o) => `gguf ${o.scheme}${o.splitMaxSize ? ` (splits of ${o.splitMaxSize})` : ""}`,
  checkDestination: (destination) => OUTPUT_FORMAT_INFO.gguf.checkDestination(destination, REPLACES_EARLIER),
  checkSource(architecture, config) {
    architecture.checkConfig?.(config);
  },
  async build(output, context) {
    const report = await convertToGguf({
      source: context.source,
      output: context.destination,
      scheme: resolveScheme({ scheme: output.scheme }),
      ...(context.threads !== undefined ? { threads: context.threads } : {}),
      ...(output.splitMaxSize ? { split: { rule: { maxBytes: parseByteSize(output.splitMaxSize, "split-max-size") } } } : {}),
      overwrite: REPLACES_EARLIER,
      onProgress: ({ doneBytes, totalBytes, tensor }) => context.onProgress(doneBytes, totalBytes, tensor),
    });
    return {
      files: report.files,
      path: report.files[0]!,
      scheme: report.scheme,
      architecture: report.architecture,
      settings: { scheme: report.scheme, ...(output.splitMaxSize ? { splitMaxSize: output.splitMaxSize, splits: report.files.length } : {}) },
      warnings: report.warnings,
    };
  },
};

const onnx: OutputKind<OnnxOutput> = {
  format: "onnx",
  layout: OUTPUT_FORMAT_INFO.onnx.layout,
  describe: (o) => `onnx ${ONNX_SCHEMES[String(o.bits)]} ${o.layout}${o.groupSize ? ` g${o.groupSize}` : ""}`,
  checkDestination: (destination) => OUTPUT_FORMAT_INFO.onnx.checkDestination(destination, REPLACES_EARLIER),
  async build(output, context) {
    const { convertToOnnx } = await import("../convert/onnx.js");
    const report = await convertToOnnx({
      source: context.source,
      output: context.destination,
      bits: output.bits,
      layout: output.layout,
      ...(output.groupSize !== undefined ? { groupSize: output.groupSize } : {}),
      ...(output.accuracyLevel !== undefined ? { accuracyLevel: output.accuracyLevel } : {}),
      overwrite: REPLACES_EARLIER,
      onProgress: ({ doneBytes, totalBytes, tensor }) => context.onProgress(doneBytes, totalBytes, tensor),
    });
    return {
      files: report.files.map((file) => join(report.output, file)),
      path: report.output,
      scheme: ONNX_SCHEMES[String(report.bits)] ?? String(report.bits),
      architecture: report.architecture,
      settings: { bits: report.bits, layout: report.layout, groupSize: report.groupSize, accuracyLevel: output.accuracyLevel, modelFile: report.modelFile },
      warnings: report.warnings,
    };
  },
};

const mlx: OutputKind<MlxOutput> = {
  format: "mlx",
  layout: OUTPUT_FORMAT_INFO.mlx.layout,
  describe: (o) => `mlx ${o.mixed ?? (o.bits === 1.58 ? "1.58bit" : `${o.bits}bit`)}${o.groupSize ? ` g${o.groupSize}` : ""}`,
  checkDestination: (destination) => OUTPUT_FORMAT_INFO.mlx.checkDestination(destination, REPLACES_EARLIER),
  checkSource(architecture, config) {
    architecture.mlx?.checkConfig?.(config);
  },
  async build(output, context) {
    const { convertToMlx } = await import("../convert/mlx.js");
    const report = await convertToMlx({
      source: context.source,
      output: context.destination,
      bits: output.bits,
      ...(output.groupSize !== undefined ? { groupSize: output.groupSize } : {}),
      ...(output.mixed !== undefined ? { mixed: output.mixed.replace(/^mixed_/, "") as "2_6" | "3_4" | "3_6" | "4_6" } : {}),
      ...(output.maxShardSize !== undefined ? { maxShardBytes: parseByteSize(output.maxShardSize, "max-shard-size") } : {}),
      overwrite: REPLACES_EARLIER,
      onProgress: ({ doneBytes, totalBytes, tensor }) => context.onProgress(doneBytes, totalBytes, tensor),
    });
    return {
      files: report.files.map((file) => join(report.output, file)),
      path: report.output,
      scheme: output.mixed ?? (report.bits === 1.58 ? "1.58bit" : `${report.bits}bit`),
      architecture: report.architecture,
      settings: { bits: report.bits, groupSize: report.groupSize, mixed: output.mixed, bitsPerWeight: Math.round(report.bitsPerWeight * 1000) / 1000, shards: report.shards },
      warnings: [...report.warnings, ...report.decisions.filter((d) => d.action === "lossy-ternary").map((d) => `${d.tensor}: ${d.message}`)],
    };
  },
};

/** The table: recipe key -> output kind. */
const OUTPUT_KINDS: { readonly [K in RecipeOutput["kind"]]: OutputKind<Extract<RecipeOutput, { kind: K }>> } = { gguf, onnx, mlx };

export function kindOf<O extends RecipeOutput>(output: O): OutputKind<O> {
  return OUTPUT_KINDS[output.kind] as unknown as OutputKind<O>;
}

/** A folder output may replace a folder holding the same kind of model, nothing else. */
