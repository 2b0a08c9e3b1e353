import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { Manifest } from "../src/pipeline/manifest.js";
import { runCli, TINY_LLAMA, tempDir } from "./support/cli.js";
import { artifactDigestOf } from "./support/digests.js";
import { runEdgequant } from "./support/fake-cli.js";

const COMMIT = "0123456789abcdef0123456789abcdef01234567";

describe("edgequant manifest", () => {
  it("gathers GGUF split parts written by separate jobs, and refuses an incomplete set", async () => {
    const root = tempDir("edgequant-gather-");
    // Three matrix jobs, each in its own workspace, each writing one part.
    const jobs = [1, 2, 3].map((i) => {
      const workspace = join(root, `job-${i}`);
      const result = runCli(["convert", TINY_LLAMA, "--to", "gguf", "--scheme", "q8_0", "--part", `${i}/3`, "-o", join(workspace, "tiny.gguf"), "--no-progress"]);
      expect(result.code, result.stderr).toBe(0);
      return workspace;
    });
    // The gathering job downloads every job's files into one folder.
    const out = join(root, "out");
    mkdirSync(out);
    for (const workspace of jobs) for (const file of readdirSync(workspace)) copyFileSync(join(workspace, file), join(out, file));
    const whole = runCli(["convert", TINY_LLAMA, "--to", "gguf", "--scheme", "q4_k_m", "-o", join(out, "tiny-q4_k_m.gguf"), "--no-progress"]);
    expect(whole.code).toBe(0);
    writeFileSync(join(out, "notes.txt"), "not an artifact\n");

    const result = await runEdgequant(["manifest", out, "--name", "tiny", "--source", `hf:test-org/tiny-llama@${COMMIT}`]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/not an artifact, left out: notes\.txt/);
    const manifest = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8")) as Manifest;
    expect(manifest.name).toBe("tiny");
    expect(manifest.source).toEqual({ uri: `hf:test-org/tiny-llama@${COMMIT}`, repo: "test-org/tiny-llama", revision: COMMIT });
    const summary = manifest.artifacts.map((a) => `${a.path} ${a.format} ${a.scheme} ${a.files.length}`);
    console.log(summary.join("\n"));
    expect(summary).toEqual(["tiny-00001-of-00003.gguf gguf q8_0 3", "tiny-q4_k_m.gguf gguf q4_k_m 1"]);
    const split = manifest.artifacts[0]!;
    expect(split.files.map((f) => f.path)).toEqual(["tiny-00001-of-00003.gguf", "tiny-00002-of-00003.gguf", "tiny-00003-of-00003.gguf"]);
    expect(split.settings).toEqual({ scheme: "q8_0", splits: 3 });
    for (const file of split.files) {
      expect(createHash("sha256").update(readFileSync(join(out, file.path))).digest("hex")).toBe(file.sha256);
    }
    expect(split.sha256).toBe(artifactDigestOf(out, split.files.map((f) => f.path)));
    expect(manifest.artifacts[1]!.sha256).toBe(artifactDigestOf(out, ["tiny-q4_k_m.gguf"]));

    // The gathering job can add fit files too.
    const fitted = await runEdgequant(["manifest", out, "--fit", "--devices", "raspberry-pi-5-8gb,iphone-15", "--ctx", "128,256"]);
    expect(fitted.code, fitted.stderr).toBe(0);
    const withFit = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8")) as Manifest;
    expect(withFit.fit).toEqual({ devices: ["raspberry-pi-5-8gb", "iphone-15"], contexts: [128, 256] });
    expect(withFit.artifacts[0]!.fit!.files.map((f) => f.path)).toEqual(["tiny-00001-of-00003.gguf.fit.json", "tiny-00001-of-00003.gguf.fit.svg"]);
    expect(withFit.artifacts[0]!.fit!.devices.map((d) => [d.device, d.maxContext])).toEqual([["raspberry-pi-5-8gb", 256], ["iphone-15", 256]]);
    // Its fit files are no artifacts of their own, and a later gather keeps the summary while they are unchanged.
    expect((await runEdgequant(["manifest", out])).code).toBe(0);
    expect(readFileSync(join(out, "manifest.json"), "utf8")).toBe(JSON.stringify(withFit, null, 2) + "\n");

    // A job that failed to deliver its part: exit 2, and the old manifest is left as it was.
    const before = readFileSync(join(out, "manifest.json"), "utf8");
    rmSync(join(out, "tiny-00002-of-00003.gguf"));
    const incomplete = await runEdgequant(["manifest", out]);
    expect(incomplete.code).toBe(2);
    expect(incomplete.stderr).toMatch(/split model incomplete: 1 of 3 parts missing \(tiny-00002-of-00003\.gguf\); did every matrix job upload its part\?/);
    expect(readFileSync(join(out, "manifest.json"), "utf8")).toBe(before);
  });

  it("recognises ONNX and MLX folders by their content", async () => {
    const dir = tempDir("edgequant-gather-");
    writeFileSync(join(dir, "r.yaml"), `name: t\nsource: ${TINY_LLAMA}\nfit: false\noutputs:\n  onnx:\n    - bits: 4\n    - bits: 8\n      layout: transformersjs\n  mlx:\n    - bits: 8\n`);
    expect((await runEdgequant(["run", join(dir, "r.yaml"), "--out", join(dir, "out"), "--no-progress"])).code).toBe(0);
    const fromRun = JSON.parse(readFileSync(join(dir, "out", "manifest.json"), "utf8")) as Manifest;
    rmSync(join(dir, "out", "manifest.json"));
    const result = await runEdgequant(["manifest", join(dir, "out"), "--json"]);
    expect(result.code, result.stderr).toBe(0);
    const gathered = JSON.parse(result.stdout) as Manifest;
    expect(gathered.artifacts.map((a) => [a.path, a.format, a.scheme, a.settings])).toEqual([
      ["t-mlx-8bit", "mlx", "8bit", { bits: 8, groupSize: 64 }],
      ["t-onnx-q4", "onnx", "int4", { bits: 4, layout: "genai", groupSize: 32 }],
      ["t-onnx-q8-transformersjs", "onnx", "int8", { bits: 8, layout: "transformersjs", groupSize: 32 }],
    ]);
    // Same files, same digests as the run recorded, and both what the files' bytes give (node:crypto).
    for (const artifact of gathered.artifacts) {
      expect(artifact.sha256).toBe(fromRun.artifacts.find((a) => a.path === artifact.path)!.sha256);
      expect(artifact.sha256, artifact.path).toBe(artifactDigestOf(join(dir, "out"), artifact.files.map((f) => f.path)));
    }
  });

  it("says what is wrong with its arguments", async () => {
    const empty = tempDir("edgequant-gather-");
    expect((await runEdgequant(["manifest", empty])).stderr).toMatch(/no GGUF files, ONNX or MLX model folders found here/);
    expect((await runEdgequant(["manifest", join(empty, "nope")])).stderr).toMatch(/nope: not a folder/);
    const bad = await runEdgequant(["manifest", empty, "--revision", "abc"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--revision takes a 40-hex commit/);
  });
});
