import { Command, Option } from "commander";
import { resolve } from "node:path";
import { UserError } from "../errors.js";
import { HOST_DEVICE_ID } from "../fit/host-device.js";
import { formatBytes } from "../fit/svg.js";
import { parseContext, splitList } from "../options.js";
import { planModel, type PlanReport } from "../plan/plan.js";
import { resolveSource } from "../readers/hub.js";
import type { ArtifactFormat } from "../fit/artifact.js";
import { PLAN_FORMATS } from "../plan/candidates.js";

interface PlanFlags {
  devices?: string[];
  ctx?: string[];
  formats?: string[];
  schemes?: string[];
  headroom?: string;
  kv?: "f16" | "q8_0";
  flashAttn?: boolean;
  devicesFile?: string;
  json?: boolean;
}

export function planCommand(): Command {
  return new Command("plan")
    .description("before converting: every GGUF scheme, MLX and ONNX setting a checkpoint can become, sized exactly, fitted on each device, and the best one per device")
    .argument("<model>", "a Hugging Face model folder (config.json + safetensors), or hf:org/name[@revision]")
    .option("--devices <ids...>", `device ids, comma separated; '${HOST_DEVICE_ID}' is the machine you run on, read now (default: ${HOST_DEVICE_ID} on a terminal, else the whole catalogue)`)
    .option("--ctx <lengths...>", "context lengths, e.g. 2048,8k; the recommendation is for the largest (default 4k)")
    .option("--formats <formats...>", `formats to plan (default: ${PLAN_FORMATS.join(",")})`)
    .option("--schemes <ids...>", "only these candidates: GGUF schemes (q4_k_m), 'mlx 4bit', 'onnx int4'")
    .option("--headroom <percent>", "memory to leave free on the binding pool, in percent of its budget", "10")
    .addOption(new Option("--kv <type>", "KV cache type to recommend and tabulate with (the JSON has all)").choices(["f16", "q8_0"]).default("f16"))
    .option("--flash-attn", "flash attention on (always on for --kv q8_0, which needs it)")
    .option("--devices-file <path>", "a YAML file of your own devices (format: formats/devices.schema.json)")
    .option("--json", "print the whole plan (candidates, fit manifest, recommendations) as JSON")
    .addHelpText(
      "after",
      `
Examples:
  $ edgequant plan ./Llama-3.2-1B                         # on a terminal: this machine
  $ edgequant plan ./Llama-3.2-1B --devices iphone-16-pro,raspberry-pi-5-8gb --ctx 8k
  $ edgequant plan hf:HuggingFaceTB/SmolLM3-3B --formats gguf --json | jq '.recommendations'

Nothing is converted: each candidate is the converter's own plan (every tensor's type, the header,
the graph), so GGUF, MLX and ONNX sizes are the bytes convert would write, and the fit rows are the
ones 'edgequant fit' gives for the converted files. Quality ranks by measured perplexity loss per
scheme (formats/quality.yaml names each source).`,
    )
    .action(async (model: string, flags: PlanFlags) => {
      const headroom = Number(flags.headroom);
      if (!Number.isFinite(headroom) || headroom < 0 || headroom >= 100) throw new UserError(`--headroom takes a percentage from 0 to 99; got '${flags.headroom}'`);
      const formats = splitList(flags.formats)?.map((f) => {
        if (!(PLAN_FORMATS as readonly string[]).includes(f)) throw new UserError(`--formats takes ${PLAN_FORMATS.join(", ")}; got '${f}'`);
        return f as ArtifactFormat;
      });
      const devices = splitList(flags.devices) ?? (process.stdout.isTTY ? [HOST_DEVICE_ID] : undefined);
      const contexts = splitList(flags.ctx)?.map(parseContext);
      const source = await resolveSource(model, { progress: false, weights: "headers" });
      try {
        const report = await planModel(source.path, {
          modelName: source.repo ?? resolve(model),
          ...(devices ? { devices } : {}),
          ...(contexts && contexts.length > 0 ? { contexts } : {}),
          ...(formats ? { formats } : {}),
          ...(flags.schemes ? { schemes: splitList(flags.schemes)! } : {}),
          ...(flags.devicesFile ? { devicesFile: flags.devicesFile } : {}),
          headroom: headroom / 100,
          kvConfig: flags.kv === "q8_0" ? { kvCache: "q8_0", flashAttention: true } : { kvCache: "f16", flashAttention: flags.flashAttn ?? false },
        });
        process.stdout.write(flags.json ? `${JSON.stringify(report, null, 2)}\n` : formatPlan(report));
      } finally {
        await source.dispose();
      }
    });
}

function formatPlan(report: PlanReport): string {
  const lines: string[] = [];
  const ctx = report.recommendationContext;
  const config = `KV cache ${report.kvConfig.kvCache}, flash attention ${report.kvConfig.flashAttention ? "on" : "off"}`;
  lines.push(`${report.source}: ${report.candidates.length} candidate artifacts, fitted at ${report.manifest.contexts.join(", ")} tokens (${config}).`, "");
  lines.push(`Recommended at ${ctx} tokens with ${Math.round(report.headroom * 100)}% headroom:`);
  const deviceWidth = report.recommendations.reduce((w, r) => Math.max(w, r.device.length), 6);
  const pickWidth = report.recommendations.reduce((w, r) => Math.max(w, (r.pick ?? "none").length), 4);
  for (const r of report.recommendations) {
    lines.push(`  ${r.device.padEnd(deviceWidth)}  ${(r.pick ?? "none").padEnd(pickWidth)}  ${(r.runtime ?? "").padEnd(15)}  ${r.reason}`);
  }
  lines.push("", `Every candidate (file size; total memory at ${ctx} tokens per device: ✓ fits, ✗ does not, - not run there):`);
  const idWidth = report.candidates.reduce((w, c) => Math.max(w, c.id.length), 9);
  lines.push(`  ${"candidate".padEnd(idWidth)}  ${"size".padStart(9)}  ${"Δppl".padStart(7)}  ${report.manifest.devices.map((d) => d.id).join("  ")}`);
  for (const c of report.candidates) {
    const cells = report.manifest.devices.map((d) => {
      const result = report.manifest.results.find((r) => r.artifact === c.artifactId && r.device === d.id && r.kvCache === report.kvConfig.kvCache && r.flashAttention === report.kvConfig.flashAttention);
      const row = result?.rows?.find((x) => x.context === ctx);
      const cell = row ? `${(row.total / 2 ** 30).toFixed(2)}${row.fits ? "✓" : "✗"}` : "-";
      return cell.padStart(d.id.length);
    });
    const quality = c.quality.deltaPplPercent === null ? "?" : `+${c.quality.deltaPplPercent.toFixed(2)}%`;
    lines.push(`  ${c.id.padEnd(idWidth)}  ${formatBytes(c.bytes).padStart(9)}  ${quality.padStart(7)}  ${cells.join("  ")}`);
  }
  for (const u of report.unplannable) lines.push(`  ${u.id.padEnd(idWidth)}  not planned: ${u.reason}`);
  lines.push("", "Δppl: perplexity lost against 16 bits, measured (sources in the JSON and formats/quality.yaml).");
  return `${lines.join("\n")}\n`;
}
