// "Did you mean" for names the user typed: schemes, devices, recipe keys. Names are compared
// normalised (lowercase, letters and digits only), so q4km finds q4_k_m and iphone15 finds
// iphone-15; then the closest within two edits wins, ties going to the first listed.

const normalised = (name: string): string => name.toLowerCase().replace(/[^a-z0-9]/g, "");

/** The closest candidate within two edits of the normalised names; never `word` itself. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  const typed = normalised(word);
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of candidates) {
    const distance = editDistance(typed, normalised(candidate));
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best === word ? undefined : best;
}

/** " (did you mean 'x'?)" when a candidate is close, else "". */
export function didYouMean(word: string, candidates: readonly string[]): string {
  const suggestion = closest(word, candidates);
  return suggestion ? ` (did you mean '${suggestion}'?)` : "";
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current.push(Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)));
    }
    previous = current;
  }
  return previous[b.length]!;
}
