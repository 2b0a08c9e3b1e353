import { createHash } from "node:crypto";
import { cpSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { Ajv } from "ajv";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Manifest } from "../src/pipeline/manifest.js";
import { REPO_ROOT, TINY_LLAMA, tempDir } from "./support/cli.js";
import { artifactDigestOf } from "./support/digests.js";
import { runEdgequant } from "./support/fake-cli.js";
import { FakeHub, fixtureFiles } from "./support/fake-hub.js";

const TINY_RECIPE = join(REPO_ROOT, "recipes/tiny.yaml");
const COMMIT = "89abcdef0123456789abcdef0123456789abcdef";
const validateFit = new Ajv({ allErrors: true, strict: false }).compile(JSON.parse(readFileSync(join(REPO_ROOT, "formats/fit-manifest.schema.json"), "utf8")) as object);

/** Every file under `dir` (relative path -> sha256). */
function tree(dir: string): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (at: string) => {
    for (const name of readdirSync(at).sort()) {
      const path = join(at, name);
      if (statSync(path).isDirectory()) walk(path);
      else files.set(relative(dir, path), createHash("sha256").update(readFileSync(path)).digest("hex"));
    }
  };
  walk(dir);
  return files;
}

function readManifest(dir: string): Manifest {
  return JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")) as Manifest;
}

