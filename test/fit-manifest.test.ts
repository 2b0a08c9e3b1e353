// Acceptance 2-4 of the fit manifest: the JSON validates against formats/fit-manifest.schema.json and
// every device has a source; the SVG chart renders (resvg) to a non-blank image showing each line and
// the budget bands; ONNX and MLX artifacts get the same manifest with weights equal to their files'
// tensor bytes and compute labelled as estimates. Plus the device file and the CLI. The allocator's
// properties are in fit-alloc.test.ts.

import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Resvg } from "@resvg/resvg-js";
import { Ajv } from "ajv";
import onnxProto from "onnx-proto";
import { parse } from "yaml";
import { beforeAll, describe, expect, test } from "vitest";
import { convertToMlx } from "../src/convert/mlx.js";
import { convertToOnnx } from "../src/convert/onnx.js";
import { UserError } from "../src/errors.js";
import { loadCatalogue, parseSize } from "../src/fit/devices.js";
import { readGgufArtifact } from "../src/fit/gguf-artifact.js";
import { DEFAULT_LLAMA_CPP, estimateLlamaCpp } from "../src/fit/llama-cpp.js";
import { defaultFitPath, fitManifest, largestContext, type FitManifest } from "../src/fit/manifest.js";
import { writeFitFiles } from "../src/fit/write.js";
import { REPO_ROOT, TINY_LLAMA, runCli, tempDir } from "./support/cli.js";
import { cachedGguf } from "./support/gguf-cache.js";

const schema = JSON.parse(readFileSync(join(REPO_ROOT, "formats/fit-manifest.schema.json"), "utf8")) as object;
const devicesSchema = JSON.parse(readFileSync(join(REPO_ROOT, "formats/devices.schema.json"), "utf8")) as object;
const ajv = new Ajv({ allErrors: true, strict: false });
const validateManifest = ajv.compile(schema);
const validateDevices = ajv.compile(devicesSchema);

let dir: string;
let models: string; // a folder holding a GGUF, an ONNX folder and an MLX folder
let manifest: FitManifest;

beforeAll(async () => {
  dir = tempDir("edgequant-fit-");
  models = join(dir, "models");
  mkdirSync(models);
  const gguf = await cachedGguf(TINY_LLAMA, "tiny-llama", "q4_k_m");
  writeFileSync(join(models, "tiny-llama-q4_k_m.gguf"), readFileSync(gguf));
  await convertToOnnx({ source: TINY_LLAMA, output: join(models, "tiny-llama-onnx-q4"), bits: 4 });
  await convertToMlx({ source: TINY_LLAMA, output: join(models, "tiny-llama-mlx-q4"), bits: 4 });
  manifest = await fitManifest(models, {});
}, 600_000);

