// Issue 18, the chart: one line per artifact x runtime, each drawn from that runtime's own rows; each
// device's budget is the budget of its own limiting pool, from its own result rows (the chart used to
// draw the first device's runtime against every device's budget); the model is in the visible title
// and device names are whole. The chart is judged by the file writeFitFiles writes, its data
// attributes and what resvg renders, never by calling the code that drew it.

import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Resvg } from "@resvg/resvg-js";
import { beforeAll, describe, expect, test } from "vitest";
import { fitManifest, type FitManifest, type FitResult } from "../src/fit/manifest.js";
import { writeFitFiles } from "../src/fit/write.js";
import { TINY_LLAMA, tempDir } from "./support/cli.js";
import { cachedGguf } from "./support/gguf-cache.js";

// A CPU board, a phone on Metal, a discrete GPU on CUDA; the Galaxy shares the Pi's runtime with a
// smaller budget; the lab board (from a device file) runs out of memory inside the chart's contexts.
const DEVICES = ["raspberry-pi-5-8gb", "galaxy-s24-ultra", "iphone-15-pro", "desktop-rtx-4090-24gb", "lab-board"];
const LAB_BOARD = "Lab board (300 MiB free) & a name long enough to need more than one row of its label";
const DEVICES_FILE = `version: 1
runtimes:
  - { id: llama.cpp-cpu-lean, name: lean llama.cpp, engine: llama.cpp, backend: cpu, formats: [gguf], overhead: { host: 8 MiB }, source: measured on the lab board }
devices:
  - id: lab-board
    name: "${LAB_BOARD}"
    memory: { total: 1 GiB, available: 300 MiB, availableBasis: measured with free -b after boot }
    bandwidth: 8 GB/s
    cpu: { arch: arm64, repack: arm-dotprod }
    runtimes: [llama.cpp-cpu-lean]
    source: the lab notebook
`;

type Attrs = Record<string, string>;

function unescapeXml(text: string): string {
  return text.replace(/&(lt|gt|amp|quot|apos);/g, (_, e: string) => ({ lt: "<", gt: ">", amp: "&", quot: '"', apos: "'" })[e]!);
}

function attrs(tag: string): Attrs {
  return Object.fromEntries([...tag.matchAll(/([\w-]+)="([^"]*)"/g)].map((m) => [m[1]!, unescapeXml(m[2]!)]));
}

function texts(fragment: string): string[] {
  return [...fragment.matchAll(/<text\b[^>]*>([^<]*)<\/text>/g)].map((m) => unescapeXml(m[1]!));
}

interface Chart {
  readonly svg: string;
  readonly width: number;
  readonly height: number;
  readonly lines: Attrs[];
  /** A budget's data attributes, plus its label's text, its dashed line's colour and height. */
  readonly budgets: (Attrs & { label: string; stroke: string; y: string })[];
  /** Each label's text elements and the devices it names. */
  readonly labels: { readonly devices: string[]; readonly body: string }[];
}

function readChart(svg: string): Chart {
  const root = attrs(/^<svg\b[^>]*>/.exec(svg)![0]);
  const lines = [...svg.matchAll(/<polyline\b[^>]*\/>/g)].map((m) => attrs(m[0]));
  const labels = [...svg.matchAll(/<g\b([^>]*\sdata-label-for="[^"]*"[^>]*)>([\s\S]*?)<\/g>/g)].map((m) => ({
    devices: attrs(m[1]!)["data-label-for"]!.split(" "),
    body: [...m[2]!.matchAll(/<text\b[^>]*>[^<]*<\/text>/g)].map((t) => t[0]).join(""),
  }));
  const budgets = [...svg.matchAll(/<g\b([^>]*\sdata-budget="[^"]*"[^>]*)>([\s\S]*?)<\/g>/g)].map((m) => {
    const a = attrs(m[1]!);
    const line = attrs(/<line\b[^>]*stroke-dasharray[^>]*\/>/.exec(m[2]!)![0]);
    const named = labels.filter((l) => l.devices.includes(a["data-device"]!));
    expect(named, `one label names ${a["data-device"]}`).toHaveLength(1);
    return { ...a, label: texts(named[0]!.body).join(" "), stroke: line.stroke!, y: line.y1! };
  });
  return { svg, width: Number(root.width), height: Number(root.height), lines, budgets, labels };
}