describe("edgequant run recipes/tiny.yaml", () => {
  const first = join(tempDir("edgequant-run-"), "out");
  let firstTree: Map<string, string>;
  let started = 0;

  beforeAll(async () => {
    started = Date.now();
    const result = await runEdgequant(["run", TINY_RECIPE, "--out", first, "--no-progress"]);
    console.log(`first run: exit ${result.code} in ${((Date.now() - started) / 1000).toFixed(1)} s\n${result.stdout}${result.stderr}`);
    expect(result.code).toBe(0);
    firstTree = tree(first);
  });

  it("builds GGUF in two schemes, ONNX, MLX and fit files, and a manifest whose sizes and sha256 match the files", () => {
    const manifest = readManifest(first);
    const formats = manifest.artifacts.map((a) => `${a.format}:${a.scheme}`);
    console.log(`artifacts: ${formats.join(", ")}`);
    expect(formats).toEqual(["gguf:q8_0", "gguf:q4_k_m", "onnx:int4", "onnx:int8", "mlx:4bit"]);
    expect(manifest).toMatchObject({ manifestVersion: 1, edgequant: JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")).version, name: "tiny-llama", source: { uri: "../test/fixtures/tiny-llama" } });

    const listed = new Set<string>();
    let checked = 0;
    for (const artifact of manifest.artifacts) {
      expect(artifact.architecture).toBe("llama");
      for (const file of artifact.files) {
        const bytes = readFileSync(join(first, file.path));
        expect(bytes.length, file.path).toBe(file.bytes);
        expect(createHash("sha256").update(bytes).digest("hex"), file.path).toBe(file.sha256);
        listed.add(file.path);
        checked++;
      }
      expect(artifact.bytes).toBe(artifact.files.reduce((s, f) => s + f.bytes, 0));
      // recomputed from the files with node:crypto, not with src/'s digest helpers
      expect(artifact.files.map((f) => f.path)).toEqual(artifact.files.map((f) => f.path).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
      expect(artifact.sha256, artifact.path).toBe(artifactDigestOf(first, artifact.files.map((f) => f.path)));
      // Fit files beside every artifact: valid fit manifests, and what the manifest's summary says.
      expect(artifact.fit, artifact.path).toBeDefined();
      const fit = artifact.fit!;
      expect(fit.files.map((f) => f.path)).toEqual([`${artifact.path}.fit.json`, `${artifact.path}.fit.svg`]);
      for (const file of fit.files) {
        const bytes = readFileSync(join(first, file.path));
        expect([bytes.length, createHash("sha256").update(bytes).digest("hex")], file.path).toEqual([file.bytes, file.sha256]);
        listed.add(file.path);
        checked++;
      }
      const fitJson = JSON.parse(readFileSync(join(first, fit.files[0]!.path), "utf8")) as { artifacts: { path: string }[]; results: unknown[] };
      expect(validateFit(fitJson), JSON.stringify(validateFit.errors)).toBe(true);
      // Paths in it are relative to the file (the run's folder leaves no trace).
      expect(fitJson.artifacts[0]!.path === artifact.path || fitJson.artifacts[0]!.path.startsWith(`${artifact.path}/`), fitJson.artifacts[0]!.path).toBe(true);
      expect(fit.devices.map((d) => d.device)).toEqual(["iphone-15", "pixel-9-pro", "raspberry-pi-5-8gb", "macbook-air-m2-8gb"]);
      for (const device of fit.devices.filter((d) => !d.unsupported)) expect(device.contexts.map((c) => c.context)).toEqual([128, 256]);
    }
    expect(manifest.fit).toEqual({ devices: ["iphone-15", "pixel-9-pro", "raspberry-pi-5-8gb", "macbook-air-m2-8gb"], contexts: [128, 256] });
    console.log(`manifest: ${manifest.artifacts.length} artifacts, ${checked} files checked (size and sha256)`);
    // Nothing in the folder that the manifest does not account for.
    expect([...firstTree.keys()].filter((p) => p !== "manifest.json" && !listed.has(p))).toEqual([]);
  });

  it("gives byte-identical artifacts and manifest when run again, in the same folder and in another", async () => {
    const again = await runEdgequant(["run", TINY_RECIPE, "--out", first, "--no-progress"]);
    expect(again.code).toBe(0);
    expect(tree(first)).toEqual(firstTree);

    const second = join(tempDir("edgequant-run-"), "elsewhere");
    const result = await runEdgequant(["run", TINY_RECIPE, "--out", second, "--no-progress", "--json"]);
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as { manifestPath: string; manifest: Manifest };
    expect(report.manifestPath).toBe(join(second, "manifest.json"));
    const secondTree = tree(second);
    expect(secondTree).toEqual(firstTree);
    console.log(`re-runs: ${secondTree.size} files byte-identical (same folder and another folder)`);
  });

  it("`edgequant manifest` on the folder writes the same manifest.json", async () => {
    const copy = join(tempDir("edgequant-run-"), "copy");
    cpSync(first, copy, { recursive: true });
    const result = await runEdgequant(["manifest", copy]);
    expect(result.code).toBe(0);
    expect(readFileSync(join(copy, "manifest.json"), "utf8")).toBe(readFileSync(join(first, "manifest.json"), "utf8"));
  });
});

describe("edgequant run with an hf: source", () => {
  let hub: FakeHub;
  const bitnet = join(tempDir("edgequant-run-"), "bitnet-relu2");

  beforeAll(async () => {
    // A model the GGUF writer refuses from its config alone: BitNet with a relu² FFN.
    cpSync(TINY_LLAMA, bitnet, { recursive: true });
    const config = JSON.parse(readFileSync(join(bitnet, "config.json"), "utf8")) as Record<string, unknown>;
    writeFileSync(join(bitnet, "config.json"), JSON.stringify({ ...config, architectures: ["BitNetForCausalLM"], hidden_act: "relu2" }));
    hub = await FakeHub.start([
      { id: "test-org/tiny-llama", commit: COMMIT, files: fixtureFiles(TINY_LLAMA) },
      { id: "test-org/bitnet-relu2", commit: COMMIT, files: fixtureFiles(bitnet) },
    ]);
  });
  afterAll(async () => {
    await hub?.stop();
  });

  it("downloads into HF_HOME, records the commit, and gives the same bytes as the local folder; then runs offline", async () => {
    const dir = tempDir("edgequant-run-");
    const home = join(dir, "hf-home");
    writeFileSync(join(dir, "recipe.yaml"), "name: tiny-llama\nsource: hf:test-org/tiny-llama\noutputs:\n  gguf: [q8_0]\nfit: false\n");
    const env = { ...process.env, HF_HOME: home, HF_ENDPOINT: hub.url, HF_HUB_OFFLINE: "", HF_TOKEN: "" };
    // (From source, the quantization workers load tsx from the working folder: run from the repository.)
    const result = await runEdgequant(["run", join(dir, "recipe.yaml"), "--out", join(dir, "out"), "--no-progress"], { env });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/hf: test-org\/tiny-llama@89abcdef0123 \(main\): 6 files/);
    const manifest = readManifest(join(dir, "out"));
    expect(manifest.source).toEqual({ uri: "hf:test-org/tiny-llama", repo: "test-org/tiny-llama", revision: COMMIT });
    expect(existsSync(join(home, "hub", "models--test-org--tiny-llama", "snapshots", COMMIT, "model.safetensors"))).toBe(true);

    // The same GGUF as from the local fixture (general.name is the repository's name, not the commit).
    const local = join(dir, "local");
    writeFileSync(join(dir, "local.yaml"), `name: tiny-llama\nsource: ${TINY_LLAMA}\noutputs:\n  gguf: [q8_0]\nfit: false\n`);
    expect((await runEdgequant(["run", join(dir, "local.yaml"), "--out", local, "--no-progress"])).code).toBe(0);
    expect(readFileSync(join(dir, "out", "tiny-llama-q8_0.gguf")).equals(readFileSync(join(local, "tiny-llama-q8_0.gguf")))).toBe(true);

    // Offline, from the cache alone.
    hub.requests.length = 0;
    const offline = await runEdgequant(["run", join(dir, "recipe.yaml"), "--out", join(dir, "out2"), "--no-progress"], { env: { ...env, HF_HUB_OFFLINE: "1" } });
    expect(offline.code, offline.stderr).toBe(0);
    expect(hub.requests).toEqual([]);
    expect(tree(join(dir, "out2"))).toEqual(tree(join(dir, "out")));
  });

  it("refuses a model an output cannot be made from after config.json, before the weights are downloaded", async () => {
    const dir = tempDir("edgequant-run-");
    writeFileSync(join(dir, "recipe.yaml"), "source: hf:test-org/bitnet-relu2\noutputs:\n  gguf: [tq2_0]\n");
    hub.requests.length = 0;
    const env = { ...process.env, HF_HOME: join(dir, "hf-home"), HF_ENDPOINT: hub.url, HF_HUB_OFFLINE: "", HF_TOKEN: "" };
    const result = await runEdgequant(["run", "recipe.yaml", "--out", "out", "--no-progress"], { cwd: dir, env });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/outputs\.gguf\[0\] \(gguf tq2_0\): .*hidden_act 'relu2' is not what llama\.cpp's bitnet graph computes/);
    expect(hub.dataRequests("model.safetensors")).toEqual([]);
    expect(existsSync(join(dir, "out"))).toBe(false);
  });
});