describe("the manifest", () => {
  test("validates against formats/fit-manifest.schema.json", () => {
    const ok = validateManifest(JSON.parse(JSON.stringify(manifest)));
    expect(validateManifest.errors ?? []).toEqual([]);
    expect(ok).toBe(true);
  });

  test("covers every artifact x device x KV configuration, with the default contexts and the model's maximum", () => {
    expect(manifest.artifacts.map((a) => a.format).sort()).toEqual(["gguf", "mlx", "onnx"]);
    expect(manifest.contexts).toEqual([256, 512, 2048, 4096, 8192, 32768]);
    expect(manifest.devices.length).toBeGreaterThanOrEqual(12);
    expect(manifest.results).toHaveLength(manifest.artifacts.length * manifest.devices.length * 3);
    for (const r of manifest.results.filter((x) => x.supported)) {
      expect(r.rows!.map((row) => row.context)).toEqual(manifest.contexts);
      for (const row of r.rows!) {
        expect(row.total).toBeCloseTo(row.weights + row.kvCache + row.compute + row.output + row.overhead, 0);
        expect(row.fits).toBe(row.pools.every((p) => p.used <= p.budget));
        expect(row.headroom).toBe(Math.min(...row.pools.map((p) => p.budget - p.used)));
        expect(row.decodeTokensPerSecond).toBeGreaterThan(0);
      }
    }
  });

  test("every device has a source, a budget basis and a runtime the catalogue defines", async () => {
    const catalogue = await loadCatalogue();
    for (const d of manifest.devices) {
      expect(d.source.length).toBeGreaterThan(0);
      expect(d.source.every((s) => s.trim().length > 0)).toBe(true);
      expect(d.memory.availableBasis.length).toBeGreaterThan(10);
      expect(d.memory.available).toBeLessThanOrEqual(d.memory.total);
      for (const id of d.runtimes) expect(catalogue.runtimes.has(id)).toBe(true);
    }
    for (const r of manifest.runtimes) expect(r.source.length).toBeGreaterThan(0);
  });

  test("the catalogue covers the targets the issue names", () => {
    const ids = manifest.devices.map((d) => d.id);
    const totals = new Map(manifest.devices.map((d) => [d.id, d.memory.total / 2 ** 30]));
    const iphones = ids.filter((id) => id.startsWith("iphone"));
    expect(iphones.map((id) => totals.get(id)!).sort((a, b) => a - b)).toEqual([6, 8, 8, 12]);
    expect(ids.some((id) => id.startsWith("pixel"))).toBe(true);
    expect(ids.some((id) => id.startsWith("galaxy"))).toBe(true);
    expect(ids.filter((id) => id.startsWith("raspberry-pi-5")).map((id) => totals.get(id)).sort((a, b) => a! - b!)).toEqual([8, 16]);
    expect(ids).toContain("jetson-orin-nano-8gb");
    const macs = manifest.devices.filter((d) => d.soc?.startsWith("Apple M")).map((d) => d.memory.total / 2 ** 30);
    expect(macs.sort((a, b) => a - b)).toEqual([8, 16, 16, 16, 24, 24, 24]);
    const gpus = manifest.devices.filter((d) => d.gpu?.memory !== undefined).map((d) => d.gpu!.memory! / 2 ** 30);
    expect(gpus.sort((a, b) => a - b)).toEqual([8, 8, 24, 32]);
  });

  test("formats/devices.yaml validates against formats/devices.schema.json and every entry has a source", () => {
    const data = parse(readFileSync(join(REPO_ROOT, "formats/devices.yaml"), "utf8")) as { devices: { source: unknown }[]; runtimes: { source: unknown }[] };
    expect(validateDevices(data)).toBe(true);
    // Each source is a URL or a named document (one or a list), not an empty placeholder.
    for (const entry of [...data.devices, ...data.runtimes]) {
      const sources = [entry.source].flat();
      expect(sources.length).toBeGreaterThan(0);
      for (const source of sources) expect(source).toMatch(/^(https?:\/\/\S+|\S.{9,})/);
    }
  });

  test("largest context: the model's maximum when it fits, else the largest multiple of 256 that fits", () => {
    const gguf = manifest.artifacts.find((a) => a.format === "gguf")!;
    for (const r of manifest.results.filter((x) => x.artifact === gguf.id && x.supported)) {
      expect(r.largestContext).toEqual({ tokens: gguf.contextLength, limitedBy: "model context" });
    }
    // a device too small for anything, one that fits up to a point, then the boundary is exact
    const evaluate = (context: number) => ({ pools: [{ pool: "ram" as const, used: 1000 + context * 3, budget: 10_000, basis: "" }] });
    const model = { evaluate } as unknown as Parameters<typeof largestContext>[0];
    const result = largestContext(model, 32768);
    expect(result.limitedBy).toBe("memory");
    expect(result.tokens! % 256).toBe(0);
    expect(1000 + result.tokens! * 3).toBeLessThanOrEqual(10_000);
    expect(1000 + (result.tokens! + 256) * 3).toBeGreaterThan(10_000);
    expect(largestContext({ evaluate: () => ({ pools: [{ pool: "ram", used: 2, budget: 1, basis: "" }] }) } as unknown as Parameters<typeof largestContext>[0], 4096)).toEqual({ tokens: null, limitedBy: "memory" });
  });

  test("memory grows with context and q8_0 KV is smaller than f16", () => {
    const gguf = manifest.artifacts.find((a) => a.format === "gguf")!;
    const pi = (kv: string, fa: boolean) => manifest.results.find((r) => r.artifact === gguf.id && r.device === "raspberry-pi-5-8gb" && r.kvCache === kv && r.flashAttention === fa)!;
    const f16 = pi("f16", true).rows!;
    const q8 = pi("q8_0", true).rows!;
    for (let i = 1; i < f16.length; i++) expect(f16[i]!.total).toBeGreaterThan(f16[i - 1]!.total);
    for (let i = 0; i < f16.length; i++) expect(q8[i]!.kvCache).toBeLessThan(f16[i]!.kvCache);
    // without flash attention the compute buffer grows with the context; with it, much less
    const noFa = pi("f16", false).rows!;
    expect(noFa.at(-1)!.compute / noFa[0]!.compute).toBeGreaterThan(5 * (f16.at(-1)!.compute / f16[0]!.compute));
  });
});

