import { Command } from "commander";
import { parseThreads } from "../options.js";
import { runRecipe } from "../pipeline/run.js";
import { formatBytes } from "../progress.js";

interface RunFlags {
  out?: string;
  threads?: string;
  json?: boolean;
  progress: boolean;
  offline?: boolean;
}

export function runCommand(): Command {
  return new Command("run")
    .description("build every artifact a recipe lists (GGUF, ONNX, MLX), their fit files and manifest.json")
    .argument("<recipe>", "recipe file (YAML; see recipes/ and formats/recipe.schema.json)")
    .option("--out <dir>", "output folder (default: the recipe's 'out', else ./out/<recipe name>)")
    .option("--threads <n>", "worker threads for quantization (default: the recipe's, else available cores)")
    .option("--offline", "use only the Hugging Face cache for hf: sources (as HF_HUB_OFFLINE=1)")
    .option("--json", "print the manifest and where it was written on stdout (progress still goes to stderr)")
    .option("--no-progress", "do not show progress on stderr")
    .addHelpText(
      "after",
      `
Examples:
  $ edgequant run recipes/tiny.yaml --out out/tiny
  $ edgequant run recipes/qwen3-0.6b.yaml --json | jq '.manifest.artifacts[] | {path, bytes}'
  $ HF_TOKEN=hf_... edgequant run recipes/llama-3.2-1b-instruct.yaml      # gated model

A recipe names a source (a model folder, or hf:org/name@revision fetched into the
Hugging Face cache), the GGUF schemes and ONNX/MLX variants to build, and the
devices to check them against. It is validated before any work starts: problems
are listed as file:line:column. Output paths stay inside --out. Exit codes:
0 success, 2 bad recipe, input or flags, 1 internal error.`,
    )
    .action(async (recipe: string, flags: RunFlags) => {
      const report = await runRecipe({
        recipe,
        ...(flags.out !== undefined ? { out: flags.out } : {}),
        ...(flags.threads !== undefined ? { threads: parseThreads(flags.threads) } : {}),
        progress: flags.progress,
        ...(flags.offline ? { hub: { offline: true } } : {}),
      });
      if (flags.json) {
        process.stdout.write(`${JSON.stringify({ outDir: report.outDir, manifestPath: report.manifestPath, manifest: report.manifest, warnings: report.warnings }, null, 2)}\n`);
        return;
      }
      const rows = report.manifest.artifacts.map((a) => [a.path, a.format, a.scheme, formatBytes(a.bytes)]);
      const widths = [0, 1, 2].map((c) => Math.max(...rows.map((r) => r[c]!.length), ["artifact", "format", "scheme"][c]!.length));
      const line = (cells: string[]) => `  ${cells.map((cell, c) => (c < 3 ? cell.padEnd(widths[c]!) : cell)).join("  ")}`;
      const fit = report.manifest.artifacts
        .filter((a) => a.fit)
        .map((a) => `  ${a.path}: ${a.fit!.devices.map((d) => (d.unsupported ? `${d.device} -` : `${d.device} ${d.maxContext > 0 ? `✓ ${d.maxContext}` : "✗"}`)).join(", ")}`);
      const fitLines = fit.length > 0 ? ["", "fit (largest context that fits, per device; details in the .fit.json files):", ...fit] : [];
      process.stdout.write(`${[line(["artifact", "format", "scheme", "size"]), ...rows.map(line), ...fitLines, "", `manifest: ${report.manifestPath}`].join("\n")}\n`);
    });
}
