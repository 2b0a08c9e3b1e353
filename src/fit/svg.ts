/**
 * The fit chart: memory against context length (both axes logarithmic), one line per artifact, and
 * each device's memory budget as a horizontal band. A plain SVG document with no scripts or external
 * references, so it renders the same in browsers, GitHub and resvg.
 */
import type { Device } from "./devices.js";
import type { FitManifest, FitResult } from "./manifest.js";

export const CHART_WIDTH = 1000;
/** Height of the plot area and its axes; the legend below adds a line per artifact. */
const PLOT_BLOCK_HEIGHT = 500;
const MARGIN = { left: 78, right: 290, top: 64, bottom: 56 };

export function chartHeight(artifacts: number): number {
  return PLOT_BLOCK_HEIGHT + 24 + 16 * (artifacts + 1);
}

/** Line colours, distinguishable and printable (Tableau 10). */
export const LINE_COLORS = ["#4e79a7", "#e15759", "#59a14f", "#f28e2b", "#b07aa1", "#76b7b2", "#edc948", "#ff9da7", "#9c755f", "#bab0ac"] as const;

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

/** The budget a device's bands show: the pool that limits its first runtime. */
export function deviceBudget(device: Device): { bytes: number; label: string } {
  if (device.gpu?.available !== undefined && !device.gpu.unified && !device.memory.unified) {
    return { bytes: device.gpu.available, label: "VRAM" };
  }
  const working = device.memory.gpuWorkingSet;
  if (working !== undefined && working < device.memory.available) return { bytes: working, label: "GPU working set" };
  return { bytes: device.memory.available, label: "app budget" };
}

/** The result drawn for an artifact: f16 KV with flash attention off on the first device that runs it. */
function chartResult(manifest: FitManifest, artifactId: string): FitResult | undefined {
  const supported = manifest.results.filter((r) => r.artifact === artifactId && r.supported && r.rows);
  return supported.find((r) => r.kvCache === "f16" && !r.flashAttention) ?? supported[0];
}

/**
 * Label positions as close to `wanted` (sorted top to bottom) as a minimum gap allows: overlapping
 * labels form clusters centred on their wanted positions, merged until none overlap.
 */
function spreadLabels(wanted: readonly number[], gap: number): number[] {
  let clusters = wanted.map((w, i) => ({ first: i, count: 1, sum: w }));
  const start = (c: { count: number; sum: number }) => c.sum / c.count - ((c.count - 1) * gap) / 2;
  for (let merged = true; merged; ) {
    merged = false;
    const next: typeof clusters = [];
    for (const c of clusters) {
      const prev = next.at(-1);
      if (prev && start(prev) + prev.count * gap > start(c)) {
        prev.count += c.count;
        prev.sum += c.sum;
        merged = true;
      } else next.push({ ...c });
    }
    clusters = next;
  }
  return clusters.flatMap((c) => Array.from({ length: c.count }, (_, k) => start(c) + k * gap));
}