describe("ONNX and MLX artifacts", () => {
  test("ONNX weights are the initializers' bytes exactly: the external data ranges (the rest of the file is alignment padding) plus inline tensors", () => {
    const onnx = manifest.artifacts.find((a) => a.format === "onnx")!;
    const folder = join(models, "tiny-llama-onnx-q4");
    const model = onnxProto.onnx.ModelProto.decode(readFileSync(join(folder, "model.onnx")));
    const initializers = model.graph!.initializer ?? [];
    const inline = initializers.reduce((sum, t) => sum + (t.rawData?.length ?? 0), 0);
    const data = readFileSync(join(folder, "model.onnx_data"));
    const covered = new Uint8Array(data.length);
    let external = 0;
    let overlaps = 0;
    for (const t of initializers) {
      const entry = (key: string) => (t.externalData ?? []).find((e) => e.key === key)?.value;
      if (entry("location") === undefined) continue;
      const offset = Number(entry("offset") ?? 0);
      const length = Number(entry("length"));
      expect(offset + length).toBeLessThanOrEqual(data.length);
      for (let i = offset; i < offset + length; i++) {
        overlaps += covered[i]!; // no two tensors share bytes
        covered[i] = 1;
      }
      external += length;
    }
    expect(overlaps).toBe(0);
    // every byte of the data file outside the tensors is zero padding
    expect(data.every((byte, i) => covered[i] === 1 || byte === 0)).toBe(true);
    expect(onnx.weightBytes).toBe(external + inline);
    expect(onnx.files.find((f) => f.path.endsWith("model.onnx_data"))!.bytes).toBe(data.length);
    expect(onnx.quantization).toBe("int4 MatMulNBits, block 32");
    for (const r of manifest.results.filter((x) => x.artifact === onnx.id && x.supported)) {
      expect(r.runtime).toBe("onnxruntime-cpu");
      expect(r.estimated!.some((e) => e.startsWith("compute"))).toBe(true);
      for (const row of r.rows!) expect(row.weights).toBe(onnx.weightBytes);
    }
  });

  test("MLX weights are the safetensors tensors' bytes exactly", () => {
    const mlx = manifest.artifacts.find((a) => a.format === "mlx")!;
    const folder = join(models, "tiny-llama-mlx-q4");
    let expected = 0;
    for (const f of readdirSync(folder).filter((x) => x.endsWith(".safetensors"))) {
      const fd = openSync(join(folder, f), "r");
      const prefix = Buffer.alloc(8);
      readSync(fd, prefix, 0, 8, 0);
      closeSync(fd);
      // data follows the 8-byte length and the JSON header, with no padding between tensors
      expected += statSync(join(folder, f)).size - 8 - Number(prefix.readBigUInt64LE(0));
    }
    const index = JSON.parse(readFileSync(join(folder, "model.safetensors.index.json"), "utf8")) as { metadata: { total_size: number } };
    expect(mlx.weightBytes).toBe(expected);
    expect(mlx.weightBytes).toBe(index.metadata.total_size);
    const onMac = manifest.results.filter((x) => x.artifact === mlx.id && x.device === "macbook-air-m2-8gb");
    expect(onMac.filter((r) => r.supported).map((r) => r.kvCache).sort()).toEqual(["f16", "q8_0"]);
    for (const r of onMac.filter((x) => x.supported)) {
      expect(r.runtime).toBe("mlx");
      expect(r.estimated!.some((e) => e.startsWith("compute"))).toBe(true);
      for (const row of r.rows!) expect(row.weights).toBe(mlx.weightBytes);
    }
    // devices without an MLX runtime say so
    const pi = manifest.results.find((x) => x.artifact === mlx.id && x.device === "raspberry-pi-5-8gb")!;
    expect(pi.supported).toBe(false);
    expect(pi.reason).toMatch(/no runtime/);
  });

  test("the transformers.js layout (onnx/model_<dtype>.onnx) is read too", async () => {
    const out = join(dir, "tjs");
    await convertToOnnx({ source: TINY_LLAMA, output: out, bits: 4, layout: "transformersjs" });
    const m = await fitManifest(out, { devices: ["raspberry-pi-5-8gb"], contexts: [256] });
    expect(m.artifacts).toHaveLength(1);
    expect(m.artifacts[0]!.format).toBe("onnx");
    expect(m.results[0]!.supported).toBe(true);
  }, 120_000);
});

