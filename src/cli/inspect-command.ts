import { Command } from "commander";
import { UserError } from "../errors.js";
import { resolveSource } from "../readers/hub.js";
import { inspect, type InspectReport, type TernaryKind } from "../inspect.js";
import { quantizationError, type TensorError } from "../quant/error-stats.js";
import { formatBytes } from "../progress.js";

export function inspectCommand(): Command {
  return new Command("inspect")
    .description("list the tensors (name, type, shape, size) and metadata of a safetensors checkpoint or a GGUF file")
    .argument("<path>", "model folder, hf:org/name[@revision], .safetensors file or .gguf file")
    .option("--json", "print the full report as JSON (formats/inspect.schema.json), metadata arrays in full")
    .option("--max-array <n>", "cut metadata arrays (a vocabulary holds 100k+ tokens) to n items; the full lengths go to truncatedArrays")
    .option("--stats", "per-tensor quantization error of a GGUF against its source (needs --source)")
    .option("--source <path>", "with --stats: the model folder or F16/BF16/F32 GGUF the file was converted from")
    .addHelpText(
      "after",
      `
Examples:
  $ edgequant inspect ./Qwen3-0.6B
  $ edgequant inspect model-q4_k_m.gguf --json | jq '.tensors[0]'
  $ edgequant inspect model-q4_k_m.gguf --stats --source ./Qwen3-0.6B     # RMSE, max |error| per tensor`,
    )
    .action(async (path: string, flags: { json?: boolean; stats?: boolean; source?: string; maxArray?: string }) => {
      const maxArray = flags.maxArray === undefined ? undefined : parseMaxArray(flags.maxArray);
      if (flags.stats && !flags.source) throw new UserError("--stats compares against the model the file came from: give it with --source <folder or .gguf>");
      if (flags.source && !flags.stats) throw new UserError("--source is only used with --stats");
      const target = await resolveSource(path, { progress: false });
      const source = flags.source === undefined ? undefined : await resolveSource(flags.source, { progress: false });
      try {
        const report = await inspect(target.path, maxArray === undefined ? {} : { maxArray });
        const stats = source ? await quantizationError(target.path, source.path) : undefined;
        if (flags.json) process.stdout.write(`${JSON.stringify(stats ? { ...report, stats } : report, null, 2)}\n`);
        else process.stdout.write(stats ? formatStats(stats) : formatReport(report));
      } finally {
        await target.dispose();
        await source?.dispose();
      }
    });
}

const TERNARY_EXPLANATION: Record<TernaryKind, string> = {
  "bitnet-packed": "BitNet packed 2-bit codes: --bits 1.58 unpacks them into TQ1_0 without loss",
  "bitnet-master-weights": "BitNet master weights: --bits 1.58 ternarises them (absmean) as the model does",
  "fake-quantized": "every linear weight is {-s, 0, +s}: --bits 1.58 is lossless",
  "not-ternary": "no (--bits 1.58 would be lossy and is refused without --allow-lossy-ternary)",
};

function formatReport(report: InspectReport): string {
  const lines = [`${report.path} (${report.format})`];
  for (const [key, value] of Object.entries(report.metadata)) {
    if (key === "config") continue;
    lines.push(`  ${key} = ${summary(value, report.truncatedArrays?.[key])}`);
  }
  const nameWidth = report.tensors.reduce((widest, t) => Math.max(widest, t.name.length), 4);
  lines.push("", `  ${"name".padEnd(nameWidth)}  ${"type".padEnd(6)}  ${"shape".padEnd(16)}  size`);
  for (const t of report.tensors) {
    lines.push(`  ${t.name.padEnd(nameWidth)}  ${t.type.padEnd(6)}  ${`[${t.shape.join(", ")}]`.padEnd(16)}  ${formatBytes(t.bytes)}`);
  }
  lines.push("", `  ${report.tensors.length} tensors, ${(report.parameters / 1e6).toFixed(2)}M parameters, ${formatBytes(report.totalBytes)}`);
  if (report.ternary) lines.push(`  ternary: ${TERNARY_EXPLANATION[report.ternary]}`);
  return `${lines.join("\n")}\n`;
}

/** A metadata value on one line: long strings cut, arrays of more than a few items counted. */
function summary(value: unknown, fullLength: number | undefined): string {
  if (typeof value === "string" && value.length > 80) return `${value.slice(0, 77)}...`;
  if (Array.isArray(value) && (value.length > 8 || fullLength !== undefined)) return `[${fullLength ?? value.length} items]`;
  return JSON.stringify(value);
}

function parseMaxArray(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n)) throw new UserError(`--max-array must be a whole number of items, got '${text}'`);
  return n;
}

function formatStats(stats: readonly TensorError[]): string {
  const nameWidth = stats.reduce((widest, t) => Math.max(widest, t.name.length), 4);
  const lines = [`  ${"name".padEnd(nameWidth)}  ${"type".padEnd(6)}  ${"rmse".padStart(10)}  ${"max |err|".padStart(10)}  ${"rel. rmse".padStart(9)}`];
  for (const t of stats) {
    lines.push(`  ${t.name.padEnd(nameWidth)}  ${t.type.padEnd(6)}  ${t.rmse.toExponential(3).padStart(10)}  ${t.maxAbsError.toExponential(3).padStart(10)}  ${(100 * t.relativeRmse).toFixed(2).padStart(8)}%`);
  }
  return `${lines.join("\n")}\n`;
}
