/**
 * Which planned artifact to pick per device: the best-ranked one (least perplexity lost, from
 * formats/quality.yaml's measured tables) whose fit row at the requested context fits with the
 * headroom asked for; of candidates within the measurement's uncertainty of it, the one using
 * least memory at that context.
 */
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import type { FitManifest, FitResult, FitRow } from "../fit/manifest.js";
import type { KvConfig } from "../fit/runtimes.js";
import type { Candidate } from "./candidates.js";

const QUALITY_FILE = new URL("../../formats/quality.yaml", import.meta.url);

/** [perplexity increase, its uncertainty], as the source measured them. */
type Measured = readonly [number, number];

interface QualityTable {
  readonly source: string;
  readonly ppl16: number;
  readonly deltaPpl: Readonly<Record<string, Measured>>;
  readonly lossless?: readonly string[];
  readonly sameAs?: Readonly<Record<string, string>>;
}

/** A candidate's quality cost: perplexity increase over 16 bits in percent, its uncertainty, and where the figure comes from. */
export interface Quality {
  readonly deltaPplPercent: number | null;
  readonly uncertaintyPercent: number | null;
  readonly source: string;
}

let tables: Readonly<Record<"gguf" | "onnx" | "mlx", QualityTable>> | undefined;

function qualityTables() {
  tables ??= parse(readFileSync(QUALITY_FILE, "utf8")) as Record<"gguf" | "onnx" | "mlx", QualityTable>;
  return tables;
}

function percent(table: QualityTable, setting: string | undefined, source: string): Quality {
  if (setting !== undefined && table.lossless?.includes(setting)) return { deltaPplPercent: 0, uncertaintyPercent: 0, source };
  const measured = setting === undefined ? undefined : table.deltaPpl[setting];
  if (!measured) return { deltaPplPercent: null, uncertaintyPercent: null, source };
  return { deltaPplPercent: (100 * measured[0]) / table.ppl16, uncertaintyPercent: (100 * measured[1]) / table.ppl16, source };
}

export function qualityOf(candidate: Pick<Candidate, "format" | "setting">): Quality {
  const all = qualityTables();
  switch (candidate.format) {
    case "gguf":
      return percent(all.gguf, candidate.setting, all.gguf.source);
    case "onnx":
      return percent(all.gguf, all.onnx.sameAs?.[candidate.setting.replace(/^(fp|int)/, "")], all.onnx.source);
    case "mlx":
      return percent(all.mlx, candidate.setting, all.mlx.source);
  }
}

/** Whether `a` is measurably better than `b`: lower by more than their combined uncertainty. */
function measurablyBetter(a: Quality, b: Quality): boolean {
  if (a.deltaPplPercent === null) return false;
  if (b.deltaPplPercent === null) return true;
  return b.deltaPplPercent - a.deltaPplPercent > Math.hypot(a.uncertaintyPercent ?? 0, b.uncertaintyPercent ?? 0);
}

export interface Recommendation {
  readonly device: string;
  readonly context: number;
  /** The candidate picked, or null when none fits. */
  readonly pick: string | null;
  readonly runtime: string | null;
  readonly total?: number;
  readonly headroom?: number;
  readonly bindingPool?: string;
  readonly largestContext?: number | null;
  readonly decodeTokensPerSecond?: number;
  readonly reason: string;
}

/**
 * One recommendation per device at `context`, over `config`'s results (f16 KV cache with flash
 * attention on by default: llama.cpp's auto default on most backends). `headroomFraction` of the
 * binding budget must stay free.
 */
