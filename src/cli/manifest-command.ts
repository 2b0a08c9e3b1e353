import { resolve } from "node:path";
import { Command } from "commander";
import { UserError } from "../errors.js";
import { parseContext, splitList } from "../options.js";
import { gatherManifest } from "../pipeline/gather.js";
import { MANIFEST_FILE, writeManifest, type ManifestSource } from "../pipeline/manifest.js";
import { isHubSource, parseHubSource } from "../readers/hub.js";
import { formatBytes } from "../progress.js";

interface ManifestFlags {
  fit?: boolean;
  devices?: string[];
  ctx?: string[];
  name?: string;
  source?: string;
  revision?: string;
  json?: boolean;
}

export function manifestCommand(): Command {
  return new Command("manifest")
    .description("write manifest.json for the artifacts in a folder (e.g. GGUF splits written by separate CI jobs)")
    .argument("<out dir>", "folder holding .gguf files (whole or split), ONNX and MLX model folders")
    .option("--name <name>", "name to record (default: the existing manifest's, else the folder's name)")
    .option("--source <source>", "source to record: a path or hf:org/name[@revision]")
    .option("--revision <commit>", "commit of the source to record (default: the @revision of --source)")
    .option("--fit", "also write fit files (<artifact>.fit.json and .svg) beside every artifact and summarise them")
    .option("--devices <ids...>", "with --fit: device ids, comma or space separated (default: all)")
    .option("--ctx <lengths...>", "with --fit: context lengths, e.g. 2048,8k (default: 512 2048 4096 8192 32768 and the model's maximum)")
    .option("--json", "print the manifest on stdout as well")
    .addHelpText(
      "after",
      `
Examples:
  $ edgequant manifest out/                                   # after downloading every job's files into out/
  $ edgequant manifest out/ --source hf:meta-llama/Llama-3.1-70B-Instruct@<commit>
  $ edgequant manifest out/ --fit --devices mac-mini-m4-16gb,desktop-rtx-4090-24gb --ctx 8k,32k

Every file is hashed (SHA-256). A split model with a missing part is an error
(exit 2), so a failed matrix job cannot publish a broken model. Settings and fit
summaries of an existing manifest.json are kept for artifacts whose files are
unchanged.`,
    )
    .action(async (outDir: string, flags: ManifestFlags) => {
      if (flags.revision !== undefined && !/^[0-9a-f]{40}$/.test(flags.revision)) throw new UserError(`--revision takes a 40-hex commit, got '${flags.revision}'`);
      let source: ManifestSource | undefined;
      if (flags.source !== undefined) {
        if (isHubSource(flags.source)) {
          const { repo, revision } = parseHubSource(flags.source);
          const commit = flags.revision ?? (revision && /^[0-9a-f]{40}$/.test(revision) ? revision : undefined);
          source = { uri: flags.source, repo, ...(commit ? { revision: commit } : {}) };
        } else {
          source = { uri: flags.source, ...(flags.revision ? { revision: flags.revision } : {}) };
        }
      } else if (flags.revision !== undefined) {
        throw new UserError("--revision is recorded with --source; give both");
      }
      if (!flags.fit && (flags.devices || flags.ctx)) throw new UserError("--devices and --ctx choose what --fit checks; add --fit");
      const devices = splitList(flags.devices);
      const contexts = splitList(flags.ctx)?.map(parseContext);
      const fit = flags.fit ? { ...(devices?.length ? { devices } : {}), ...(contexts?.length ? { contexts } : {}) } : undefined;
      const folder = resolve(outDir);
      const manifest = await gatherManifest(folder, {
        ...(flags.name !== undefined ? { name: flags.name } : {}),
        ...(source ? { source } : {}),
        ...(fit ? { fit } : {}),
        log: (line) => process.stderr.write(`${line}\n`),
      });
      const path = resolve(folder, MANIFEST_FILE);
      await writeManifest(path, manifest);
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(manifest, null, 2)}\n`);
        return;
      }
      const lines = manifest.artifacts.map((a) => `  ${a.path}  ${a.format} ${a.scheme}  ${a.files.length} file(s)  ${formatBytes(a.bytes)}`);
      process.stdout.write(`${[`wrote ${path}`, ...lines].join("\n")}\n`);
    });
}