export function fitChartSvg(manifest: FitManifest): string {
  const height = chartHeight(manifest.artifacts.length);
  const plotW = CHART_WIDTH - MARGIN.left - MARGIN.right;
  const plotH = PLOT_BLOCK_HEIGHT - MARGIN.top - MARGIN.bottom;
  const contexts = manifest.contexts.length > 0 ? manifest.contexts : [512, 4096];
  const xMin = Math.min(...contexts);
  const xMax = Math.max(...contexts, xMin * 2);
  const lines = manifest.artifacts.map((a, i) => ({ artifact: a, result: chartResult(manifest, a.id), color: LINE_COLORS[i % LINE_COLORS.length]! }));
  const totals = lines.flatMap((l) => l.result?.rows?.map((r) => r.total) ?? []);
  const devices = manifest.devices as unknown as Device[];
  const budgets = devices.map((d) => ({ device: d, ...deviceBudget(d) }));
  const values = [...totals, ...budgets.map((b) => b.bytes)].filter((v) => v > 0);
  const yMin = 2 ** Math.floor(Math.log2(Math.max(Math.min(...values, GiB) * 0.8, MiB)));
  const yMax = 2 ** Math.ceil(Math.log2(Math.max(...values, yMin * 4) * 1.15));
  const x = (c: number) => MARGIN.left + ((Math.log2(c) - Math.log2(xMin)) / (Math.log2(xMax) - Math.log2(xMin))) * plotW;
  const y = (b: number) => MARGIN.top + plotH - ((Math.log2(b) - Math.log2(yMin)) / (Math.log2(yMax) - Math.log2(yMin))) * plotH;
  const clampY = (b: number) => Math.max(MARGIN.top, Math.min(MARGIN.top + plotH, y(Math.max(b, yMin))));
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${CHART_WIDTH}" height="${height}" viewBox="0 0 ${CHART_WIDTH} ${height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">`,
    `<title>${escapeXml(`Memory vs context: ${manifest.artifacts.map((a) => a.name).join(", ")}`)}</title>`,
    `<rect x="0" y="0" width="${CHART_WIDTH}" height="${height}" fill="#ffffff"/>`,
    `<text x="${MARGIN.left}" y="26" font-size="17" font-weight="bold" fill="#222">Memory vs context length</text>`,
    `<text x="${MARGIN.left}" y="46" font-size="11" fill="#555">Total memory the runtime allocates (log scale) against context (log scale); bands: each device's memory budget.</text>`,
    `<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotW}" height="${plotH}" fill="#fafafa" stroke="#888" stroke-width="1"/>`,
  );
  // y grid: powers of 4 bytes
  for (let v = yMin; v <= yMax; v *= 2) {
    const yy = y(v);
    const major = Math.round(Math.log2(v)) % 2 === 0;
    out.push(`<line x1="${MARGIN.left}" y1="${yy.toFixed(1)}" x2="${MARGIN.left + plotW}" y2="${yy.toFixed(1)}" stroke="${major ? "#ddd" : "#eee"}" stroke-width="1"/>`);
    if (major) out.push(`<text x="${MARGIN.left - 6}" y="${(yy + 4).toFixed(1)}" font-size="11" text-anchor="end" fill="#333">${escapeXml(formatBytes(v))}</text>`);
  }
  for (const c of contexts) {
    const xx = x(c);
    out.push(`<line x1="${xx.toFixed(1)}" y1="${MARGIN.top}" x2="${xx.toFixed(1)}" y2="${MARGIN.top + plotH}" stroke="#e4e4e4" stroke-width="1"/>`);
    out.push(`<text x="${xx.toFixed(1)}" y="${MARGIN.top + plotH + 18}" font-size="11" text-anchor="middle" fill="#333">${formatContext(c)}</text>`);
  }
  out.push(`<text x="${MARGIN.left + plotW / 2}" y="${PLOT_BLOCK_HEIGHT - 14}" font-size="12" text-anchor="middle" fill="#222">context length (tokens)</text>`);
  out.push(`<text transform="translate(18 ${MARGIN.top + plotH / 2}) rotate(-90)" font-size="12" text-anchor="middle" fill="#222">memory</text>`);

  // budget bands, grouped when budgets coincide, labels pushed apart
  const groups: { bytes: number; names: string[] }[] = [];
  for (const b of budgets.sort((p, q) => q.bytes - p.bytes)) {
    const same = groups.find((g) => Math.abs(g.bytes - b.bytes) / g.bytes < 0.01);
    if (same) same.names.push(b.device.name);
    else groups.push({ bytes: b.bytes, names: [b.device.name] });
  }
  const visible = groups.filter((g) => g.bytes >= yMin && g.bytes <= yMax);
  const labelYs = spreadLabels(visible.map((g) => y(g.bytes) + 4), 13);
  visible.forEach((g, i) => {
    const top = y(g.bytes);
    const bottom = Math.min(MARGIN.top + plotH, y(g.bytes * 0.94));
    out.push(`<rect x="${MARGIN.left}" y="${top.toFixed(1)}" width="${plotW}" height="${Math.max(bottom - top, 2).toFixed(1)}" fill="#8c8c8c" fill-opacity="0.28"/>`);
    out.push(`<line x1="${MARGIN.left}" y1="${top.toFixed(1)}" x2="${MARGIN.left + plotW}" y2="${top.toFixed(1)}" stroke="#666" stroke-width="1" stroke-dasharray="4 3"/>`);
    const labelY = labelYs[i]!;
    if (Math.abs(labelY - (top + 4)) > 2) {
      out.push(`<line x1="${MARGIN.left + plotW}" y1="${top.toFixed(1)}" x2="${MARGIN.left + plotW + 8}" y2="${(labelY - 4).toFixed(1)}" stroke="#999" stroke-width="0.8"/>`);
    }
    const shorten = (name: string) => (name.length > 34 ? `${name.slice(0, 33)}…` : name);
    const names = g.names.length > 1 ? `${shorten(g.names[0]!)} +${g.names.length - 1}` : shorten(g.names[0]!);
    out.push(`<text x="${MARGIN.left + plotW + 10}" y="${labelY.toFixed(1)}" font-size="10" fill="#444">${escapeXml(`${formatBytes(g.bytes)}  ${names}`)}</text>`);
  });

  // one line per artifact
  for (const line of lines) {
    const rows = line.result?.rows ?? [];
    if (rows.length === 0) continue;
    const points = rows.map((r) => `${x(r.context).toFixed(1)},${clampY(r.total).toFixed(1)}`).join(" ");
    out.push(`<polyline points="${points}" fill="none" stroke="${line.color}" stroke-width="2.5" stroke-linejoin="round"/>`);
    for (const r of rows) {
      const hollow = r.exceedsModelContext;
      out.push(`<circle cx="${x(r.context).toFixed(1)}" cy="${clampY(r.total).toFixed(1)}" r="4" fill="${hollow ? "#ffffff" : line.color}" stroke="${line.color}" stroke-width="2"/>`);
    }
  }
  // legend, below the plot
  let ly = PLOT_BLOCK_HEIGHT + 24;
  for (const line of lines) {
    const r = line.result;
    const setting = r ? `${r.runtime} on ${r.device}, KV ${r.kvCache}${r.flashAttention ? ", flash attention" : ""}` : "no runtime";
    out.push(`<line x1="${MARGIN.left}" y1="${ly - 4}" x2="${MARGIN.left + 24}" y2="${ly - 4}" stroke="${line.color}" stroke-width="3"/>`);
    out.push(`<text x="${MARGIN.left + 30}" y="${ly}" font-size="11" fill="#222">${escapeXml(`${line.artifact.id} (${line.artifact.format} ${line.artifact.quantization}) — ${setting}`)}</text>`);
    ly += 16;
  }
  out.push(`<text x="${MARGIN.left}" y="${ly}" font-size="10" fill="#666">hollow points: beyond the model's trained context; each line uses the runtime and device named in its legend entry</text>`);
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}