export function recommend(manifest: FitManifest, candidates: readonly Candidate[], context: number, config: KvConfig, headroomFraction: number): Recommendation[] {
  const idOf = new Map(manifest.artifacts.map((a, i) => [a.id, candidates[i]!]));
  return manifest.devices.map((device): Recommendation => {
    const results = manifest.results.filter((r) => r.device === device.id && r.kvCache === config.kvCache && r.flashAttention === config.flashAttention && r.supported);
    const fitting: { result: FitResult; row: FitRow; candidate: Candidate; quality: Quality }[] = [];
    let closest: { row: FitRow; candidate: Candidate } | undefined;
    for (const result of results) {
      const row = result.rows?.find((r) => r.context === context);
      const candidate = idOf.get(result.artifact)!;
      if (!row || row.exceedsModelContext) continue;
      const budget = row.pools.find((p) => p.pool === row.bindingPool)!.budget;
      if (row.fits && row.headroom >= headroomFraction * budget) fitting.push({ result, row, candidate, quality: qualityOf(candidate) });
      else if (!closest || row.total < closest.row.total) closest = { row, candidate };
    }
    // The best-ranked, then among those no measurably worse than it, the one using least memory.
    const rank = (q: Quality) => q.deltaPplPercent ?? Infinity;
    fitting.sort((a, b) => rank(a.quality) - rank(b.quality) || a.row.total - b.row.total);
    const top = fitting[0];
    const best = top && fitting.filter((f) => !measurablyBetter(top.quality, f.quality)).sort((a, b) => a.row.total - b.row.total)[0];
    if (!best) {
      const trained = manifest.artifacts[0]?.contextLength ?? 0;
      const reason = context > trained
        ? `${context} tokens is beyond the model's trained context (${trained}); plan with --ctx ${trained} or less`
        : closest
        ? `nothing fits ${context} tokens with ${Math.round(headroomFraction * 100)}% headroom; the smallest, ${closest.candidate.id}, needs ${gib(closest.row.total)} GiB (${closest.row.bindingPool} budget ${gib(closest.row.pools.find((p) => p.pool === closest.row.bindingPool)!.budget)} GiB)`
        : `no planned artifact runs on this device's runtimes at ${context} tokens`;
      return { device: device.id, context, pick: null, runtime: null, reason };
    }
    const { row, result, candidate, quality } = best;
    const budget = row.pools.find((p) => p.pool === row.bindingPool)!.budget;
    const better = rankedAbove(results, idOf, candidate);
    const cost = quality.deltaPplPercent === null ? "quality not measured" : `+${quality.deltaPplPercent.toFixed(2)}% ± ${quality.uncertaintyPercent!.toFixed(2)}% perplexity`;
    const reason =
      `${cost}; ${row.bindingPool} is the binding pool: ${gib(row.total)} of ${gib(budget)} GiB at ${context} tokens, ${gib(row.headroom)} GiB free` +
      (result.largestContext ? `; fits up to ${result.largestContext.tokens ?? 0} tokens (${result.largestContext.limitedBy})` : "") +
      (better.length > 0 ? `; better-ranked ${better.slice(0, 2).join(", ")} do not fit with the headroom` : "");
    return {
      device: device.id,
      context,
      pick: candidate.id,
      runtime: result.runtime,
      total: row.total,
      headroom: row.headroom,
      bindingPool: row.bindingPool,
      largestContext: result.largestContext?.tokens ?? null,
      decodeTokensPerSecond: row.decodeTokensPerSecond,
      reason,
    };
  });
}

/** Candidates this device runs that rank better than `picked` (they did not fit). */
function rankedAbove(results: readonly FitResult[], idOf: ReadonlyMap<string, Candidate>, picked: Candidate): string[] {
  const rank = (c: Candidate) => qualityOf(c).deltaPplPercent ?? Infinity;
  const pickedRank = rank(picked);
  const above = new Map<string, number>();
  for (const r of results) {
    const c = idOf.get(r.artifact)!;
    if (c !== picked && rank(c) < pickedRank) above.set(c.id, rank(c));
  }
  return [...above].sort((a, b) => a[1] - b[1]).map(([id]) => id);
}

const gib = (bytes: number) => (bytes / 2 ** 30).toFixed(2);
