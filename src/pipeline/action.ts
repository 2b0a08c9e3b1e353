/**
 * The GitHub Action (action.yml, entry action/index.js): run a recipe, write
 * the artifacts and fit table to the job summary, upload every artifact plus
 * manifest.json to the release, and set outputs.
 *
 * Release assets are files: a GGUF (or each of its splits) goes up as it is, an
 * ONNX or MLX model folder as one deterministic .tar, fit files as they are,
 * then manifest.json.
 */
import { statSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join, resolve } from "node:path";
import * as core from "@actions/core";
import { context } from "@actions/github";
import { formatBytes } from "../progress.js";
import { UserError } from "../errors.js";
import { publishRelease, type ReleaseAsset } from "./github-release.js";
import { MANIFEST_FILE, type Manifest } from "./manifest.js";
import { runRecipe, type RunReport } from "./run.js";
import { tarFolder } from "./tar.js";

export async function runAction(): Promise<void> {
  try {
    const token = core.getInput("token");
    // Masked in the log even when it did not come from a secret; HF tokens likewise.
    for (const secret of [token, process.env["HF_TOKEN"], process.env["HUGGING_FACE_HUB_TOKEN"]]) if (secret) core.setSecret(secret);

    const workspace = process.env["GITHUB_WORKSPACE"] || process.cwd();
    const recipe = resolve(workspace, core.getInput("recipe", { required: true }));
    const out = resolve(workspace, core.getInput("out") || "edgequant-out");
    const { tag, upload } = uploadDecision(core.getInput("release-tag"), core.getInput("upload"), context.ref);

    const report = await runRecipe({ recipe, out, progress: false, log: (line) => core.info(line) });
    if (process.env["GITHUB_STEP_SUMMARY"]) await core.summary.addRaw(jobSummary(report), true).write();
    else core.info(jobSummary(report));
    core.setOutput("manifest", report.manifestPath);
    core.setOutput("artifacts", JSON.stringify(report.manifest.artifacts.map((a) => join(report.outDir, a.path))));
    core.setOutput("out", report.outDir);

    if (!upload) {
      core.info(`upload: off (${tag ? "upload: false" : "not a tag, and no release-tag given"})`);
      return;
    }
    if (!tag) throw new UserError("upload: true needs a release tag: run on a tag, or set the release-tag input");
    if (!token) throw new UserError("uploading needs a token: leave the 'token' input at its default (github.token) or pass one with contents: write");

    const staging = await mkdtemp(join(process.env["RUNNER_TEMP"] || tmpdir(), "edgequant-assets-"));
    try {
      const assets = await releaseAssets(report, staging);
      const { owner, repo } = context.repo;
      const result = await publishRelease(
        { token, owner, repo, tag, ...(context.sha ? { sha: context.sha } : {}), body: releaseBody(report.manifest), log: (line) => core.info(line) },
        assets,
      );
      core.setOutput("release-url", result.url);
      core.setOutput("assets", JSON.stringify(result.assets.map((a) => a.name)));
      core.info(`release ${tag}: ${result.assets.length} asset(s) at ${result.url}`);
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  } catch (error) {
    if (error instanceof UserError) {
      core.setFailed(error.message);
    } else {
      core.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
      core.setFailed(`internal error (please report it): ${error instanceof Error ? error.message : String(error)}`);
    }
  }
}

/** The tag to publish to and whether to: 'auto' uploads on tag refs, and when release-tag is given. */
export function uploadDecision(releaseTag: string, uploadInput: string, ref: string | undefined): { tag?: string; upload: boolean } {
  const fromRef = ref?.startsWith("refs/tags/") ? ref.slice("refs/tags/".length) : undefined;
  const tag = releaseTag.trim() || fromRef;
  const choice = (uploadInput.trim() || "auto").toLowerCase();
  if (!["auto", "true", "false"].includes(choice)) throw new UserError(`the 'upload' input is true, false or auto; got '${uploadInput}'`);
  const upload = choice === "auto" ? tag !== undefined : choice === "true";
  return { ...(tag ? { tag } : {}), upload };
}

/** Files to upload: GGUF files as they are, model folders as .tar, fit files, then manifest.json. */
async function releaseAssets(report: RunReport, staging: string): Promise<ReleaseAsset[]> {
  const assets: ReleaseAsset[] = [];
  for (const artifact of report.manifest.artifacts) {
    if (artifact.format === "gguf") {
      for (const file of artifact.files) assets.push({ name: basename(file.path), path: join(report.outDir, file.path), bytes: file.bytes, contentType: "application/octet-stream" });
    } else {
      const name = `${basename(artifact.path)}.tar`;
      const target = join(staging, name);
      const { bytes } = await tarFolder(join(report.outDir, artifact.path), target);
      assets.push({ name, path: target, bytes, contentType: "application/x-tar" });
    }
    for (const file of artifact.fit?.files ?? []) {
      assets.push({ name: basename(file.path), path: join(report.outDir, file.path), bytes: file.bytes, contentType: file.path.endsWith(".svg") ? "image/svg+xml" : "application/json" });
    }
  }
  assets.push({ name: MANIFEST_FILE, path: report.manifestPath, bytes: statSync(report.manifestPath).size, contentType: "application/json" });
  return assets;
}

/** Markdown for the job summary: the artifacts, then the fit table. */
function jobSummary(report: RunReport): string {
  const m = report.manifest;
  const lines = [
    `## edgequant: ${m.name}`,
    "",
    `Source \`${m.source?.uri ?? "?"}\`${m.source?.revision ? ` at \`${m.source.revision}\`` : ""} · edgequant ${m.edgequant} · manifest \`${report.manifestPath}\``,
    "",
    "| artifact | format | scheme | size | sha256 |",
    "|---|---|---|---:|---|",
    ...m.artifacts.map((a) => `| \`${a.path}\` | ${a.format} | ${a.scheme} | ${formatBytes(a.bytes)} | \`${a.sha256.slice(0, 16)}…\` |`),
    "",
  ];
  lines.push(...fitTable(m));
  if (report.warnings.length > 0) lines.push("", "<details><summary>warnings</summary>", "", ...report.warnings.map((w) => `- ${w}`), "", "</details>");
  return `${lines.join("\n")}\n`;
}

