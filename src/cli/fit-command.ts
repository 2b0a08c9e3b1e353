import { Command, Option } from "commander";
import { UserError } from "../errors.js";
import { parseContext, splitList } from "../options.js";
import { isHubSource } from "../readers/hub.js";
import { loadCatalogue } from "../fit/devices.js";
import { fitManifest, type FitManifest, type FitResult } from "../fit/manifest.js";
import { DEFAULT_KV_CONFIGS, type KvConfig } from "../fit/runtimes.js";
import { deviceBudget, formatBytes } from "../fit/svg.js";
import { writeFitFiles } from "../fit/write.js";

interface FitFlags {
  devices?: string[];
  ctx?: string[];
  devicesFile?: string;
  kv?: "f16" | "q8_0";
  flashAttn?: boolean;
  json?: boolean;
  output?: string;
  listDevices?: boolean;
}

export function fitCommand(): Command {
  return new Command("fit")
    .description("memory per context length of a converted model on phones, boards, laptops and GPUs: does it fit, with what headroom, how fast")
    .argument("[artifact]", "a .gguf file, an ONNX or MLX model folder, or a folder of converted models")
    .option("--devices <ids...>", "device ids, comma or space separated (default: all; see --list-devices)")
    .option("--ctx <lengths...>", "context lengths, e.g. 2048,8k,32k (default: 512 2048 4096 8192 32768 and the model's maximum)")
    .option("--devices-file <path>", "a YAML file of your own devices and runtimes (format: formats/devices.schema.json)")
    .addOption(new Option("--kv <type>", "KV cache type the table shows (the JSON has all)").choices(["f16", "q8_0"]).default("f16"))
    .option("--flash-attn", "table: flash attention on (always on for --kv q8_0, which needs it)")
    .option("--json", "print the whole manifest as JSON")
    .option("-o, --output <path>", "also write the manifest to <path> (e.g. model.gguf.fit.json) and its chart beside it (.svg)")
    .option("--list-devices", "list the devices of the catalogue and exit")
    .addHelpText(
      "after",
      `
Examples:
  $ edgequant fit model-q4_k_m.gguf
  $ edgequant fit model-q4_k_m.gguf --devices iphone-15-pro,raspberry-pi-5-8gb --ctx 4k,32k
  $ edgequant fit ./out --kv q8_0 -o out/models.fit.json          # every model in ./out, chart in out/models.fit.svg
  $ edgequant fit model.gguf --devices-file my-devices.yaml --devices my-board
  $ edgequant fit model.gguf --json | jq '.results[] | select(.device == "iphone-15") | .largestContext'

Memory is modelled on what each runtime allocates (llama.cpp buffer by buffer); budgets are what one
app can really use on the device, with sources in formats/devices.yaml. Figures marked as estimates
in the JSON (runtime overheads, ONNX Runtime / MLX activations) are approximate.`,
    )
    .action(async (artifact: string | undefined, flags: FitFlags) => {
      if (flags.listDevices) {
        process.stdout.write(await listDevices(flags.devicesFile));
        return;
      }
      if (!artifact) throw new UserError("give a model: edgequant fit <model.gguf | model folder> (or --list-devices)");
      if (isHubSource(artifact)) throw new UserError(`fit reads converted models; for a Hub checkpoint, 'edgequant plan ${artifact}' predicts and fits every artifact it can become, from its headers alone`);
      const devices = splitList(flags.devices);
      const contexts = splitList(flags.ctx)?.map(parseContext);
      const manifest = await fitManifest(artifact, {
        ...(devices && devices.length > 0 ? { devices } : {}),
        ...(contexts && contexts.length > 0 ? { contexts } : {}),
        ...(flags.devicesFile ? { devicesFile: flags.devicesFile } : {}),
      });
      const written = flags.output ? await writeFitFiles(manifest, flags.output) : undefined;
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(manifest, null, 2)}\n`);
        return;
      }
      const config: KvConfig = flags.kv === "q8_0" ? { kvCache: "q8_0", flashAttention: true } : { kvCache: "f16", flashAttention: flags.flashAttn ?? false };
      process.stdout.write(formatTable(manifest, config));
      if (written) process.stdout.write(`\nwrote ${written.json}\n      ${written.svg}\n`);
    });
}

async function listDevices(devicesFile: string | undefined): Promise<string> {
  const catalogue = await loadCatalogue(devicesFile);
  const idWidth = catalogue.devices.reduce((widest, d) => Math.max(widest, d.id.length), 2);
  const lines = [`${"id".padEnd(idWidth)}  ${"memory".padStart(9)}  ${"budget".padStart(9)}  runtimes`];
  for (const d of catalogue.devices) {
    const budget = deviceBudget(d);
    lines.push(`${d.id.padEnd(idWidth)}  ${formatBytes(d.memory.total).padStart(9)}  ${formatBytes(budget.bytes).padStart(9)}  ${d.runtimes.join(", ")}   ${d.name}`);
  }
  return `${lines.join("\n")}\n`;
}

function gib(bytes: number): string {
  return (bytes / 2 ** 30).toFixed(bytes >= 100 * 2 ** 30 ? 0 : 2);
}

function formatTable(manifest: FitManifest, config: KvConfig): string {
  const lines: string[] = [];
  const configName = `KV cache ${config.kvCache}, flash attention ${config.flashAttention ? "on" : "off"}`;
  for (const artifact of manifest.artifacts) {
    const results = manifest.results.filter((r) => r.artifact === artifact.id && r.kvCache === config.kvCache && r.flashAttention === config.flashAttention);
    lines.push(
      `${artifact.id}: ${artifact.format} ${artifact.quantization}, ${artifact.architecture}, ${(artifact.parameters / 1e9).toFixed(2)}B parameters, weights ${formatBytes(artifact.weightBytes)}, trained context ${artifact.contextLength}`,
      `${configName}. Resident GiB per context (the peak resident set \`top\` shows in parentheses where it is larger): ✓ fits, ✗ does not, * beyond the trained context.`,
      "",
    );
    const contexts = manifest.contexts;
    const withPeak = results.some((r) => r.rows?.some((row) => row.peakResident > row.total));
    const cellWidth = withPeak ? 15 : 8;
    const speedContext = [...contexts].filter((c) => c <= artifact.contextLength).pop() ?? contexts[0]!;
    const deviceLabel = (r: FitResult) => {
      const device = manifest.devices.find((d) => d.id === r.device)!;
      return `${device.id} (${formatBytes(r.rows?.[0]?.pools.find((p) => p.pool === r.rows?.[0]?.bindingPool)?.budget ?? device.memory.available)})`;
    };
    const labelWidth = results.reduce((widest, r) => Math.max(widest, deviceLabel(r).length), 6);
    const runtimeWidth = results.reduce((widest, r) => Math.max(widest, (r.runtime ?? "-").length), 7);
    const header = [
      "device".padEnd(labelWidth),
      "runtime".padEnd(runtimeWidth),
      ...contexts.map((c) => (c % 1024 === 0 ? `${c / 1024}K` : String(c)).padStart(cellWidth)),
      "max ctx".padStart(8),
      `tok/s@${speedContext % 1024 === 0 ? `${speedContext / 1024}K` : speedContext}`.padStart(10),
    ];
    lines.push(header.join("  "));
    for (const r of results) {
      const cells = r.supported
        ? r.rows!.map((row) => `${gib(row.total)}${row.fits ? "✓" : "✗"}${row.exceedsModelContext ? "*" : " "}${row.peakResident > row.total ? ` (${gib(row.peakResident)})` : ""}`.padStart(cellWidth))
        : [`not supported: ${r.reason ?? ""}`];
      const largest = r.largestContext?.tokens;
      const speed = r.rows?.find((row) => row.context === speedContext)?.decodeTokensPerSecond;
      lines.push(
        [
          deviceLabel(r).padEnd(labelWidth),
          (r.runtime ?? "-").padEnd(runtimeWidth),
          ...cells,
          ...(r.supported ? [(largest === null || largest === undefined ? "none" : String(largest)).padStart(8), (speed === undefined ? "-" : speed.toFixed(0)).padStart(10)] : []),
        ].join("  "),
      );
    }
    const estimated = [...new Set(results.flatMap((r) => r.estimated ?? []))];
    if (estimated.length > 0) lines.push("", `estimates: ${estimated.join("; ")}`);
    lines.push("");
  }
  if (!DEFAULT_KV_CONFIGS.some((c) => c.kvCache === config.kvCache && c.flashAttention === config.flashAttention)) lines.push(`(no results for ${configName})`);
  return `${lines.join("\n")}`;
}
