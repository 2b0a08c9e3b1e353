import { existsSync, statSync } from "node:fs";
import { basename, join, resolve, sep } from "node:path";
import { Command, Option } from "commander";
import { convertToGguf, type GgufConversionOptions } from "../convert/gguf.js";
import { convertToMlx } from "../convert/mlx.js";
import { convertToOnnx, type OnnxConversionOptions, type OnnxLayout } from "../convert/onnx.js";
import { UserError } from "../errors.js";
import { checkFormatOptions, OUTPUT_FORMAT_INFO, OUTPUT_FORMATS, type FormatOption, type OutputFormat } from "../convert/formats.js";
import { resolveSource } from "../readers/hub.js";
import { BITS_SHORTHANDS, SCHEMES, resolveScheme } from "../quant/schemes.js";
import { ACCURACY_LEVELS, ONNX_BITS, parseAccuracyLevel, parseByteSize, parseOnnxBits, parseOnnxGroupSize, parsePart, parseThreads } from "../options.js";
import type { SplitRule } from "../writers/gguf/split.js";
import { defaultFitPath, fitManifest } from "../fit/manifest.js";
import { writeFitFiles } from "../fit/write.js";
import { defaultMlxOutput, mlxSummary, parseMlxFlags, type ParsedMlxFlags } from "./mlx-flags.js";
import { formatBytes, ProgressBar } from "../progress.js";

interface ConvertFlags {
  to: OutputFormat;
  bits?: string;
  scheme?: string;
  output?: string;
  force?: boolean;
  threads?: string;
  json?: boolean;
  progress: boolean;
  allowLossyTernary?: boolean;
  splitMaxSize?: string;
  part?: string;
  groupSize?: string;
  layout?: OnnxLayout;
  accuracyLevel?: string;
  mixed?: string;
}

const CONVERT_REPORT_SCHEMA = "edgequant-convert/v1";

/** What every format's library report has; the rest is the format's own. */
interface ConversionReport {
  readonly output: string;
  readonly format: OutputFormat;
  readonly architecture: string;
  /** Paths (GGUF) or names inside the output folder (ONNX, MLX). */
  readonly files: readonly string[];
  readonly warnings: readonly string[];
}

/**
 * --json (formats/convert.schema.json): one shape for every format, with absolute file paths,
 * the source as resolved (a Hub commit included) and the format's own details under its name.
 */
function jsonReport(report: ConversionReport, source: Record<string, string>, fit: string | undefined): object {
  const { output, format, architecture, files, warnings, ...details } = report;
  return {
    schema: CONVERT_REPORT_SCHEMA,
    source,
    format,
    output,
    files: format === "gguf" ? files : files.map((file) => join(output, file)),
    architecture,
    warnings,
    ...(fit ? { fit } : {}),
    [format]: details,
  };
}

/** What every format's conversion reports, for the summary line and --json. */
interface Summary {
  /** The file or folder a fit manifest describes; absent when this run wrote only part of a model. */
  readonly artifact?: string;
  readonly report: ConversionReport;
  readonly warnings: readonly string[];
  readonly lines: readonly string[];
}