/** The result a chart line stands for on a device: the f16, flash-attention-off one, as the chart says. */
function resultOf(manifest: FitManifest, artifact: string, device: string): FitResult | undefined {
  return manifest.results.find((r) => r.artifact === artifact && r.device === device && r.kvCache === "f16" && !r.flashAttention && r.supported);
}

/** The pool that limits a result: the first one to run out, else the tightest at the longest context. */
function limitingPool(result: FitResult): string {
  const rows = result.rows!;
  return (rows.find((r) => !r.fits) ?? rows.at(-1)!).bindingPool;
}

/** Writes the chart with writeFitFiles and reads it back. */
async function chartOf(manifest: FitManifest, name: string): Promise<Chart> {
  const written = await writeFitFiles(manifest, join(dir, `${name}.fit.json`));
  return readChart(readFileSync(written.svg, "utf8"));
}

let dir: string;
let manifest: FitManifest; // the five devices above
let catalogue: FitManifest; // every built-in device: Apple GPU working sets, CUDA on a unified board, the longest names
let chart: Chart;
let full: Chart;

beforeAll(async () => {
  dir = tempDir("edgequant-fit-chart-");
  const gguf = join(dir, "tiny-llama-q4_k_m.gguf");
  copyFileSync(await cachedGguf(TINY_LLAMA, "tiny-llama", "q4_k_m"), gguf);
  const devicesFile = join(dir, "lab.yaml");
  writeFileSync(devicesFile, DEVICES_FILE);
  manifest = await fitManifest(gguf, { devices: DEVICES, devicesFile });
  catalogue = await fitManifest(gguf, {});
  chart = await chartOf(manifest, "five");
  full = await chartOf(catalogue, "catalogue");
}, 600_000);

describe("one line per artifact x runtime, from that runtime's own rows", () => {
  test("exactly one line per artifact and runtime the devices use", () => {
    const expected = [...new Set(manifest.artifacts.flatMap((a) => DEVICES.map((d) => `${a.id} ${resultOf(manifest, a.id, d)!.runtime}`)))].sort();
    expect(expected).toHaveLength(4);
    expect(chart.lines.map((l) => `${l["data-artifact"]} ${l["data-runtime"]}`).sort()).toEqual(expected);
    expect(chart.lines.map((l) => l["data-runtime"]).sort()).toEqual(["llama.cpp-cpu", "llama.cpp-cpu-lean", "llama.cpp-cuda", "llama.cpp-metal"]);
  });

  test("each line plots the use of its runtime's limiting pool on every device it names, and names exactly the devices running it", () => {
    for (const line of chart.lines) {
      const devices = line["data-devices"]!.split(" ");
      const running = DEVICES.filter((d) => resultOf(manifest, line["data-artifact"]!, d)!.runtime === line["data-runtime"]);
      expect(devices.sort()).toEqual(running.sort());
      for (const device of devices) {
        const result = resultOf(manifest, line["data-artifact"]!, device)!;
        expect(line["data-pool"]).toBe(limitingPool(result));
        expect(line["data-used"]!.split(" ").map(Number)).toEqual(result.rows!.map((r) => r.pools.find((p) => p.pool === line["data-pool"])!.used));
        expect(line.points!.split(" ")).toHaveLength(result.rows!.length);
      }
    }
    // the Pi's line is its CPU runtime's, not the first device's Metal one (which overstated it)
    const pi = chart.lines.find((l) => l["data-devices"]!.split(" ").includes("raspberry-pi-5-8gb"))!;
    const iphone = chart.lines.find((l) => l["data-devices"]!.split(" ").includes("iphone-15-pro"))!;
    expect(pi["data-runtime"]).toBe("llama.cpp-cpu");
    expect(pi["data-used"]!.split(" ").map(Number)).toEqual(resultOf(manifest, pi["data-artifact"]!, "raspberry-pi-5-8gb")!.rows!.map((r) => r.total));
    expect(pi["data-used"]).not.toBe(iphone["data-used"]);
  });

  test("across the whole catalogue, one line per artifact x runtime x limiting pool", () => {
    const artifact = catalogue.artifacts[0]!.id;
    const keys = new Set(catalogue.devices.map((d) => resultOf(catalogue, artifact, d.id)).filter((r) => r !== undefined).map((r) => `${r.runtime} ${limitingPool(r)}`));
    expect(full.lines.map((l) => `${l["data-runtime"]} ${l["data-pool"]}`).sort()).toEqual([...keys].sort());
    // CUDA is judged by VRAM on the discrete GPUs and by RAM on the Jetson's unified memory
    expect(full.lines.filter((l) => l["data-runtime"] === "llama.cpp-cuda").map((l) => l["data-pool"]).sort()).toEqual(["ram", "vram"]);
  });

  test("a point lies above its device's budget line exactly when that row does not fit there", () => {
    let misses = 0;
    for (const budget of chart.budgets) {
      const line = chart.lines.find((l) => l["data-devices"]!.split(" ").includes(budget["data-device"]!))!;
      const result = resultOf(manifest, line["data-artifact"]!, budget["data-device"]!)!;
      const ys = line.points!.split(" ").map((p) => Number(p.split(",")[1]));
      result.rows!.forEach((row, i) => {
        const fits = row.pools.find((p) => p.pool === budget["data-pool"])!;
        expect(ys[i]! < Number(budget.y) - 0.5, `${budget["data-device"]} at ${row.context}`).toBe(fits.used > fits.budget);
        if (fits.used > fits.budget) misses++;
      });
    }
    expect(misses, "the lab board runs out inside the chart's contexts").toBeGreaterThan(0);
  });
});

