// Where the ggml-alloc port (src/fit/ggml-alloc.ts) places each tensor, and an independent check
// that no two tensors whose data must coexist share a byte of the compute buffer.
//
// allocateGraph returns the buffer size only. Like ggml-alloc.c's hash set, the port keeps one
// record per tensor, { children, views, offset, allocated }, in a Map keyed by tensor id;
// recordPlacements watches the offsets written into those records while allocateGraph runs.
// If the port stops keeping them that way the recorder sees nothing and throws, so a check built
// on it fails instead of passing with nothing to check.
//
// Liveness is derived here from the graph alone, not from the allocator's own frees: a tensor
// computed at step i (leafs before step 0) must keep its bytes until the last node that reads it,
// directly or through a view, has run; graph outputs until the end. Two such tensors may share
// memory only as ggml's in-place reuse allows: the node takes over a parent's memory, at the
// parent's offset, on the step that reads the parent for the last time, for an op that can run in
// place (ggml_op_can_inplace).

interface TensorLike {
  readonly id: number;
  readonly name: string;
  readonly op: string;
  readonly src: readonly (TensorLike | null)[];
  readonly viewSrc: TensorLike | null;
  readonly external: boolean;
  readonly output: boolean;
  readonly bytes: number;
}

interface GraphLike {
  readonly nodes: readonly TensorLike[];
  readonly leafs: readonly TensorLike[];
}

const IS_RECORD = (value: unknown): value is { offset: number; allocated: boolean } =>
  typeof value === "object" && value !== null && "offset" in value && "allocated" in value && "children" in value && "views" in value;

/** Runs `allocate` and returns its result with every offset it assigned, by tensor id, in order. */
export function recordPlacements<T>(allocate: () => T): { result: T; offsets: Map<number, number[]> } {
  const offsets = new Map<number, number[]>();
  const set = Map.prototype.set;
  Map.prototype.set = function (this: Map<unknown, unknown>, key: unknown, value: unknown) {
    if (typeof key === "number" && IS_RECORD(value) && !offsets.has(key)) {
      offsets.set(key, []);
      let offset = value.offset;
      Object.defineProperty(value, "offset", {
        get: () => offset,
        set: (next: number) => {
          offset = next;
          offsets.get(key)!.push(next);
        },
        enumerable: true,
        configurable: true,
      });
    }
    return set.call(this, key, value) as Map<unknown, unknown>;
  };
  try {
    const result = allocate();
    if (offsets.size === 0) throw new Error("recordPlacements saw no { children, views, offset, allocated } records: the port's bookkeeping changed; update test/support/alloc-placements.ts");
    return { result, offsets };
  } finally {
    Map.prototype.set = set;
  }
}

/** ggml_op_can_inplace in ggml-alloc.c. */
const IN_PLACE = new Set(["SCALE", "ADD", "MUL", "UNARY", "ROPE", "RMS_NORM", "CLAMP", "SOFT_MAX"]);

const alignUp = (n: number, alignment: number) => Math.ceil(n / alignment) * alignment;

export interface Placement {
  readonly tensor: TensorLike;
  readonly offset: number;
  readonly size: number;
  /** Step that writes it (-1 for leafs, allocated before the first node). */
  readonly from: number;
  /** Last step that reads it (Infinity for outputs). */
  readonly to: number;
}

/** The buffer tensors with their offsets and the steps their data must survive, from the graph. */
export function placements(graph: GraphLike, alignment: number, offsets: ReadonlyMap<number, readonly number[]>): Placement[] {
  const root = (t: TensorLike) => t.viewSrc ?? t;
  const from = new Map<number, number>();
  const to = new Map<number, number>();
  graph.leafs.forEach((t) => from.set(t.id, -1));
  graph.nodes.forEach((t, i) => from.set(t.id, i));
  for (const [id, step] of from) to.set(id, step);
  graph.nodes.forEach((node, i) => {
    const reads = [...node.src.filter((s): s is TensorLike => s !== null), ...(node.viewSrc ? [node.viewSrc] : [])];
    for (const s of reads) to.set(root(s).id, Math.max(to.get(root(s).id) ?? i, i));
  });
  const out: Placement[] = [];
  for (const t of [...graph.leafs, ...graph.nodes]) {
    if (t.external || t.viewSrc) continue;
    const assigned = offsets.get(t.id) ?? [];
    if (assigned.length !== 1) throw new Error(`${t.name || `tensor ${t.id}`} (${t.op}) was given ${assigned.length} offsets (${assigned.join(", ")}); every buffer tensor needs exactly one`);
    out.push({ tensor: t, offset: assigned[0]!, size: alignUp(t.bytes, alignment), from: from.get(t.id)!, to: t.output ? Infinity : to.get(t.id)! });
  }
  return out;
}

/** ggml's in-place reuse: `b` is computed on the step that last reads its parent `a`, in `a`'s memory. */
function inPlace(a: Placement, b: Placement): boolean {
  const [parent, child] = a.from < b.from ? [a, b] : [b, a];
  const readsParent = child.tensor.src.some((s) => s !== null && (s.viewSrc ?? s).id === parent.tensor.id);
  return IN_PLACE.has(child.tensor.op) && readsParent && child.offset === parent.offset && child.size <= parent.size && parent.to === child.from;
}

/** Every pair of tensors that must coexist and share bytes, described; [] when the placement is sound. */
export function overlaps(all: readonly Placement[], bufferBytes: number): string[] {
  const problems: string[] = [];
  const describe = (p: Placement) => `${p.tensor.name || p.tensor.op}#${p.tensor.id} [${p.offset}, ${p.offset + p.size}) steps ${p.from}..${p.to}`;
  for (const p of all) if (p.offset < 0 || p.offset + p.size > bufferBytes) problems.push(`${describe(p)} lies outside the ${bufferBytes}-byte buffer`);
  for (let i = 0; i < all.length; i++) {
    for (let j = i + 1; j < all.length; j++) {
      const a = all[i]!;
      const b = all[j]!;
      const together = a.from <= b.to && b.from <= a.to;
      const shareBytes = a.size > 0 && b.size > 0 && a.offset < b.offset + b.size && b.offset < a.offset + a.size;
      if (together && shareBytes && !inPlace(a, b)) problems.push(`${describe(a)} overlaps ${describe(b)}`);
    }
  }
  return problems;
}
