// Small helpers for comparing per-position logits (reference vs llama.cpp, f32 vs quantized...).

export function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  return best;
}

/** log-softmax of one row, computed in float64. */
export function logSoftmax(row: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i]! > max) max = row[i]!;
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += Math.exp(row[i]! - max);
  const logZ = max + Math.log(sum);
  const out = new Float64Array(row.length);
  for (let i = 0; i < row.length; i++) out[i] = row[i]! - logZ;
  return out;
}

/**
 * Mean negative log-likelihood (nats/token) of tokens[1..] given logits[0..n-2]
 * (logits[t] predicts tokens[t + 1]).
 */
export function meanNll(logits: ArrayLike<number>[], tokens: number[]): number {
  if (tokens.length < 2) throw new Error("meanNll: need at least two tokens");
  let total = 0;
  for (let t = 0; t + 1 < tokens.length; t++) {
    const row = logits[t];
    if (!row) throw new Error(`meanNll: missing logits for position ${t}`);
    total -= logSoftmax(row)[tokens[t + 1]!]!;
  }
  return total / (tokens.length - 1);
}

/** KL(p || q) in nats between the softmax distributions of two logit rows. */
export function klDivergence(p: ArrayLike<number>, q: ArrayLike<number>): number {
  const lp = logSoftmax(p);
  const lq = logSoftmax(q);
  let kl = 0;
  for (let i = 0; i < lp.length; i++) kl += Math.exp(lp[i]!) * (lp[i]! - lq[i]!);
  return kl;
}

export interface LogitComparison {
  positions: number;
  /** max |a - b| over all positions and vocab entries */
  maxAbsDiff: number;
  /** max |a - b| after subtracting each row's mean (logits are shift-invariant) */
  maxAbsDiffCentered: number;
  /** root-mean-square of the logits in `a`, for scale */
  rmsA: number;
  /** fraction of positions where argmax agrees */
  top1Agreement: number;
  /** positions where argmax differs, with each side's top-2 margin to judge near-ties */
  top1Mismatches: { position: number; a: number; b: number; marginA: number }[];
  /** mean and max KL(softmax(a) || softmax(b)) */
  meanKl: number;
  maxKl: number;
}

function topTwoMargin(row: ArrayLike<number>): number {
  let first = -Infinity;
  let second = -Infinity;
  for (let i = 0; i < row.length; i++) {
    const v = row[i]!;
    if (v > first) {
      second = first;
      first = v;
    } else if (v > second) second = v;
  }
  return first - second;
}

function rowMean(row: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < row.length; i++) s += row[i]!;
  return s / row.length;
}

export function compareLogits(a: ArrayLike<number>[], b: ArrayLike<number>[]): LogitComparison {
  if (a.length !== b.length) throw new Error(`compareLogits: ${a.length} vs ${b.length} positions`);
  let maxAbsDiff = 0;
  let maxAbsDiffCentered = 0;
  let sumSq = 0;
  let count = 0;
  let agree = 0;
  let klSum = 0;
  let maxKl = 0;
  const top1Mismatches: LogitComparison["top1Mismatches"] = [];
  for (let t = 0; t < a.length; t++) {
    const ra = a[t]!;
    const rb = b[t]!;
    if (ra.length !== rb.length) throw new Error(`compareLogits: vocab ${ra.length} vs ${rb.length} at position ${t}`);
    const ma = rowMean(ra);
    const mb = rowMean(rb);
    for (let i = 0; i < ra.length; i++) {
      maxAbsDiff = Math.max(maxAbsDiff, Math.abs(ra[i]! - rb[i]!));
      maxAbsDiffCentered = Math.max(maxAbsDiffCentered, Math.abs(ra[i]! - ma - (rb[i]! - mb)));
      sumSq += ra[i]! * ra[i]!;
      count++;
    }
    const ta = argmax(ra);
    const tb = argmax(rb);
    if (ta === tb) agree++;
    else top1Mismatches.push({ position: t, a: ta, b: tb, marginA: topTwoMargin(ra) });
    const kl = klDivergence(ra, rb);
    klSum += kl;
    maxKl = Math.max(maxKl, kl);
  }
  return {
    positions: a.length,
    maxAbsDiff,
    maxAbsDiffCentered,
    rmsA: Math.sqrt(sumSq / Math.max(1, count)),
    top1Agreement: a.length === 0 ? 1 : agree / a.length,
    top1Mismatches,
    meanKl: a.length === 0 ? 0 : klSum / a.length,
    maxKl,
  };
}