describe("each device's budget is its own", () => {
  test("one budget per device: its limiting pool's budget from its own result rows", () => {
    expect(chart.budgets.map((b) => b["data-device"]).sort()).toEqual([...DEVICES].sort());
    const artifact = manifest.artifacts[0]!.id;
    for (const budget of chart.budgets) {
      const result = resultOf(manifest, artifact, budget["data-device"]!)!;
      expect(budget["data-pool"]).toBe(limitingPool(result));
      expect(budget["data-runtimes"]).toBe(result.runtime);
      for (const row of result.rows!) expect(Number(budget["data-budget"])).toBe(row.pools.find((p) => p.pool === budget["data-pool"])!.budget);
    }
    const device = (id: string) => manifest.devices.find((d) => d.id === id)!;
    const budgetOf = (id: string) => chart.budgets.find((b) => b["data-device"] === id)!;
    expect(budgetOf("desktop-rtx-4090-24gb")["data-pool"]).toBe("vram");
    expect(Number(budgetOf("desktop-rtx-4090-24gb")["data-budget"])).toBe(device("desktop-rtx-4090-24gb").gpu!.available);
    for (const id of ["raspberry-pi-5-8gb", "galaxy-s24-ultra", "iphone-15-pro", "lab-board"]) {
      expect(budgetOf(id)["data-pool"]).toBe("ram");
      expect(Number(budgetOf(id)["data-budget"])).toBe(device(id).memory.available);
    }
  });

  test("across the catalogue: Apple GPUs by their working set, discrete GPUs by VRAM, the rest by RAM", () => {
    const artifact = catalogue.artifacts[0]!.id;
    for (const d of catalogue.devices) {
      const result = resultOf(catalogue, artifact, d.id)!;
      const budget = full.budgets.find((b) => b["data-device"] === d.id)!;
      expect(budget, d.id).toBeDefined();
      expect(budget["data-pool"]).toBe(limitingPool(result));
      expect(Number(budget["data-budget"])).toBe(result.rows![0]!.pools.find((p) => p.pool === budget["data-pool"])!.budget);
    }
    expect(full.budgets.filter((b) => b["data-pool"] === "gpu").map((b) => b["data-device"]).sort()).toEqual(catalogue.devices.filter((d) => d.memory.gpuWorkingSet !== undefined).map((d) => d.id).sort());
    const discrete = catalogue.devices.filter((d) => d.gpu?.available !== undefined && !d.gpu.unified).map((d) => d.id);
    expect(discrete).toContain("desktop-rtx-4090-24gb");
    expect(full.budgets.filter((b) => b["data-pool"] === "vram").map((b) => b["data-device"]).sort()).toEqual(discrete.sort());
  });

  test("a budget line is drawn in the colour of the line measured against it, and its label shows the size", () => {
    for (const budget of chart.budgets) {
      const line = chart.lines.find((l) => l["data-line"] === budget["data-lines"])!;
      expect(line["data-devices"]!.split(" ")).toContain(budget["data-device"]);
      expect(budget.stroke).toBe(line.stroke);
    }
    expect(new Set(chart.lines.map((l) => l.stroke)).size).toBe(chart.lines.length);
    expect(chart.budgets.find((b) => b["data-device"] === "raspberry-pi-5-8gb")!.label).toMatch(/^7\.30 GiB RAM /);
    expect(chart.budgets.find((b) => b["data-device"] === "desktop-rtx-4090-24gb")!.label).toMatch(/^23\.3 GiB VRAM /);
  });
});

