import { basename, resolve } from "node:path";
import { Command, Option } from "commander";
import { convertToGguf, type GgufConversionOptions } from "../convert.js";
import { parsePart, parseSplitSize, type SplitRule } from "../writers/gguf/split.js";
import { UserError } from "../errors.js";
import { BITS_SHORTHANDS, SCHEMES, resolveScheme } from "../quant/schemes.js";
import { formatBytes, ProgressBar } from "./progress.js";

interface ConvertFlags {
  to: "gguf" | "onnx" | "mlx";
  bits?: string;
  scheme?: string;
  output?: string;
  threads?: string;
  json?: boolean;
  progress: boolean;
  allowLossyTernary?: boolean;
  splitMaxSize?: string;
  part?: string;
}

export function convertCommand(): Command {
  return new Command("convert")
    .description("convert a safetensors checkpoint (folder or file) into a model for an edge runtime")
    .argument("<source>", "model folder (config.json + *.safetensors + tokenizer files) or a .safetensors file")
    .addOption(new Option("--to <format>", "output format").choices(["gguf", "onnx", "mlx"]).makeOptionMandatory())
    .addOption(
      new Option("--bits <bits>", `short form of --scheme: ${[...BITS_SHORTHANDS].map(([bits, scheme]) => `${bits} -> ${scheme}`).join(", ")}`).choices([...BITS_SHORTHANDS.keys()]),
    )
    .option("--scheme <name>", `GGUF type or llama.cpp mixture: ${SCHEMES.map((s) => s.name).join(", ")}`)
    .option("-o, --output <path>", "output file (GGUF); default: <model folder name>-<scheme>.gguf in the current folder")
    .option("--threads <n>", "worker threads for quantization (default: available cores)")
    .option("--split-max-size <size>", "write gguf-split files of at most this much tensor data each (e.g. 2G, 500M), as llama.cpp's gguf-split does")
    .option("--part <i/N>", "write only split i of N (for N parallel CI jobs); with --split-max-size, N must be the number of splits it makes")
    .option("--allow-lossy-ternary", "with --bits 1.58 / tq1_0 / tq2_0: quantize weights that are not ternary anyway (they are refused by default)")
    .option("--json", "print a machine-readable report on stdout (progress and warnings still go to stderr)")
    .option("--no-progress", "do not show progress on stderr")
    .addHelpText(
      "after",
      `
Examples:
  $ edgequant convert ./TinyLlama-1.1B --to gguf                 # F16 GGUF, like convert_hf_to_gguf.py
  $ edgequant convert ./Qwen3-0.6B --to gguf --scheme bf16 -o qwen3.gguf
  $ edgequant convert model.safetensors --to gguf --bits 32 --json
  $ edgequant convert ./bitnet_b1_58-large --to gguf --bits 1.58             # ternary model, lossless TQ1_0
  $ edgequant convert ./Llama-3.1-70B --to gguf --bits 4 --split-max-size 5G -o out/llama70b.gguf
  $ edgequant convert ./Llama-3.1-70B --to gguf --bits 4 --part 2/8 -o out/llama70b.gguf   # one of 8 CI jobs

The output is written to a temporary file beside the destination and renamed
only when complete. Exit codes: 0 success, 2 bad input or flags, 1 internal error.`,
    )
    .action(async (source: string, flags: ConvertFlags) => {
      if (flags.to !== "gguf") throw new UserError(`--to ${flags.to} is not available in this version yet; use --to gguf`);
      if (flags.threads !== undefined && !(Number.isSafeInteger(Number(flags.threads)) && Number(flags.threads) > 0)) {
        throw new UserError(`--threads must be a positive integer, got '${flags.threads}'`);
      }
      const scheme = resolveScheme({ scheme: flags.scheme, bits: flags.bits });
      const output = resolve(flags.output ?? `${basename(resolve(source))}-${scheme.name}.gguf`);
      const progress = new ProgressBar(`converting to ${scheme.name}`, flags.progress);
      const report = await convertToGguf({
        source,
        output,
        scheme,
        ...(flags.threads === undefined ? {} : { threads: Number(flags.threads) }),
        allowLossyTernary: flags.allowLossyTernary ?? false,
        ...splitOption(flags),
        onProgress: ({ doneBytes, totalBytes, tensor }) => progress.update(doneBytes, totalBytes, tensor),
      });
      progress.finish();
      for (const warning of report.warnings) process.stderr.write(`warning: ${warning}\n`);
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      } else {
        const { tokenizer } = report;
        const tokenizerLine = !tokenizer ? "" : `  tokenizer: ${tokenizer.model}${tokenizer.preDecision ? `, ${tokenizer.preDecision}` : ""}\n`;
        process.stdout.write(`wrote ${report.files.join(", ")}\n  ${report.architecture}, ${report.scheme}, ${report.tensors} tensors, ${formatBytes(report.bytes)}\n${tokenizerLine}`);
      }
    });
}

function splitOption(flags: ConvertFlags): Pick<GgufConversionOptions, "split"> {
  if (flags.splitMaxSize === undefined && flags.part === undefined) return {};
  const part = flags.part === undefined ? undefined : parsePart(flags.part);
  const rule: SplitRule = flags.splitMaxSize !== undefined ? { maxBytes: parseSplitSize(flags.splitMaxSize) } : { count: part!.count };
  return { split: part === undefined ? { rule } : { rule, part } };
}
