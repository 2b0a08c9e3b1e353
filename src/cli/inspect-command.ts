import { Command } from "commander";
import { inspect, type InspectReport } from "../inspect.js";
import { formatBytes } from "./progress.js";

export function inspectCommand(): Command {
  return new Command("inspect")
    .description("list the tensors (name, type, shape, size) and metadata of a safetensors checkpoint or a GGUF file")
    .argument("<path>", "model folder, .safetensors file or .gguf file")
    .option("--json", "print the full report as JSON")
    .addHelpText("after", "\nExamples:\n  $ edgequant inspect ./Qwen3-0.6B\n  $ edgequant inspect model-q4_k_m.gguf --json | jq '.tensors[0]'")
    .action(async (path: string, flags: { json?: boolean }) => {
      const report = await inspect(path);
      process.stdout.write(flags.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
    });
}

function formatReport(report: InspectReport): string {
  const lines = [`${report.path} (${report.format})`];
  for (const [key, value] of Object.entries(report.metadata)) {
    if (key === "config") continue;
    lines.push(`  ${key} = ${typeof value === "string" && value.length > 80 ? `${value.slice(0, 77)}...` : JSON.stringify(value)}`);
  }
  const nameWidth = Math.max(...report.tensors.map((t) => t.name.length), 4);
  lines.push("", `  ${"name".padEnd(nameWidth)}  ${"type".padEnd(6)}  ${"shape".padEnd(16)}  size`);
  for (const t of report.tensors) {
    lines.push(`  ${t.name.padEnd(nameWidth)}  ${t.type.padEnd(6)}  ${`[${t.shape.join(", ")}]`.padEnd(16)}  ${formatBytes(t.bytes)}`);
  }
  lines.push("", `  ${report.tensors.length} tensors, ${(report.parameters / 1e6).toFixed(2)}M parameters, ${formatBytes(report.totalBytes)}`);
  return `${lines.join("\n")}\n`;
}