describe("the title names the model; device names are whole", () => {
  test("the visible title has the model's name and quantization", () => {
    for (const c of [chart, full]) {
      const title = texts(c.svg.split("\n").filter((l) => l.includes('data-role="title"')).join("\n")).join(" ");
      expect(title).toContain(`${manifest.artifacts[0]!.name} (gguf Q4_K_M)`);
      expect(manifest.artifacts[0]!.name).toBe("tiny-llama");
      expect(/<title>([^<]*)<\/title>/.exec(c.svg)![1]).toContain("tiny-llama");
    }
  });

  test("every device's full name is in its budget label and in the legend, nothing cut", () => {
    for (const [c, m] of [[chart, manifest], [full, catalogue]] as const) {
      const legend = texts(c.svg).join(" ");
      for (const d of m.devices) {
        expect(c.budgets.find((b) => b["data-device"] === d.id)!.label).toContain(d.name);
        expect(legend).toContain(d.name);
      }
      expect(legend).not.toContain("…");
    }
    expect(LAB_BOARD.length).toBeGreaterThan(60);
    expect(catalogue.devices.map((d) => d.name)).toContain("Laptop with GeForce RTX 4060 Laptop GPU (8 GB) and 16 GB RAM");
  });

  test("as rendered, no text leaves the canvas and no two budget labels overlap", () => {
    const render = (body: string, c: Chart) =>
      new Resvg(`<svg xmlns="http://www.w3.org/2000/svg" width="${c.width}" height="${c.height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">${body}</svg>`).innerBBox();
    for (const c of [chart, full]) {
      const all = render([...c.svg.matchAll(/<text\b[^>]*>[^<]*<\/text>/g)].map((m) => m[0]).join(""), c)!;
      expect(all.x).toBeGreaterThanOrEqual(0);
      expect(all.y).toBeGreaterThanOrEqual(0);
      expect(all.x + all.width).toBeLessThanOrEqual(c.width);
      expect(all.y + all.height).toBeLessThanOrEqual(c.height);
      const labels = c.labels.map((l) => render(l.body, c)!).sort((a, b) => a.y - b.y);
      expect(labels.length).toBeGreaterThan(1);
      for (let i = 1; i < labels.length; i++) expect(labels[i]!.y).toBeGreaterThanOrEqual(labels[i - 1]!.y + labels[i - 1]!.height);
    }
  });
});

describe("the chart renders", () => {
  test("resvg renders it to a PNG of the declared size, with every line's colour visible", () => {
    for (const c of [chart, full]) {
      expect(c.svg.startsWith("<svg")).toBe(true);
      expect(c.svg).not.toMatch(/<script|href=|url\(|<image/);
      const rendered = new Resvg(c.svg, { fitTo: { mode: "original" }, background: "white" }).render();
      expect([rendered.width, rendered.height]).toEqual([c.width, c.height]);
      expect(c.width).toBeGreaterThanOrEqual(600);
      const png = rendered.asPng();
      expect(png.length).toBeGreaterThan(10_000);
      expect(png.subarray(1, 4).toString()).toBe("PNG");
      const pixels = rendered.pixels;
      for (const hex of new Set(c.lines.map((l) => l.stroke!))) {
        const [r, g, b] = [1, 3, 5].map((o) => parseInt(hex.slice(o, o + 2), 16));
        let n = 0;
        for (let i = 0; i < pixels.length; i += 4) if (Math.abs(pixels[i]! - r!) < 12 && Math.abs(pixels[i + 1]! - g!) < 12 && Math.abs(pixels[i + 2]! - b!) < 12) n++;
        expect(n, hex).toBeGreaterThan(150);
      }
    }
  });

  test("the same manifest gives the same file", async () => {
    expect((await chartOf(manifest, "again")).svg).toBe(chart.svg);
  });
});
