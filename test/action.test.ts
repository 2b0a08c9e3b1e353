import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { uploadDecision } from "../src/pipeline/action.js";
import type { Manifest } from "../src/pipeline/manifest.js";
import { REPO_ROOT, tempDir } from "./support/cli.js";
import { FakeGithub } from "./support/fake-github.js";

const TOKEN = "ghs_fakeActionToken0123456789abcdefXYZ";
const ENTRY = join(REPO_ROOT, "action/index.js");

interface ActionRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly outputs: Record<string, string>;
  readonly summary: string;
  readonly files: { readonly output: string; readonly summary: string };
}

/** Runs the action's entry point as the runner does: `node action/index.js` with INPUT_* and GITHUB_* variables. */
async function runAction(api: string, dir: string, inputs: Record<string, string>, env: Record<string, string> = {}): Promise<ActionRun> {
  const files = { output: join(dir, `output-${Date.now()}`), summary: join(dir, `summary-${Date.now()}`) };
  writeFileSync(files.output, "");
  writeFileSync(files.summary, "");
  const variables: NodeJS.ProcessEnv = {
    PATH: process.env["PATH"],
    HOME: process.env["HOME"],
    EDGEQUANT_ACTION_FROM_SOURCE: "1",
    GITHUB_ACTIONS: "true",
    GITHUB_API_URL: api,
    GITHUB_REPOSITORY: "test-owner/test-repo",
    GITHUB_SHA: "a".repeat(40),
    GITHUB_REF: "refs/tags/v1.0.0",
    GITHUB_WORKSPACE: REPO_ROOT,
    GITHUB_OUTPUT: files.output,
    GITHUB_STEP_SUMMARY: files.summary,
    RUNNER_TEMP: dir,
    ...Object.fromEntries(Object.entries(inputs).map(([k, v]) => [`INPUT_${k.toUpperCase()}`, v])),
    ...env,
  };
  return new Promise((done, fail) => {
    // The working folder is the repository's, as a workflow's is its checkout.
    const child = spawn(process.execPath, [ENTRY], { cwd: REPO_ROOT, env: variables, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString("utf8")));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
    child.on("error", fail);
    child.on("close", (code) => done({ code: code ?? -1, stdout, stderr, outputs: parseOutputs(readFileSync(files.output, "utf8")), summary: readFileSync(files.summary, "utf8"), files }));
  });
}

/** GITHUB_OUTPUT's `name<<delimiter ... delimiter` records. */
function parseOutputs(text: string): Record<string, string> {
  const outputs: Record<string, string> = {};
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const match = /^([^<]+)<<(.+)$/.exec(lines[i]!);
    if (!match) continue;
    const value: string[] = [];
    for (i++; i < lines.length && lines[i] !== match[2]; i++) value.push(lines[i]!);
    outputs[match[1]!] = value.join("\n");
  }
  return outputs;
}

const sha = (data: Buffer) => createHash("sha256").update(data).digest("hex");

