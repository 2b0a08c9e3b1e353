/**
 * The fit chart: memory against context length (both axes logarithmic). Each line is one artifact on
 * one runtime: what that runtime uses in the memory pool that limits it, taken from the rows of the
 * devices that run it. Each device's budget for that pool is a dashed line in the colour of the
 * line(s) measured against it, labelled with the device's full name. A plain SVG document with no
 * scripts or external references, so it renders the same in browsers, GitHub and resvg.
 *
 * A runtime gets one line per pool that limits it: llama.cpp-cuda is judged by VRAM on a discrete
 * GPU but by RAM on a unified board, and one line cannot be right against both budgets. Devices
 * whose rows differ for the same runtime and pool (another CPU repack profile) get their own line.
 */
import type { Device } from "./devices.js";
import type { FitArtifact, FitManifest, FitResult, FitRow } from "./manifest.js";

export const CHART_WIDTH = 1080;
const MARGIN = { left: 78, right: 330, bottom: 56 };
const PLOT_HEIGHT = 380;
const MAX_PLOT_HEIGHT = 720;
const TITLE_SIZE = 17;
const LABEL_SIZE = 10;
const LABEL_ROW = 12;
const LABEL_GAP = 5;
const LEGEND_SIZE = 11;
const LEGEND_ROW = 15;

/** Line colours, distinguishable and printable (Tableau 10); past ten lines they repeat dashed. */
export const LINE_COLORS = ["#4e79a7", "#e15759", "#59a14f", "#f28e2b", "#b07aa1", "#76b7b2", "#edc948", "#ff9da7", "#9c755f", "#bab0ac"] as const;
const LINE_DASHES = ["", "9 4", "2 3"] as const;

const POOL_LABELS: Readonly<Record<string, string>> = { ram: "RAM", gpu: "GPU working set", vram: "VRAM" };

const MiB = 2 ** 20;
const GiB = 2 ** 30;

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&apos;" })[c]!);
}

export function formatBytes(bytes: number): string {
  const abs = Math.abs(bytes);
  if (abs >= GiB) return `${(bytes / GiB).toFixed(abs >= 10 * GiB ? 1 : 2)} GiB`;
  if (abs >= MiB) return `${(bytes / MiB).toFixed(abs >= 100 * MiB ? 0 : 1)} MiB`;
  return `${(bytes / 1024).toFixed(0)} KiB`;
}

function formatContext(tokens: number): string {
  if (tokens >= 1024 && tokens % 1024 === 0) return `${tokens / 1024}K`;
  return String(tokens);
}

function poolLabel(pool: string): string {
  return POOL_LABELS[pool] ?? pool;
}

/** The budget a device's first runtime is limited by (the device list's budget column). */
export function deviceBudget(device: Device): { bytes: number; label: string } {
  if (device.gpu?.available !== undefined && !device.gpu.unified && !device.memory.unified) {
    return { bytes: device.gpu.available, label: "VRAM" };
  }
  const working = device.memory.gpuWorkingSet;
  if (working !== undefined && working < device.memory.available) return { bytes: working, label: "GPU working set" };
  return { bytes: device.memory.available, label: "app budget" };
}

/**
 * A width no wider than DejaVu Sans draws `text` at `size` px (the chart's first font; the
 * fallbacks are narrower), so text wrapped to it stays inside its column.
 */