describe("files and chart", () => {
  test("writeFitFiles writes <out>.fit.json and an SVG that renders to a non-blank image showing every line and the bands", async () => {
    const json = defaultFitPath(join(dir, "models", "tiny-llama-q4_k_m.gguf"));
    expect(json).toBe(join(dir, "models", "tiny-llama-q4_k_m.gguf.fit.json"));
    const written = await writeFitFiles(manifest, json);
    expect(written.svg).toBe(join(dir, "models", "tiny-llama-q4_k_m.gguf.fit.svg"));
    expect(JSON.parse(readFileSync(written.json, "utf8"))).toEqual(JSON.parse(JSON.stringify(manifest)));
    // The file is judged by what it shows when rendered (resvg), never against the function that wrote it.
    const svg = readFileSync(written.svg, "utf8");
    expect(svg.startsWith("<svg")).toBe(true);
    const size = /^<svg[^>]*\swidth="(\d+)"[^>]*\sheight="(\d+)"/.exec(svg);
    expect(size, "the root element declares width and height").not.toBeNull();
    // a polyline per artifact and runtime (test/fit-chart.test.ts checks which), each in its own colour, and a legend entry naming each artifact
    const lineColors = [...svg.matchAll(/<polyline\b[^>]*\sstroke="(#[0-9a-f]{6})"/gi)].map((m) => m[1]!.toLowerCase());
    expect(lineColors.length).toBeGreaterThanOrEqual(manifest.artifacts.length);
    expect(new Set(lineColors).size).toBe(lineColors.length);
    const texts = [...svg.matchAll(/<text\b[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]!);
    for (const artifact of manifest.artifacts) expect(texts.some((t) => t.startsWith(`${artifact.id} (`)), artifact.id).toBe(true);

    const rendered = new Resvg(svg, { fitTo: { mode: "original" }, background: "white" }).render();
    expect([rendered.width, rendered.height]).toEqual([Number(size![1]), Number(size![2])]);
    expect(rendered.width).toBeGreaterThanOrEqual(600);
    const png = rendered.asPng();
    writeFileSync(join(REPO_ROOT, ".cache/bench/fit/chart.png"), png);
    expect(png.subarray(1, 4).toString()).toBe("PNG");

    const pixels = rendered.pixels;
    const count = (match: (r: number, g: number, b: number) => boolean) => {
      let n = 0;
      for (let i = 0; i < pixels.length; i += 4) if (match(pixels[i]!, pixels[i + 1]!, pixels[i + 2]!)) n++;
      return n;
    };
    const total = rendered.width * rendered.height;
    expect(count((r, g, b) => r < 240 || g < 240 || b < 240) / total).toBeGreaterThan(0.03);
    for (const hex of lineColors) {
      const [r, g, b] = [1, 3, 5].map((o) => parseInt(hex.slice(o, o + 2), 16));
      expect(count((pr, pg, pb) => Math.abs(pr - r!) < 12 && Math.abs(pg - g!) < 12 && Math.abs(pb - b!) < 12)).toBeGreaterThan(150);
    }
    // budget bands: translucent grey over the plot's #fafafa
    expect(count((r, g, b) => r === g && g === b && r > 180 && r < 225)).toBeGreaterThan(2000);
  });
});

describe("device files", () => {
  test("sizes parse with decimal and binary units", () => {
    expect(parseSize("6 GiB", "x")).toBe(6 * 2 ** 30);
    expect(parseSize("51.2 GB/s", "x")).toBe(51.2e9);
    expect(parseSize(1234, "x")).toBe(1234);
    expect(() => parseSize("six gigs", "x")).toThrow(UserError);
  });

  test("--devices-file adds devices and runtimes and replaces built-in ones with the same id", async () => {
    const file = join(dir, "mine.yaml");
    writeFileSync(
      file,
      `version: 1
runtimes:
  - { id: llama.cpp-cpu-lean, name: lean llama.cpp, engine: llama.cpp, backend: cpu, formats: [gguf], overhead: { host: 8 MiB }, source: measured on my board }
devices:
  - id: my-board
    name: My board
    memory: { total: 2 GiB, available: 60 MiB, availableBasis: measured with free -b after boot }
    bandwidth: 8 GB/s
    cpu: { arch: arm64, repack: arm-dotprod }
    runtimes: [llama.cpp-cpu-lean]
    source: my lab notebook
  - id: iphone-15
    name: iPhone 15 (my measurement)
    memory: { total: 6 GiB, available: 2.5 GiB, availableBasis: os_proc_available_memory on my phone }
    bandwidth: 51.2 GB/s
    runtimes: [llama.cpp-metal]
    source: my measurement
`,
    );
    const catalogue = await loadCatalogue(file);
    expect(catalogue.devices.find((d) => d.id === "iphone-15")!.memory.available).toBe(2.5 * 2 ** 30);
    const m = await fitManifest(join(models, "tiny-llama-q4_k_m.gguf"), { devicesFile: file, devices: ["my-board", "iphone-15"], contexts: [256, 32768] });
    const board = m.results.find((r) => r.device === "my-board" && r.kvCache === "f16" && !r.flashAttention)!;
    expect(board.runtime).toBe("llama.cpp-cpu-lean");
    expect(board.rows![0]!.fits).toBe(true);
    expect(board.rows![1]!.fits).toBe(false);
    expect(board.rows![1]!.headroom).toBeLessThan(0);
    expect(m.devices.find((d) => d.id === "my-board")!.origin).toBe(file);
    expect(validateManifest(JSON.parse(JSON.stringify(m)))).toBe(true);
  });

  test("a device file that breaks the schema is refused with the reason", async () => {
    const file = join(dir, "bad.yaml");
    writeFileSync(file, "version: 1\ndevices:\n  - id: x\n    name: no memory, no source\n    bandwidth: 1 GB/s\n    runtimes: [llama.cpp-cpu]\n");
    await expect(loadCatalogue(file)).rejects.toThrow(/not a valid device file.*(memory|source)/);
    writeFileSync(file, "version: 1\ndevices:\n  - id: x\n    name: x\n    memory: { total: 1 GiB, available: 1 GiB, availableBasis: b }\n    bandwidth: 1 GB/s\n    runtimes: [nope]\n    source: s\n");
    await expect(loadCatalogue(file)).rejects.toThrow(/runtime 'nope'/);
  });
});

describe("edgequant fit (CLI)", () => {
  const run = (args: string[]) => runCli(["fit", ...args]);

  test("prints a compact table per artifact", () => {
    const r = run([join(models, "tiny-llama-q4_k_m.gguf"), "--devices", "iphone-15,raspberry-pi-5-8gb", "--ctx", "256,8k"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/tiny-llama-q4_k_m\.gguf: gguf Q4_K_M/);
    expect(r.stdout).toMatch(/iphone-15 \(4\.00 GiB\)\s+llama\.cpp-metal\s+[\d.]+✓ /);
    expect(r.stdout).toMatch(/runtime\s+256\s+8K\s+max ctx/);
    // the Pi repacks Q4_K: its peak resident set (in parentheses) holds the originals too
    expect(r.stdout).toMatch(/raspberry-pi-5-8gb \(7\.30 GiB\)\s+llama\.cpp-cpu\s+[\d.]+✓  \([\d.]+\)\s+[\d.]+✓\* \([\d.]+\)\s+256\s+\d+/);
  });

  test("--json prints the manifest; -o writes it and the chart", () => {
    const out = join(dir, "cli.fit.json");
    const r = run([models, "--devices", "macbook-air-m2-8gb", "--json", "-o", out, "--kv", "q8_0"]);
    expect(r.code).toBe(0);
    const m = JSON.parse(r.stdout) as FitManifest;
    expect(validateManifest(m)).toBe(true);
    expect(existsSync(out) && existsSync(join(dir, "cli.fit.svg"))).toBe(true);
  });

  test("bad input exits 2 with a message", () => {
    expect(run([models, "--ctx", "lots"])).toMatchObject({ code: 2, stderr: expect.stringMatching(/--ctx takes positive token counts/) });
    expect(run([models, "--devices", "toaster"])).toMatchObject({ code: 2, stderr: expect.stringMatching(/unknown device 'toaster'/) });
    expect(run([join(dir, "nothing-here")])).toMatchObject({ code: 2, stderr: expect.stringMatching(/no such file/) });
    expect(run(["--list-devices"]).stdout).toMatch(/jetson-orin-nano-8gb/);
  });
});

describe("llama.cpp model edges", () => {
  test("an architecture whose graph is not rebuilt gets a rough, labelled compute estimate instead of an error", async () => {
    const artifact = await readGgufArtifact(join(models, "tiny-llama-q4_k_m.gguf"));
    const moeLike = { ...artifact, tensors: artifact.tensors.filter((t) => !t.name.startsWith("blk.0.ffn_down")) };
    const settings = { ...DEFAULT_LLAMA_CPP, backend: "cpu" as const, contextSize: 4096, cpuRepack: "x86-avx2" as const };
    const exact = estimateLlamaCpp(artifact, settings);
    const rough = estimateLlamaCpp(moeLike, settings);
    expect(exact.computeModelled).toBe(true);
    expect(rough.computeModelled).toBe(false);
    expect(rough.compute / exact.compute).toBeGreaterThan(0.5);
    expect(rough.compute / exact.compute).toBeLessThan(2);
  });
});