/** One row per artifact and device: memory at each context (✓ fits, ✗ does not), largest context, decode speed. */
function fitTable(manifest: Manifest): string[] {
  const fitted = manifest.artifacts.filter((a) => a.fit);
  if (fitted.length === 0) return ["### Fit", "", "No fit summary: the recipe turned fit off."];
  const contexts = manifest.fit?.contexts ?? [];
  const first = fitted[0]!.fit!;
  const lines = [
    "### Fit",
    "",
    `Memory per context length (KV cache ${first.kvCache}, flash attention ${first.flashAttention ? "on" : "off"}); every figure and configuration is in the \`.fit.json\` files.`,
    "",
    `| artifact | device | runtime | ${contexts.map((c) => `ctx ${c}`).join(" | ")} | max context | tok/s |`,
    `|---|---|---|${contexts.map(() => "---:|").join("")}---:|---:|`,
  ];
  for (const artifact of fitted) {
    for (const device of artifact.fit!.devices) {
      if (device.unsupported) {
        lines.push(`| \`${artifact.path}\` | ${device.device} | — | ${contexts.map(() => "—").join(" | ")} | not supported | — |`);
        continue;
      }
      const cells = contexts.map((c) => {
        const at = device.contexts.find((x) => x.context === c);
        return at ? `${formatBytes(at.bytes)} ${at.fits ? "✓" : "✗"}` : "—";
      });
      const last = device.contexts.at(-1);
      lines.push(`| \`${artifact.path}\` | ${device.device} | ${device.runtime ?? "—"} | ${cells.join(" | ")} | ${device.maxContext || "none"} | ${last?.tokensPerSecond?.toFixed(0) ?? "—"} |`);
    }
  }
  return lines;
}

function releaseBody(manifest: Manifest): string {
  const lines = [`Built by edgequant ${manifest.edgequant} from \`${manifest.source?.uri ?? "?"}\`${manifest.source?.revision ? ` at \`${manifest.source.revision}\`` : ""}.`, "", "| asset | format | scheme | size |", "|---|---|---|---:|"];
  for (const a of manifest.artifacts) lines.push(`| ${a.format === "gguf" ? basename(a.path) : `${basename(a.path)}.tar`} | ${a.format} | ${a.scheme} | ${formatBytes(a.bytes)} |`);
  lines.push("", "`manifest.json` lists every file with its size and SHA-256.");
  return lines.join("\n");
}