function textWidth(text: string, size: number, bold = false): number {
  let em = 0;
  for (const c of text) {
    if (" .,:;'!|()[]ijlft".includes(c)) em += 0.4;
    else if (/[A-Z0-9#%&@mwMW_]/.test(c)) em += 0.78;
    else if (c.codePointAt(0)! > 0x2000) em += 1;
    else em += 0.64;
  }
  return em * size * (bold ? 1.12 : 1);
}

/** Words of `text` in rows no wider than `width`; a word is never broken, so joining rows with spaces gives `text` back. */
function wrap(text: string, width: number, size: number, bold = false): string[] {
  const rows: string[] = [];
  for (const word of text.split(" ")) {
    const last = rows.at(-1);
    if (last !== undefined && textWidth(`${last} ${word}`, size, bold) <= width) rows[rows.length - 1] = `${last} ${word}`;
    else rows.push(word);
  }
  return rows;
}

interface ChartLine {
  readonly id: string;
  readonly artifact: FitArtifact;
  readonly runtime: string;
  readonly pool: string;
  readonly result: FitResult;
  readonly points: readonly { readonly context: number; readonly used: number; readonly beyond: boolean }[];
  readonly devices: Device[];
  readonly color: string;
  readonly dash: string;
}

interface ChartBudget {
  readonly device: Device;
  readonly pool: string;
  readonly bytes: number;
  readonly lines: ChartLine[];
}

/** The KV configuration drawn for an artifact: f16 with flash attention off if any device runs it, else the first one that runs. */
function chartConfig(manifest: FitManifest, artifactId: string): Pick<FitResult, "kvCache" | "flashAttention"> | undefined {
  const supported = manifest.results.filter((r) => r.artifact === artifactId && r.supported && (r.rows?.length ?? 0) > 0);
  return supported.find((r) => r.kvCache === "f16" && !r.flashAttention) ?? supported[0];
}

/** The pool a result is judged by: the one that first runs out, or the tightest at the longest context. */
function limitingPool(rows: readonly FitRow[]): string {
  return (rows.find((r) => !r.fits) ?? rows.at(-1)!).bindingPool;
}

/** Lines (artifact x runtime x limiting pool x the rows themselves) and the budgets (device x pool) drawn against them. */
function chartSeries(manifest: FitManifest): { lines: ChartLine[]; budgets: ChartBudget[] } {
  const lines: ChartLine[] = [];
  const byKey = new Map<string, ChartLine>();
  const budgets = new Map<string, ChartBudget>();
  for (const artifact of manifest.artifacts) {
    const config = chartConfig(manifest, artifact.id);
    if (!config) continue;
    for (const device of manifest.devices) {
      const result = manifest.results.find(
        (r) => r.artifact === artifact.id && r.device === device.id && r.kvCache === config.kvCache && r.flashAttention === config.flashAttention && r.supported,
      );
      const rows = result?.rows ?? [];
      if (!result || result.runtime === null || rows.length === 0) continue;
      const pool = limitingPool(rows);
      const points = rows.map((r) => ({ context: r.context, used: r.pools.find((p) => p.pool === pool)!.used, beyond: r.exceedsModelContext }));
      const key = JSON.stringify([artifact.id, result.runtime, pool, points]);
      let line = byKey.get(key);
      if (!line) {
        const i = lines.length;
        line = { id: `line-${i + 1}`, artifact, runtime: result.runtime, pool, result, points, devices: [], color: LINE_COLORS[i % LINE_COLORS.length]!, dash: LINE_DASHES[Math.floor(i / LINE_COLORS.length) % LINE_DASHES.length]! };
        byKey.set(key, line);
        lines.push(line);
      }
      line.devices.push(device);
      const bytes = rows[0]!.pools.find((p) => p.pool === pool)!.budget;
      const budgetKey = JSON.stringify([device.id, pool, bytes]);
      const budget = budgets.get(budgetKey) ?? { device, pool, bytes, lines: [] };
      budgets.set(budgetKey, budget);
      if (!budget.lines.includes(line)) budget.lines.push(line);
    }
  }
  return { lines, budgets: [...budgets.values()] };
}

/**
 * Label tops as close to `wanted` (sorted top to bottom) as their heights allow, none above `minTop`:
 * overlapping labels form stacks placed where their wanted positions say on average, merged until
 * none overlap.
 */
function spreadLabels(wanted: readonly number[], heights: readonly number[], minTop: number): number[] {
  type Stack = { first: number; count: number; start: number };
  const height = (s: Stack) => heights.slice(s.first, s.first + s.count).reduce((a, b) => a + b + LABEL_GAP, 0);
  const place = (s: Stack) => {
    let offset = 0;
    let sum = 0;
    for (let k = s.first; k < s.first + s.count; k++) {
      sum += wanted[k]! - offset;
      offset += heights[k]! + LABEL_GAP;
    }
    s.start = sum / s.count;
  };
  let stacks: Stack[] = wanted.map((w, i) => ({ first: i, count: 1, start: w }));
  for (let merged = true; merged; ) {
    merged = false;
    const next: Stack[] = [];
    for (const s of stacks) {
      const prev = next.at(-1);
      if (prev && Math.max(prev.start, minTop) + height(prev) > s.start) {
        prev.count += s.count;
        place(prev);
        merged = true;
      } else next.push({ ...s });
    }
    stacks = next;
  }
  const tops: number[] = [];
  let floor = minTop;
  for (const s of stacks) {
    let top = Math.max(s.start, floor);
    for (let k = s.first; k < s.first + s.count; k++) {
      tops.push(top);
      top += heights[k]! + LABEL_GAP;
    }
    floor = top;
  }
  return tops;
}

/** Header rows: the models and their quantizations, which is what the chart is about. */
function chartTitle(manifest: FitManifest): string {
  const models = [...new Set(manifest.artifacts.map((a) => `${a.name} (${a.format} ${a.quantization})`))];
  return `${models.length > 0 ? models.join("; ") : "no model"}: memory vs context length`;
}

export function fitChartSvg(manifest: FitManifest): string {
  const { lines, budgets } = chartSeries(manifest);
  const title = chartTitle(manifest);
  const titleRows = wrap(title, CHART_WIDTH - MARGIN.left - 20, TITLE_SIZE, true);
  const subtitleY = 26 + 21 * (titleRows.length - 1) + 20;
  const top = subtitleY + 18;
  const plotW = CHART_WIDTH - MARGIN.left - MARGIN.right;
  const labels = budgetLabels(budgets, labelTextX(budgets));
  // a tall stack of labels gets a taller plot, so that labels stay near their budgets
  const stack = labels.reduce((sum, l) => sum + l.height + LABEL_GAP, 0);
  const plotH = Math.round(Math.max(PLOT_HEIGHT, Math.min(MAX_PLOT_HEIGHT, 0.9 * stack)));
  const plotBottom = top + plotH;
  const contexts = manifest.contexts.length > 0 ? manifest.contexts : [512, 4096];
  const xMin = Math.min(...contexts);
  const xMax = Math.max(...contexts, xMin * 2);
  const values = [...lines.flatMap((l) => l.points.map((p) => p.used)), ...budgets.map((b) => b.bytes)].filter((v) => v > 0);
  const yMin = 2 ** Math.floor(Math.log2(Math.max(Math.min(...values, GiB) * 0.8, MiB)));
  const yMax = 2 ** Math.ceil(Math.log2(Math.max(...values, yMin * 4) * 1.15));
  const x = (c: number) => MARGIN.left + ((Math.log2(c) - Math.log2(xMin)) / (Math.log2(xMax) - Math.log2(xMin))) * plotW;
  const y = (b: number) => top + plotH - ((Math.log2(b) - Math.log2(yMin)) / (Math.log2(yMax) - Math.log2(yMin))) * plotH;
  const clampY = (b: number) => Math.max(top, Math.min(plotBottom, y(Math.max(b, yMin))));
  const out: string[] = [];
  const svgOpen = (height: number) =>
    `<svg xmlns="http://www.w3.org/2000/svg" width="${CHART_WIDTH}" height="${height}" viewBox="0 0 ${CHART_WIDTH} ${height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">`;
  titleRows.forEach((row, i) => out.push(`<text data-role="title" x="${MARGIN.left}" y="${26 + 21 * i}" font-size="${TITLE_SIZE}" font-weight="bold" fill="#222">${escapeXml(row)}</text>`));
  out.push(
    `<text x="${MARGIN.left}" y="${subtitleY}" font-size="11" fill="#555">What each runtime uses in the memory pool that limits it (log scale) against context (log scale); dashed: each device's budget for that pool.</text>`,
    `<rect x="${MARGIN.left}" y="${top}" width="${plotW}" height="${plotH}" fill="#fafafa" stroke="#888" stroke-width="1"/>`,
  );
  for (let v = yMin; v <= yMax; v *= 2) {
    const yy = y(v).toFixed(1);
    const major = Math.round(Math.log2(v)) % 2 === 0;
    out.push(`<line x1="${MARGIN.left}" y1="${yy}" x2="${MARGIN.left + plotW}" y2="${yy}" stroke="${major ? "#ddd" : "#eee"}" stroke-width="1"/>`);
    if (major) out.push(`<text x="${MARGIN.left - 6}" y="${(y(v) + 4).toFixed(1)}" font-size="11" text-anchor="end" fill="#333">${escapeXml(formatBytes(v))}</text>`);
  }
  for (const c of contexts) {
    const xx = x(c).toFixed(1);
    out.push(`<line x1="${xx}" y1="${top}" x2="${xx}" y2="${plotBottom}" stroke="#e4e4e4" stroke-width="1"/>`);
    out.push(`<text x="${xx}" y="${plotBottom + 18}" font-size="11" text-anchor="middle" fill="#333">${formatContext(c)}</text>`);
  }
  out.push(`<text x="${MARGIN.left + plotW / 2}" y="${plotBottom + 42}" font-size="12" text-anchor="middle" fill="#222">context length (tokens)</text>`);
  out.push(`<text transform="translate(18 ${top + plotH / 2}) rotate(-90)" font-size="12" text-anchor="middle" fill="#222">memory</text>`);

  const labelsBottom = drawBudgets(out, budgets, labels, { y, top, plotW, plotBottom });
  for (const line of lines) {
    const points = line.points.map((p) => `${x(p.context).toFixed(1)},${clampY(p.used).toFixed(1)}`).join(" ");
    const devices = line.devices.map((d) => d.id).join(" ");
    const used = line.points.map((p) => p.used).join(" ");
    const dash = line.dash ? ` stroke-dasharray="${line.dash}"` : "";
    out.push(
      `<polyline data-line="${line.id}" data-artifact="${escapeXml(line.artifact.id)}" data-runtime="${escapeXml(line.runtime)}" data-pool="${line.pool}" data-kv="${line.result.kvCache}" data-flash-attention="${line.result.flashAttention}" data-devices="${escapeXml(devices)}" data-used="${used}" points="${points}" fill="none" stroke="${line.color}" stroke-width="2.5" stroke-linejoin="round"${dash}/>`,
    );
    for (const p of line.points) {
      out.push(`<circle cx="${x(p.context).toFixed(1)}" cy="${clampY(p.used).toFixed(1)}" r="4" fill="${p.beyond ? "#ffffff" : line.color}" stroke="${line.color}" stroke-width="2"/>`);
    }
  }
  const height = drawLegend(out, lines, Math.max(plotBottom + MARGIN.bottom, labelsBottom + 8) + 24);
  const head = [svgOpen(height), `<title>${escapeXml(title)}</title>`, `<rect x="0" y="0" width="${CHART_WIDTH}" height="${height}" fill="#ffffff"/>`];
  return `${[...head, ...out, "</svg>"].join("\n")}\n`;
}

interface BudgetLabel {
  readonly budgets: readonly ChartBudget[];
  readonly rows: readonly string[];
  readonly height: number;
}

/**
 * The labels at the right, top to bottom: the size, the pool and the full names (wrapped, never cut)
 * of the devices with that budget for the same line(s); one label for all of them, so a catalogue's
 * many identical budgets do not repeat.
 */
function budgetLabels(budgets: readonly ChartBudget[], textX: number): BudgetLabel[] {
  const order = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  const sorted = [...budgets].sort((p, q) => q.bytes - p.bytes || order(p.pool, q.pool) || order(p.device.id, q.device.id));
  const groups: ChartBudget[][] = [];
  const lineIds = (b: ChartBudget) => b.lines.map((l) => l.id).join(" ");
  for (const b of sorted) {
    const last = groups.at(-1)?.[0];
    if (last && last.bytes === b.bytes && last.pool === b.pool && lineIds(last) === lineIds(b)) groups.at(-1)!.push(b);
    else groups.push([b]);
  }
  return groups.map((group) => {
    const first = group[0]!;
    const rows = wrap(`${formatBytes(first.bytes)} ${poolLabel(first.pool)}  ${group.map((b) => b.device.name).join("; ")}`, CHART_WIDTH - textX - 8, LABEL_SIZE);
    return { budgets: group, rows, height: rows.length * LABEL_ROW };
  });
}

/** The x where budget labels' text starts: after a swatch per line measured against the budget. */
function labelTextX(budgets: readonly ChartBudget[]): number {
  return CHART_WIDTH - MARGIN.right + 12 + 14 * Math.max(1, ...budgets.map((b) => b.lines.length));
}

/**
 * Each device's budget for the pool its runtime is limited by: a translucent band and a dashed line
 * in its line's colour across the plot, and its label at the right with a swatch per line measured
 * against it. Returns the labels' bottom.
 */
function drawBudgets(
  out: string[],
  budgets: readonly ChartBudget[],
  labels: readonly BudgetLabel[],
  plot: { readonly y: (bytes: number) => number; readonly top: number; readonly plotW: number; readonly plotBottom: number },
): number {
  const { y, top, plotW, plotBottom } = plot;
  const right = MARGIN.left + plotW;
  const textX = labelTextX(budgets);
  const bands: number[] = [];
  for (const label of labels) {
    const bytes = label.budgets[0]!.bytes;
    if (bands.some((b) => Math.abs(b - bytes) / b < 0.01)) continue;
    bands.push(bytes);
    const bottom = Math.min(plotBottom, y(bytes * 0.94));
    out.push(`<rect x="${MARGIN.left}" y="${y(bytes).toFixed(1)}" width="${plotW}" height="${Math.max(bottom - y(bytes), 2).toFixed(1)}" fill="#8c8c8c" fill-opacity="0.28"/>`);
  }
  for (const b of labels.flatMap((l) => l.budgets)) {
    const yy = y(b.bytes).toFixed(1);
    const runtimes = b.lines.map((l) => l.runtime).join(" ");
    out.push(`<g data-device="${escapeXml(b.device.id)}" data-pool="${b.pool}" data-budget="${b.bytes}" data-runtimes="${escapeXml(runtimes)}" data-lines="${b.lines.map((l) => l.id).join(" ")}">`);
    out.push(`<line x1="${MARGIN.left}" y1="${yy}" x2="${right}" y2="${yy}" stroke="${b.lines[0]!.color}" stroke-width="1.3" stroke-dasharray="5 4"/>`, "</g>");
  }
  const tops = spreadLabels(labels.map((l) => y(l.budgets[0]!.bytes) - LABEL_ROW / 2), labels.map((l) => l.height), top - 6);
  labels.forEach((label, i) => {
    const yy = y(label.budgets[0]!.bytes);
    const anchor = tops[i]! + LABEL_ROW / 2;
    out.push(`<g data-label-for="${escapeXml(label.budgets.map((b) => b.device.id).join(" "))}">`);
    if (Math.abs(anchor - yy) > 2) out.push(`<line x1="${right}" y1="${yy.toFixed(1)}" x2="${right + 8}" y2="${anchor.toFixed(1)}" stroke="#999" stroke-width="0.8"/>`);
    label.budgets[0]!.lines.forEach((l, k) => {
      const sx = right + 12 + 14 * k;
      out.push(`<line x1="${sx}" y1="${anchor.toFixed(1)}" x2="${sx + 11}" y2="${anchor.toFixed(1)}" stroke="${l.color}" stroke-width="3"/>`);
    });
    label.rows.forEach((row, r) => {
      out.push(`<text x="${textX}" y="${(tops[i]! + LABEL_ROW * (r + 1) - 3).toFixed(1)}" font-size="${LABEL_SIZE}" fill="#333">${escapeXml(row)}</text>`);
    });
    out.push("</g>");
  });
  return tops.length === 0 ? top : tops.at(-1)! + labels.at(-1)!.height;
}

/** A legend entry per line: the artifact, its runtime, pool and KV setting, and the devices it stands for. Returns the chart's height. */
function drawLegend(out: string[], lines: readonly ChartLine[], firstRow: number): number {
  let ly = firstRow;
  const textX = MARGIN.left + 30;
  const width = CHART_WIDTH - textX - 12;
  for (const line of lines) {
    const r = line.result;
    const setting = `${line.runtime}, ${poolLabel(line.pool)} use, KV ${r.kvCache}${r.flashAttention ? ", flash attention" : ""}`;
    const text = `${line.artifact.id} (${line.artifact.format} ${line.artifact.quantization}) — ${setting} — on ${line.devices.map((d) => d.name).join(", ")}`;
    const dash = line.dash ? ` stroke-dasharray="${line.dash}"` : "";
    out.push(`<line x1="${MARGIN.left}" y1="${ly - 4}" x2="${MARGIN.left + 24}" y2="${ly - 4}" stroke="${line.color}" stroke-width="3"${dash}/>`);
    for (const row of wrap(text, width, LEGEND_SIZE)) {
      out.push(`<text x="${textX}" y="${ly}" font-size="${LEGEND_SIZE}" fill="#222">${escapeXml(row)}</text>`);
      ly += LEGEND_ROW;
    }
  }
  if (lines.length === 0) {
    out.push(`<text x="${MARGIN.left}" y="${ly}" font-size="${LEGEND_SIZE}" fill="#222">no device in this manifest runs these artifacts</text>`);
    ly += LEGEND_ROW;
  }
  const note = "hollow points: beyond the model's trained context. Each line is measured against the dashed budgets drawn in its colour, one per device it names.";
  for (const row of wrap(note, CHART_WIDTH - MARGIN.left - 12, 10)) {
    out.push(`<text x="${MARGIN.left}" y="${ly}" font-size="10" fill="#666">${escapeXml(row)}</text>`);
    ly += 13;
  }
  return ly + 4;
}