export function convertCommand(): Command {
  return new Command("convert")
    .description("convert a safetensors checkpoint (folder or file) into a model for an edge runtime")
    .argument("<source>", "model folder (config.json + *.safetensors + tokenizer files), hf:org/name[@revision] (Hugging Face cache, HF_TOKEN), a .safetensors file, or (for --to gguf) an F32/F16/BF16 .gguf")
    .addOption(
      new Option("--to <format>", `output format: ${OUTPUT_FORMATS.map((f) => `${f} (${OUTPUT_FORMAT_INFO[f].runtimes})`).join(", ")}`).choices(OUTPUT_FORMATS).makeOptionMandatory(),
    )
    .option(
      "--bits <bits>",
      `bits per weight. GGUF: short form of --scheme (${[...BITS_SHORTHANDS].map(([bits, scheme]) => `${bits} -> ${scheme}`).join(", ")}); ` +
        `ONNX: ${ONNX_BITS.join(", ")}; MLX: 8, 6, 5, 4 (default), 3, 2, 1.58`,
    )
    .option("--scheme <name>", `GGUF only: a ggml type or llama.cpp mixture: ${SCHEMES.map((s) => s.name).join(", ")}`)
    .option("-o, --output <path>", "output file (GGUF; an existing folder or one ending in / gets the default name inside) or folder (ONNX, MLX); default: named after the model and scheme, in the current folder")
    .option("-f, --force", "replace an earlier output at the destination (refused by default, as mlx_lm.convert refuses)")
    .option("--threads <n>", "worker threads for quantization (default: available cores)")
    .option("--split-max-size <size>", "GGUF: write gguf-split files of at most this much tensor data each (e.g. 2G, 500M), as llama.cpp's gguf-split does")
    .option("--part <i/N>", "GGUF: write only split i of N (for N parallel CI jobs); with --split-max-size, N must be the number of splits it makes")
    .option("--allow-lossy-ternary", "with --bits 1.58 / tq1_0 / tq2_0: quantize weights that are not ternary anyway (they are refused by default)")
    .option("--group-size <n>", "ONNX/MLX: values per quantization block along the input dimension (ONNX 16/32/64/128, default 32; MLX 32/64/128, default 64)")
    .option("--mixed <recipe>", "MLX: mlx-lm's mixed-precision recipes 2_6, 3_4, 3_6, 4_6 (more bits for sensitive layers)")
    .addOption(new Option("--layout <layout>", "ONNX: genai (model.onnx + genai_config.json) or transformersjs (onnx/model_<dtype>.onnx)").choices(["genai", "transformersjs"]))
    .option("--accuracy-level <n>", `ONNX: MatMulNBits accuracy_level, one of ${ACCURACY_LEVELS.join(", ")}: 0 or 1 float activations (exact), 4 int8 activations (faster; the default for 8 and 4 bits)`)
    .option("--json", "print a machine-readable report on stdout (progress and warnings still go to stderr)")
    .option("--no-progress", "do not show progress on stderr")
    .addHelpText(
      "after",
      `
Examples:
  $ edgequant convert ./TinyLlama-1.1B --to gguf                 # F16 GGUF, like convert_hf_to_gguf.py
  $ edgequant convert ./Qwen3-0.6B --to gguf --bits 4 -o qwen3-q4_k_m.gguf   # Q4_K_M in one step
  $ edgequant convert hf:Qwen/Qwen3-0.6B --to gguf --bits 4                  # from the Hub, via the HF cache
  $ edgequant convert model.safetensors --to gguf --bits 32 --json
  $ edgequant convert ./bitnet_b1_58-large --to gguf --bits 1.58             # ternary model, lossless TQ1_0
  $ edgequant convert ./Llama-3.1-70B --to gguf --bits 4 --split-max-size 5G -o out/llama70b.gguf
  $ edgequant convert ./Llama-3.1-70B --to gguf --bits 4 --part 2/8 -o out/llama70b.gguf   # one of 8 CI jobs
  $ edgequant convert ./Qwen3-0.6B --to onnx --bits 4 --layout transformersjs -o qwen3-onnx
  $ edgequant convert ./Qwen3-0.6B --to mlx --bits 4 --group-size 64 -o qwen3-mlx-4bit

Output is written to a temporary file or folder beside the destination and renamed
only when complete. Exit codes: 0 success, 2 bad input or flags, 1 internal error.`,
    )
    .action(async (sourceArgument: string, flags: ConvertFlags) => {
      // Every flag is checked before the source is read, or downloaded.
      const convert = flags.to === "gguf" ? toGguf(flags) : flags.to === "onnx" ? toOnnx(flags) : toMlx(flags);
      // hf:org/name[@revision] is fetched into the Hugging Face cache first; local paths pass through.
      const resolved = await resolveSource(sourceArgument, { progress: flags.progress });
      const summary = await convert(resolved.path).finally(() => resolved.dispose());
      // Every artifact gets its fit manifest; a --part job has only one split, so the gathering step writes it.
      const warnings = [...summary.warnings];
      const fit = summary.artifact === undefined ? undefined : await fitFilesOrWarning(summary.artifact, warnings);
      for (const warning of warnings) process.stderr.write(`warning: ${warning}\n`);
      const source = { uri: sourceArgument, path: resolved.path, ...(resolved.repo ? { repo: resolved.repo } : {}), ...(resolved.revision ? { revision: resolved.revision } : {}) };
      const report = jsonReport(summary.report, source, fit?.json);
      const lines = fit ? [...summary.lines, `  fit: ${fit.json} (edgequant fit ${summary.artifact} for the table)`] : summary.lines;
      process.stdout.write(flags.json ? `${JSON.stringify(report, null, 2)}\n` : `${lines.join("\n")}\n`);
    });
}