describe("GitHub Action", () => {
  let github: FakeGithub;
  const dir = tempDir("edgequant-action-");
  const out = join(dir, "out");
  const inputs = { recipe: "recipes/tiny.yaml", out, "release-tag": "", upload: "auto", token: TOKEN };
  const runs: ActionRun[] = [];

  beforeAll(async () => {
    github = await FakeGithub.start(TOKEN);
  });
  afterAll(async () => {
    await github?.stop();
    // The token never appears in anything the action printed or wrote; the one exception is
    // the runner's own ::add-mask:: command, which the runner consumes and never shows.
    for (const run of runs) {
      const printed = `${run.stdout}\n${run.stderr}`.split("\n").filter((line) => !line.startsWith("::add-mask::")).join("\n");
      expect(printed).not.toContain(TOKEN);
      for (const line of `${run.stdout}\n${run.stderr}`.split("\n").filter((l) => l.includes(TOKEN))) expect(line).toBe(`::add-mask::${TOKEN}`);
      expect(readFileSync(run.files.output, "utf8")).not.toContain(TOKEN);
      expect(readFileSync(run.files.summary, "utf8")).not.toContain(TOKEN);
    }
    if (existsSync(out)) for (const name of readdirSync(out)) if (statSync(join(out, name)).isFile()) expect(readFileSync(join(out, name)).includes(TOKEN), name).toBe(false);
    for (const release of github?.releases ?? []) {
      expect(release.body).not.toContain(TOKEN);
      for (const asset of release.assets) expect(asset.data.includes(TOKEN), asset.name).toBe(false);
    }
  });

  it("action.yml declares a JavaScript action on a current Node with the inputs and outputs the entry reads", () => {
    const action = parse(readFileSync(join(REPO_ROOT, "action.yml"), "utf8")) as { runs: { using: string; main: string }; inputs: Record<string, { default?: string }>; outputs: Record<string, unknown> };
    expect(["node20", "node24"]).toContain(action.runs.using);
    expect(action.runs.main).toBe("action/index.js");
    expect(Object.keys(action.inputs).sort()).toEqual(["out", "recipe", "release-tag", "token", "upload"]);
    expect(action.inputs["token"]!.default).toBe("${{ github.token }}");
    expect(Object.keys(action.outputs).sort()).toEqual(["artifacts", "assets", "manifest", "out", "release-url"]);
  });

  it("on a tag: runs the recipe, writes the fit table, creates the release once and uploads every artifact and manifest.json", async () => {
    const run = await runAction(github.url, dir, inputs);
    runs.push(run);
    console.log(run.stdout.split("\n").filter((l) => l.startsWith("release") || l.startsWith("::error")).join("\n"));
    expect(run.code, run.stdout + run.stderr).toBe(0);

    // Outputs
    expect(run.outputs["manifest"]).toBe(join(out, "manifest.json"));
    const manifest = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8")) as Manifest;
    expect(JSON.parse(run.outputs["artifacts"]!)).toEqual(manifest.artifacts.map((a) => join(out, a.path)));
    expect(run.outputs["release-url"]).toBe("https://github.example/test-owner/test-repo/releases/tag/v1.0.0");

    // One release, created at the workflow's commit, with every asset.
    expect(github.releases).toHaveLength(1);
    expect(github.count("POST", /^\/repos\/test-owner\/test-repo\/releases$/)).toBe(1);
    const release = github.releases[0]!;
    expect(release).toMatchObject({ tag: "v1.0.0", targetCommitish: "a".repeat(40) });
    const expected = [
      ...manifest.artifacts.flatMap((a) => [
        ...(a.format === "gguf" ? a.files.map((f) => f.path) : [`${a.path}.tar`]),
        ...(a.fit?.files.map((f) => f.path) ?? []),
      ]),
      "manifest.json",
    ];
    expect(release.assets.map((a) => a.name)).toEqual(expected);
    expect(JSON.parse(run.outputs["assets"]!)).toEqual(expected);
    console.log(`assets (${release.assets.length}): ${release.assets.map((a) => `${a.name} ${a.data.length}`).join(", ")}`);
    // Uploaded bytes are the files' bytes; every upload carried its Content-Length.
    for (const asset of release.assets) {
      if (asset.name.endsWith(".tar")) continue;
      expect(sha(asset.data), asset.name).toBe(sha(readFileSync(join(out, asset.name))));
    }
    expect(github.requests.filter((r) => r.path.startsWith("/uploads/")).every((r) => r.contentLength !== undefined)).toBe(true);
    // A folder's tar holds the folder's files (checked with the archive's own listing of names and sizes).
    const onnx = manifest.artifacts.find((a) => a.format === "onnx")!;
    const tar = release.assets.find((a) => a.name === `${onnx.path}.tar`)!.data;
    const names: string[] = [];
    for (let at = 0; at + 512 <= tar.length; ) {
      const name = tar.subarray(at, at + 100).toString("utf8").replace(/\0.*$/s, "");
      if (!name) break;
      const size = parseInt(tar.subarray(at + 124, at + 136).toString("utf8").replace(/\0.*$/s, "").trim() || "0", 8);
      if (!name.endsWith("/")) {
        names.push(name);
        expect(sha(tar.subarray(at + 512, at + 512 + size)), name).toBe(onnx.files.find((f) => f.path === name)!.sha256);
      }
      at += 512 + Math.ceil(size / 512) * 512;
    }
    expect(names.sort()).toEqual(onnx.files.map((f) => f.path).sort());
    expect(release.assets.find((a) => a.name === "manifest.json")!.data.toString("utf8")).toBe(readFileSync(join(out, "manifest.json"), "utf8"));

    // The job summary holds the artifacts and the fit table.
    console.log(run.summary);
    expect(run.summary).toMatch(/## edgequant: tiny-llama/);
    expect(run.summary).toMatch(/\| artifact \| device \| runtime \| ctx 128 \| ctx 256 \| max context \| tok\/s \|/);
    for (const device of ["iphone-15", "pixel-9-pro", "raspberry-pi-5-8gb", "macbook-air-m2-8gb"]) {
      expect(run.summary).toMatch(new RegExp(`\\| \`tiny-llama-q4_k_m\\.gguf\` \\| ${device} \\| [^|]+ \\| [0-9.]+ MB ✓ \\| [0-9.]+ MB ✓ \\| 256 \\| \\d+ \\|`));
    }
  });

  it("a re-run replaces the assets instead of failing, and creates no second release", async () => {
    const before = github.releases[0]!.assets.map((a) => ({ name: a.name, id: a.id, hash: sha(a.data) }));
    const creates = github.count("POST", /^\/repos\/test-owner\/test-repo\/releases$/);
    const run = await runAction(github.url, dir, inputs);
    runs.push(run);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(github.releases).toHaveLength(1);
    expect(github.count("POST", /^\/repos\/test-owner\/test-repo\/releases$/)).toBe(creates);
    const after = github.releases[0]!.assets.map((a) => ({ name: a.name, id: a.id, hash: sha(a.data) }));
    // Same names and bytes (the build is reproducible), new uploads.
    expect(after.map(({ name, hash }) => ({ name, hash }))).toEqual(before.map(({ name, hash }) => ({ name, hash })));
    for (const [i, asset] of after.entries()) expect(asset.id).not.toBe(before[i]!.id);
    expect(github.count("DELETE", /\/releases\/assets\/\d+$/)).toBe(before.length);
    expect(run.stdout).toMatch(/release v1\.0\.0: replaced tiny-llama-q8_0\.gguf/);
  });

  it("joins a release another job created first, and does not upload off tags", async () => {
    github.raceOnCreate = true;
    const raced = await runAction(github.url, dir, { ...inputs, "release-tag": "nightly" }, { GITHUB_REF: "refs/heads/main" });
    runs.push(raced);
    expect(raced.code, raced.stdout + raced.stderr).toBe(0);
    expect(github.releases.filter((r) => r.tag === "nightly")).toHaveLength(1);
    expect(github.releases.find((r) => r.tag === "nightly")!.assets.map((a) => a.name)).toContain("manifest.json");

    const requests = github.requests.length;
    const branch = await runAction(github.url, dir, inputs, { GITHUB_REF: "refs/heads/main" });
    runs.push(branch);
    expect(branch.code).toBe(0);
    expect(branch.stdout).toMatch(/upload: off \(not a tag, and no release-tag given\)/);
    expect(github.requests.length).toBe(requests);
    expect(branch.outputs["manifest"]).toBe(join(out, "manifest.json"));
  });

  it("fails the step with a clear message on a bad recipe or a token GitHub refuses", async () => {
    const bad = join(dir, "bad.yaml");
    writeFileSync(bad, "source: ./nowhere\noutputs:\n  gguf: [q9]\n");
    const run = await runAction(github.url, dir, { ...inputs, recipe: bad });
    runs.push(run);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/::error::.*bad\.yaml:1:9: source '\.\/nowhere' does not exist/);
    expect(run.stdout).toMatch(/bad\.yaml:3:10: outputs\.gguf\[0\]: unknown GGUF scheme 'q9'/);

    mkdirSync(join(dir, "other"), { recursive: true });
    const refused = await runAction(github.url, dir, { ...inputs, token: "ghs_notTheRightToken000" });
    runs.push(refused);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toMatch(/::error::get release v1\.0\.0: GitHub refused the token \(HTTP 401\)/);
    expect(`${refused.stdout}${refused.stderr}`.split("\n").filter((l) => !l.startsWith("::add-mask::")).join("\n")).not.toContain("ghs_notTheRightToken000");
  });

  it("decides when to upload", () => {
    expect(uploadDecision("", "auto", "refs/tags/v2")).toEqual({ tag: "v2", upload: true });
    expect(uploadDecision("", "", "refs/heads/main")).toEqual({ upload: false });
    expect(uploadDecision("nightly", "auto", "refs/heads/main")).toEqual({ tag: "nightly", upload: true });
    expect(uploadDecision("", "false", "refs/tags/v2")).toEqual({ tag: "v2", upload: false });
    expect(uploadDecision("", "true", "refs/heads/main")).toEqual({ upload: true });
    expect(() => uploadDecision("", "yes", undefined)).toThrow(/true, false or auto/);
  });
});
