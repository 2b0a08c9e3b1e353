// Values that break parsers: JSON of every type, numbers at the edges of every integer width,
// strings that are paths, and regexes that backtrack.
import fc from "fast-check";

export const EDGE_NUMBERS = [0, -1, 1, 0.5, 2.5, -0.0, 1e-300, 1e300, 2 ** 31, 2 ** 31 - 1, 2 ** 32, 2 ** 53, 2 ** 53 + 2, 2e7, -(2 ** 31), 1e9, 65536, 4097];

export const EDGE_STRINGS = ["", ".", "..", "../..", "/etc/passwd", "a/../../b", "\u0000", "model.safetensors", "x".repeat(5000), "(.*.*)*X", "((a+)+)+$", "(?<=x)", "\\p{L}", "[", "🦙"];

export const edgeNumber = fc.constantFrom(...EDGE_NUMBERS);
export const edgeString = fc.constantFrom(...EDGE_STRINGS);

/** Any JSON value, biased towards the edge cases. */
export const anyJson: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 3, arbitrary: edgeNumber },
  { weight: 2, arbitrary: edgeString },
  { weight: 1, arbitrary: fc.constantFrom(null, true, false, [], {}, [[]], { type: 1 }) },
);

/** Sets `value` at a path of keys and indexes inside a copy of `root` (creating objects as needed). */
export function setPath(root: unknown, path: readonly (string | number)[], value: unknown): unknown {
  if (path.length === 0) return value;
  const [head, ...rest] = path;
  const container = (Array.isArray(root) ? [...root] : typeof root === "object" && root !== null ? { ...root } : {}) as Record<string | number, unknown>;
  container[head!] = setPath(container[head!], rest, value);
  return container;
}

/** The paths of every node of a JSON value (bounded), for picking one to replace. */
export function jsonPaths(root: unknown, limit = 400): (string | number)[][] {
  const out: (string | number)[][] = [];
  const walk = (node: unknown, path: (string | number)[]) => {
    if (out.length >= limit) return;
    out.push(path);
    if (Array.isArray(node)) node.slice(0, 20).forEach((child, i) => walk(child, [...path, i]));
    else if (typeof node === "object" && node !== null) for (const [key, child] of Object.entries(node).slice(0, 40)) walk(child, [...path, key]);
  };
  walk(root, []);
  return out;
}

/** Up to `max` replacements of nodes of `base` (chosen by index into its paths) with bad values. */
export function mutations(max: number): fc.Arbitrary<{ at: number; value: unknown }[]> {
  return fc.array(fc.record({ at: fc.nat(), value: anyJson }), { minLength: 1, maxLength: max });
}

export function applyMutations(base: unknown, edits: readonly { at: number; value: unknown }[]): unknown {
  let result = base;
  for (const { at, value } of edits) {
    const paths = jsonPaths(result);
    result = setPath(result, paths[at % paths.length]!, value);
  }
  return result;
}