/**
 * The artifact's fit files. The model is in place by now, so a fit failure (metadata fit cannot
 * model, say) is a warning and the conversion still succeeds.
 */
async function fitFilesOrWarning(artifact: string, warnings: string[]): Promise<{ json: string } | undefined> {
  try {
    return await writeFitFiles(await fitManifest(artifact), defaultFitPath(artifact));
  } catch (error) {
    const reason = error instanceof UserError ? error.message : `internal error (please report it): ${error instanceof Error ? error.message : String(error)}`;
    warnings.push(`the model is written, but not its fit manifest: ${reason}`);
    return undefined;
  }
}

const FORMAT_OPTIONS: readonly FormatOption[] = ["scheme", "splitMaxSize", "part", "threads", "groupSize", "layout", "accuracyLevel", "mixed"];

/** Flags of other formats are refused, by the format registry's list of whose they are. */
function checkOwnOptions(format: OutputFormat, flags: ConvertFlags): void {
  const given = FORMAT_OPTIONS.filter((option) => flags[option] !== undefined);
  checkFormatOptions(format, given, (option) => `--${option.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
}

/** A conversion whose flags have been checked, waiting for its source. */
type Conversion = (source: string) => Promise<Summary>;

function toGguf(flags: ConvertFlags): Conversion {
  checkOwnOptions("gguf", flags);
  const scheme = resolveScheme({ scheme: flags.scheme, bits: flags.bits });
  const threads = flags.threads === undefined ? {} : { threads: parseThreads(flags.threads) };
  const split = splitOption(flags);
  return (source) => writeGguf(source, flags, { scheme, ...threads, ...split });
}

async function writeGguf(source: string, flags: ConvertFlags, options: Pick<GgufConversionOptions, "scheme" | "threads" | "split">): Promise<Summary> {
  const { scheme } = options;
  const defaultName = `${basename(resolve(source), ".gguf")}-${scheme.name}.gguf`;
  // -o DIR puts the default name inside it, as convert_hf_to_gguf.py --outfile DIR does.
  const output = resolve(flags.output === undefined ? defaultName : isFolderPath(flags.output) ? join(flags.output, defaultName) : flags.output);
  const progress = new ProgressBar(`converting to ${scheme.name}`, flags.progress);
  const report = await convertToGguf({
    source,
    output,
    ...options,
    allowLossyTernary: flags.allowLossyTernary ?? false,
    overwrite: flags.force ?? false,
    onProgress: ({ doneBytes, totalBytes, tensor }) => progress.update(doneBytes, totalBytes, tensor),
  });
  progress.finish();
  const { tokenizer } = report;
  return {
    ...(flags.part === undefined ? { artifact: report.output } : {}),
    report,
    warnings: report.warnings,
    lines: [
      `wrote ${report.files.join(", ")}`,
      `  ${report.architecture}, ${report.scheme}, ${report.tensors} tensors, ${formatBytes(report.bytes)}`,
      ...(tokenizer ? [`  tokenizer: ${tokenizer.model}${tokenizer.preDecision ? `, ${tokenizer.preDecision}` : ""}`] : []),
    ],
  };
}

function toOnnx(flags: ConvertFlags): Conversion {
  if (flags.scheme !== undefined) throw new UserError(`--scheme names GGUF types; for --to onnx use --bits ${ONNX_BITS.join(", ")}`);
  checkOwnOptions("onnx", flags);
  const options = {
    bits: parseOnnxBits(flags.bits ?? "16"),
    ...(flags.layout ? { layout: flags.layout } : {}),
    ...(flags.groupSize === undefined ? {} : { groupSize: parseOnnxGroupSize(flags.groupSize) }),
    ...(flags.accuracyLevel === undefined ? {} : { accuracyLevel: parseAccuracyLevel(flags.accuracyLevel) }),
  };
  return (source) => writeOnnx(source, flags, options);
}

async function writeOnnx(source: string, flags: ConvertFlags, options: Pick<OnnxConversionOptions, "bits" | "layout" | "groupSize" | "accuracyLevel">): Promise<Summary> {
  const output = resolve(flags.output ?? `${basename(resolve(source))}-onnx-${options.bits}`);
  const progress = new ProgressBar(`exporting ONNX ${options.bits}-bit`, flags.progress);
  const report = await convertToOnnx({
    source,
    output,
    ...options,
    overwrite: flags.force ?? false,
    onProgress: ({ doneBytes, totalBytes, tensor }) => progress.update(doneBytes, totalBytes, tensor),
  });
  progress.finish();
  return {
    artifact: report.output,
    report,
    warnings: report.warnings,
    lines: [`wrote ${report.output}/ (${report.layout} layout)`, `  ${report.architecture}, ${report.bits}-bit, ${report.initializers} initializers, ${formatBytes(report.weightBytes)} of weights`],
  };
}

function toMlx(flags: ConvertFlags): Conversion {
  if (flags.scheme !== undefined) throw new UserError("--scheme names GGUF types; for --to mlx use --bits (and --group-size, --mixed)");
  checkOwnOptions("mlx", flags);
  const parsed = parseMlxFlags(flags);
  return (source) => writeMlx(source, flags, parsed);
}

async function writeMlx(source: string, flags: ConvertFlags, parsed: ParsedMlxFlags): Promise<Summary> {
  const output = resolve(flags.output ?? defaultMlxOutput(source, parsed));
  const progress = new ProgressBar(`writing MLX ${parsed.mixed ? `mixed_${parsed.mixed}` : `${parsed.bits}-bit`}`, flags.progress);
  const report = await convertToMlx({
    source,
    output,
    ...parsed,
    allowLossyTernary: flags.allowLossyTernary ?? false,
    overwrite: flags.force ?? false,
    onProgress: ({ doneBytes, totalBytes, tensor }) => progress.update(doneBytes, totalBytes, tensor),
  });
  progress.finish();
  return { artifact: report.output, report, warnings: report.warnings, lines: [mlxSummary(report, formatBytes).trimEnd()] };
}

function splitOption(flags: ConvertFlags): Pick<GgufConversionOptions, "split"> {
  if (flags.splitMaxSize === undefined && flags.part === undefined) return {};
  const part = flags.part === undefined ? undefined : parsePart(flags.part);
  const rule: SplitRule = flags.splitMaxSize !== undefined ? { maxBytes: parseByteSize(flags.splitMaxSize, "--split-max-size") } : { count: part!.count };
  return { split: part === undefined ? { rule } : { rule, part } };
}

/** An existing folder, or a path written as one (ending in a separator). */
function isFolderPath(path: string): boolean {
  return path.endsWith(sep) || path.endsWith("/") || (existsSync(path) && statSync(path).isDirectory());
}
