// edgequant plan, acceptance 1 and 4: each predicted artifact is the one convert writes (file sizes
// by stat, not by our readers) and fits exactly as `fit` fits the written files; the recommendation
// is the best-ranked candidate that fits with the headroom, ranked from formats/quality.yaml as this
// test reads it. The 1.1B shape's every quantized scheme is checked in mixtures.test.ts, where those
// files are written anyway.

import { cpSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { convertToGguf } from "../src/convert/gguf.js";
import { convertToMlx } from "../src/convert/mlx.js";
import { convertToOnnx } from "../src/convert/onnx.js";
import { fitArtifacts, fitManifest, type FitManifest } from "../src/fit/manifest.js";
import { planCandidates, type Candidate } from "../src/plan/candidates.js";
import { planModel, type PlanReport } from "../src/plan/plan.js";
import { openCheckpoint } from "../src/readers/checkpoint.js";
import { resolveScheme } from "../src/quant/schemes.js";
import { REPO_ROOT, TINY_LLAMA, TINY_LLAMA_TERNARY, runCli, tempDir } from "./support/cli.js";
import { runEdgequant } from "./support/fake-cli.js";
import { FakeHub, fixtureFiles } from "./support/fake-hub.js";
import { cachedGguf } from "./support/gguf-cache.js";
import { syntheticCheckpoint } from "./support/large-checkpoint.js";

const dir = tempDir("edgequant-plan-");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// One device per runtime kind: Metal + MLX, CPU (ARM), CUDA with VRAM, and this machine.
const DEVICES = ["iphone-15-pro", "raspberry-pi-5-8gb", "desktop-rtx-4090-24gb", "this"];

/** Writes the candidate with the library converters, where plan said it would be. */
async function convert(source: string, candidate: Candidate): Promise<string> {
  const output = candidate.artifact.format === "gguf" ? candidate.artifact.path : candidate.artifact.files[0]!.path.replace(/\/(onnx\/)?[^/]+$/, "");
  if (candidate.format === "gguf") await convertToGguf({ source, output, scheme: resolveScheme(candidate.setting), allowLossyTernary: true });
  if (candidate.format === "mlx") {
    const [, bits, mixed] = /^(?:(\d)bit|mixed_(\d_\d))$/.exec(candidate.setting)!;
    await convertToMlx({ source, output, ...(mixed ? { bits: Number(mixed[0]) as 3 | 4, mixed: mixed as "3_6" } : { bits: Number(bits) as 4 }) });
  }
  if (candidate.format === "onnx") await convertToOnnx({ source, output, bits: Number(candidate.setting.replace(/^(fp|int)/, "")) as 4 });
  return output;
}

/** Sizes of the model files in what convert wrote, by stat. */
function writtenSizes(output: string): Record<string, number> {
  if (statSync(output).isFile()) return { [output]: statSync(output).size };
  const files: Record<string, number> = {};
  for (const folder of [output, join(output, "onnx")]) {
    let entries: string[] = [];
    try {
      entries = readdirSync(folder);
    } catch {
      continue;
    }
    for (const name of entries) if (/\.(safetensors|onnx|onnx_data)$/.test(name)) files[join(folder, name)] = statSync(join(folder, name)).size;
  }
  return files;
}

/** The parts of a manifest that depend on the artifact: everything but the time it was made. */
const comparable = (m: FitManifest) => ({ ...m, createdAt: undefined });

function describeModel(label: string, source: string, schemes?: string[]) {
  describe(`${label}: every planned artifact is the one convert writes, to the byte, and fits as fit says`, () => {
    let candidates: Candidate[] = [];
    beforeAll(async () => {
      const checkpoint = await openCheckpoint(source);
      try {
        candidates = (await planCandidates(checkpoint, { modelName: label, outputDir: join(dir, label), ...(schemes ? { schemes } : {}) })).candidates;
      } finally {
        await checkpoint.close();
      }
    });
    test("every candidate", async () => {
      expect(candidates.length).toBeGreaterThan(0);
      const lines: string[] = [];
      for (const candidate of candidates) {
        const output = await convert(source, candidate);
        const predicted = Object.fromEntries(candidate.artifact.files.map((f) => [f.path, f.bytes]));
        expect(predicted, candidate.id).toEqual(writtenSizes(output));
        const options = { devices: DEVICES };
        expect(comparable(await fitArtifacts([candidate.artifact], options)), candidate.id).toEqual(comparable(await fitManifest(output, options)));
        lines.push(`${candidate.id.padEnd(16)} ${Object.values(predicted).reduce((a, b) => a + b, 0)} bytes predicted = written`);
        rmSync(output, { recursive: true, force: true });
      }
      console.log(`${label}:\n${lines.join("\n")}`);
    }, 600_000);
  });
}

describeModel("tiny-llama", TINY_LLAMA);
describeModel("tiny-llama-ternary", TINY_LLAMA_TERNARY, ["tq1_0", "tq2_0", "q4_k_m", "mlx 4bit", "onnx int4"]);

describe("TinyLlama-1.1B shape, F16: the predicted file is the converted one", () => {
  test("size and fit rows", async () => {
    const source = syntheticCheckpoint("tinyllama1b");
    const written = await cachedGguf(source, "tinyllama1b", "f16");
    const checkpoint = await openCheckpoint(source);
    try {
      const [candidate] = (await planCandidates(checkpoint, { modelName: "x", outputDir: dir, schemes: ["f16"] })).candidates;
      expect(candidate!.artifact.files[0]!.bytes).toBe(statSync(written).size);
      const options = { devices: DEVICES };
      const planned = { ...candidate!.artifact, path: written, files: [{ path: written, bytes: candidate!.artifact.files[0]!.bytes }], tensors: candidate!.artifact.tensors.map((t) => ({ ...t, file: written })) };
      expect(comparable(await fitArtifacts([planned], options))).toEqual(comparable(await fitManifest(written, options)));
    } finally {
      await checkpoint.close();
    }
  }, 1_800_000);
});

/** formats/quality.yaml read here, not through src/: [perplexity lost in percent, uncertainty] per candidate. */
function qualityTable(): (id: string) => [number, number] {
  type Table = { ppl16: number; deltaPpl: Record<string, [number, number]>; lossless?: string[] };
  const q = parse(readFileSync(join(REPO_ROOT, "formats/quality.yaml"), "utf8")) as { gguf: Table; onnx: { sameAs: Record<string, string> }; mlx: Table };
  const of = (t: Table, s: string | undefined): [number, number] => {
    if (s !== undefined && t.lossless?.includes(s)) return [0, 0];
    const m = s === undefined ? undefined : t.deltaPpl[s];
    return m ? [(100 * m[0]) / t.ppl16, (100 * m[1]) / t.ppl16] : [Infinity, 0];
  };
  return (id) => {
    const [format, setting] = id.split(" ") as [string, string];
    if (format === "gguf") return of(q.gguf, setting);
    if (format === "onnx") return of(q.gguf, q.onnx.sameAs[setting.replace(/^(fp|int)/, "")]);
    return of(q.mlx, setting);
  };
}

describe("the recommendation is the best-ranked candidate that fits with the headroom, and says why", () => {
  let report: PlanReport;
  beforeAll(async () => {
    // TinyLlama-1.1B was trained for 2048 tokens: the table is at its full context (4096 is refused below).
    report = await planModel(syntheticCheckpoint("tinyllama1b"), { modelName: "TinyLlama-1.1B-shape", contexts: [512, 2048] });
  }, 600_000);

  test("each device's pick, checked against the manifest's own rows", () => {
    const rank = qualityTable();
    const table: string[] = [];
    for (const rec of report.recommendations) {
      const fitting = report.candidates
        .map((c) => {
          const result = report.manifest.results.find((r) => r.artifact === c.artifactId && r.device === rec.device && r.kvCache === "f16" && !r.flashAttention && r.supported);
          const row = result?.rows?.find((r) => r.context === 2048);
          const budget = row?.pools.find((p) => p.pool === row.bindingPool)?.budget ?? 0;
          return { c, row, fits: row !== undefined && !row.exceedsModelContext && row.fits && row.headroom >= 0.1 * budget };
        })
        .filter((x) => x.fits)
        .sort((a, b) => rank(a.c.id)[0] - rank(b.c.id)[0] || a.row!.total - b.row!.total);
      // the best-ranked, or one no measurably worse (within the combined uncertainty) using less memory
      const [bestDelta, bestError] = fitting[0] ? rank(fitting[0].c.id) : [0, 0];
      const expected = fitting
        .filter((x) => rank(x.c.id)[0] - bestDelta <= Math.hypot(bestError, rank(x.c.id)[1]))
        .sort((a, b) => a.row!.total - b.row!.total)[0];
      expect(rec.pick, rec.device).toBe(expected?.c.id ?? null);
      if (expected) {
        expect(rec.bindingPool).toBe(expected.row!.bindingPool);
        expect(rec.reason).toMatch(new RegExp(`${expected.row!.bindingPool} is the binding pool`));
      } else expect(rec.reason).toMatch(/nothing fits|beyond|no planned artifact/);
      table.push(`| ${rec.device} | ${rec.pick ?? "none"} | ${rec.runtime ?? "-"} | ${rec.total === undefined ? "-" : (rec.total / 2 ** 30).toFixed(2)} | ${rec.bindingPool ?? "-"} | ${rec.reason} |`);
    }
    console.log(`| device | pick | runtime | GiB at 2k | binding | why |\n|---|---|---|---|---|---|\n${table.join("\n")}`);
  });

  test("beyond the trained context nothing is recommended, and the reason says so", async () => {
    const beyond = await planModel(syntheticCheckpoint("tinyllama1b"), { modelName: "TinyLlama-1.1B-shape", contexts: [4096], devices: ["raspberry-pi-5-8gb"], formats: ["gguf"], schemes: ["q4_k_m"] });
    expect(beyond.recommendations[0]!.pick).toBeNull();
    expect(beyond.recommendations[0]!.reason).toMatch(/4096 tokens is beyond the model's trained context \(2048\)/);
  }, 600_000);

  test("a device too small for the best candidates gets a smaller one, not nothing", () => {
    const phone = report.recommendations.find((r) => r.device === "iphone-15")!;
    expect(phone.pick).not.toBe("gguf f32");
    expect(phone.pick).not.toBeNull();
  });
});

describe("the CLI", () => {
  test("plan --json carries its schema, the candidates and the manifest; the table names every device", () => {
    const json = runCli(["plan", TINY_LLAMA, "--devices", "raspberry-pi-5-8gb,iphone-15", "--ctx", "256", "--formats", "gguf", "--json"]);
    expect(json.code).toBe(0);
    const report = JSON.parse(json.stdout) as PlanReport;
    expect(report.schema).toBe("edgequant-plan/v1");
    expect(report.candidates.every((c) => c.format === "gguf")).toBe(true);
    expect(report.recommendations.map((r) => r.device)).toEqual(["raspberry-pi-5-8gb", "iphone-15"]);
    const table = runCli(["plan", TINY_LLAMA, "--devices", "raspberry-pi-5-8gb", "--ctx", "256", "--schemes", "q4_k_m,q8_0"]);
    expect(table.stdout).toMatch(/Recommended at 256 tokens/);
    expect(table.stdout).toMatch(/raspberry-pi-5-8gb +gguf q8_0/);
  });

  test("bad flags are refused with exit 2 and a reason", () => {
    expect(runCli(["plan", TINY_LLAMA, "--formats", "tflite"]).stderr).toMatch(/--formats takes gguf, mlx, onnx; got 'tflite'/);
    const unknown = runCli(["plan", TINY_LLAMA, "--schemes", "q4km"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown --schemes entry 'q4km'/);
  });
});

describe("plan hf:org/name@commit reads only the safetensors headers, and gives the local folder's table", () => {
  const COMMIT = "0123456789abcdef0123456789abcdef01234567";
  let hub: FakeHub;
  beforeAll(async () => {
    hub = await FakeHub.start([{ id: "test-org/tiny-llama", commit: COMMIT, files: fixtureFiles(TINY_LLAMA) }]);
  });
  afterAll(async () => hub?.stop());

  test("headers only, the same candidates and rows, then offline from the cache", async () => {
    const home = tempDir("edgequant-plan-hub-");
    const env = { ...process.env, HF_HOME: home, HF_ENDPOINT: hub.url, HF_TOKEN: "" };
    const args = ["--devices", "raspberry-pi-5-8gb,iphone-15-pro", "--ctx", "256", "--json"];
    const remote = await runEdgequant(["plan", `hf:test-org/tiny-llama@${COMMIT}`, ...args], { env });
    expect(remote.code, remote.stderr).toBe(0);
    const weights = statSync(join(TINY_LLAMA, "model.safetensors")).size;
    const served = hub.bytesServed.get("model.safetensors") ?? 0;
    const everything = [...hub.bytesServed.values()].reduce((a, b) => a + b, 0);
    console.log(`plan hf: ${served} bytes of model.safetensors (${((100 * served) / weights).toFixed(3)}% of ${weights}); ${everything} bytes in all`);
    expect(served / weights).toBeLessThan(0.01);
    expect(everything / weights).toBeLessThan(0.01);

    // The local folder under the same name gives the same table.
    const named = join(tempDir("edgequant-plan-local-"), "tiny-llama");
    cpSync(TINY_LLAMA, named, { recursive: true });
    const local = runCli(["plan", named, ...args]);
    const tables = (r: { stdout: string }) => {
      const report = JSON.parse(r.stdout) as PlanReport;
      return { candidates: report.candidates.map((c) => [c.id, c.bytes]), recommendations: report.recommendations, results: report.manifest.results };
    };
    expect(tables(remote)).toEqual(tables(local));

    // Offline: the headers an earlier plan fetched are enough.
    const before = hub.requests.length;
    const offline = await runEdgequant(["plan", `hf:test-org/tiny-llama@${COMMIT}`, ...args], { env: { ...env, HF_HUB_OFFLINE: "1", HF_ENDPOINT: "http://127.0.0.1:9" } });
    expect(offline.code, offline.stderr).toBe(0);
    expect(hub.requests.length).toBe(before);
    expect(tables(offline)).toEqual(tables(local));
  }, 300_000);
});

describe("fit on a checkpoint points to plan", () => {
  test("a Hugging Face folder and an hf: source are refused with the plan command to run", () => {
    const folder = runCli(["fit", TINY_LLAMA]);
    expect(folder.code).toBe(2);
    expect(folder.stderr).toMatch(/a Hugging Face checkpoint, not a converted model: 'edgequant plan .*tiny-llama'/);
    const hub = runCli(["fit", "hf:test-org/tiny-llama"]);
    expect(hub.code).toBe(2);
    expect(hub.stderr).toMatch(/'edgequant plan hf:test-org\/tiny-llama'/);
  });
});
