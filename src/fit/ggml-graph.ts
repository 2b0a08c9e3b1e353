/**
 * A shape-only replica of the parts of ggml that decide how big llama.cpp's compute buffer is:
 * tensors with ggml's ne/nb/view bookkeeping (ggml/src/ggml.c `ggml_new_tensor_impl`, `ggml_view_*`,
 * `ggml_reshape_*`, `ggml_permute`, and the result shapes of the ops a decoder uses) and the graph
 * builder's depth-first node order (`ggml_visit_parents_graph`, `ggml_build_forward_expand`).
 * No data is ever computed; the graph is handed to ./ggml-alloc.ts, a port of ggml-alloc.c.
 */
import { ggmlType, GgmlType } from "../quant/ggml-types.js";

type Op =
  | "NONE"
  | "GET_ROWS"
  | "RMS_NORM"
  | "NORM"
  | "MUL"
  | "ADD"
  | "SCALE"
  | "MUL_MAT"
  | "RESHAPE"
  | "VIEW"
  | "PERMUTE"
  | "TRANSPOSE"
  | "CONT"
  | "ROPE"
  | "SOFT_MAX"
  | "GLU"
  | "UNARY"
  | "SET_ROWS"
  | "FLASH_ATTN_EXT"
  | "CLAMP"
  | "CONCAT"
  | "SSM_CONV"
  | "CPY";

type Dims = [number, number, number, number];

/** ggml_op_can_inplace (ggml-alloc.c): ops whose result may take over a parent's memory. */
const INPLACE_OPS: ReadonlySet<Op> = new Set<Op>(["SCALE", "ADD", "MUL", "UNARY", "ROPE", "RMS_NORM", "CLAMP", "SOFT_MAX"]);

export function canInplace(op: Op): boolean {
  return INPLACE_OPS.has(op);
}

export class Tensor {
  name = "";
  input = false;
  output = false;
  constructor(
    readonly id: number,
    readonly op: Op,
    readonly type: number,
    readonly ne: Dims,
    readonly nb: Dims,
    readonly src: readonly (Tensor | null)[],
    /** The tensor whose memory this one views (always the root: views of views point at the root). */
    readonly viewSrc: Tensor | null,
    /** Memory that exists before the graph is allocated: weights, KV cache, and views of them. */
    readonly external: boolean,
  ) {}

  get isView(): boolean {
    return this.viewSrc !== null;
  }

  /** ggml_nbytes */
  get bytes(): number {
    if (this.ne.some((n) => n <= 0)) return 0;
    const { blockSize, typeSize } = ggmlType(this.type);
    if (blockSize === 1) {
      let bytes = typeSize;
      for (let i = 0; i < 4; i++) bytes += (this.ne[i]! - 1) * this.nb[i]!;
      return bytes;
    }
    let bytes = (this.ne[0] * this.nb[0]) / blockSize;
    for (let i = 1; i < 4; i++) bytes += (this.ne[i]! - 1) * this.nb[i]!;
    return bytes;
  }
}

function dims(ne: readonly number[]): Dims {
  return [ne[0] ?? 1, ne[1] ?? 1, ne[2] ?? 1, ne[3] ?? 1];
}

function contiguousStrides(type: number, ne: Dims): Dims {
  const { blockSize, typeSize } = ggmlType(type);
  const nb0 = typeSize;
  const nb1 = nb0 * (ne[0] / blockSize);
  const nb2 = nb1 * ne[1];
  return [nb0, nb1, nb2, nb2 * ne[2]];
}

export function sameLayout(a: Tensor, b: Tensor): boolean {
  return a.type === b.type && a.ne.every((n, i) => n === b.ne[i]) && a.nb.every((n, i) => n === b.nb[i]);
}

export function isContiguous(t: Tensor): boolean {
  const expected = contiguousStrides(t.type, t.ne);
  return t.nb.every((n, i) => n === expected[i] || t.ne[i] === 1);
}

/** The ops a decoder graph uses, each with ggml's result shape and source order. */
export class GraphContext {
  private nextId = 0;

  private make(op: Op, type: number, ne: readonly number[], src: readonly (Tensor | null)[], view?: { of: Tensor; nb?: Dims }): Tensor {
    const shape = dims(ne);
    const root = view ? (view.of.viewSrc ?? view.of) : null;
    const nb = view?.nb ?? contiguousStrides(type, shape);
    return new Tensor(this.nextId++, op, type, shape, nb, src, root, root ? root.external : false);
  }

  /** A tensor allocated before the graph: a weight or a KV cache buffer. */
  external(name: string, type: number, ne: readonly number[]): Tensor {
    const shape = dims(ne);
    const t = new Tensor(this.nextId++, "NONE", type, shape, contiguousStrides(type, shape), [], null, true);
    t.name = name;
    return t;
  }

  /** ggml_new_tensor + ggml_set_input: an input the allocator places in the compute buffer. */
  input(name: string, type: number, ne: readonly number[]): Tensor {
    const t = this.make("NONE", type, ne, []);
    t.name = name;
    t.input = true;
    return t;
  }

  private dup(op: Op, a: Tensor, src: readonly (Tensor | null)[]): Tensor {
    return this.make(op, a.type, a.ne, src);
  }

  getRows(a: Tensor, b: Tensor): Tensor {
    const type = a.type === GgmlType.I32 ? GgmlType.I32 : GgmlType.F32;
    return this.make("GET_ROWS", type, [a.ne[0], b.ne[0], b.ne[1], b.ne[2]], [a, b]);
  }

  rmsNorm(a: Tensor): Tensor {
    return this.dup("RMS_NORM", a, [a]);
  }

  norm(a: Tensor): Tensor {
    return this.dup("NORM", a, [a]);
  }

  mul(a: Tensor, b: Tensor): Tensor {
    return this.dup("MUL", a, [a, b]);
  }

  add(a: Tensor, b: Tensor): Tensor {
    return this.dup("ADD", a, [a, b]);
  }

  scale(a: Tensor): Tensor {
    return this.dup("SCALE", a, [a]);
  }

  clamp(a: Tensor): Tensor {
    return this.dup("CLAMP", a, [a]);
  }

  unary(a: Tensor): Tensor {
    return this.dup("UNARY", a, [a]);
  }

  mulMat(a: Tensor, b: Tensor): Tensor {
    return this.make("MUL_MAT", GgmlType.F32, [a.ne[1], b.ne[1], b.ne[2], b.ne[3]], [a, b]);
  }

  /** ggml_swiglu_split / ggml_geglu_split: a new tensor shaped like `a`. */
  gluSplit(a: Tensor, b: Tensor): Tensor {
    return this.make("GLU", a.type, a.ne, [a, b]);
  }

  /** ggml_glu without a second operand: the gate is the first half of `a`. */
  glu(a: Tensor): Tensor {
    return this.make("GLU", a.type, [a.ne[0] / 2, a.ne[1], a.ne[2], a.ne[3]], [a]);
  }

  rope(a: Tensor, positions: Tensor, factors: Tensor | null): Tensor {
    return this.dup("ROPE", a, factors ? [a, positions, factors] : [a, positions]);
  }

  softMax(a: Tensor, mask: Tensor | null): Tensor {
    return this.dup("SOFT_MAX", a, mask ? [a, mask] : [a]);
  }

  flashAttn(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | null): Tensor {
    return this.make("FLASH_ATTN_EXT", GgmlType.F32, [v.ne[0], q.ne[2], q.ne[1], q.ne[3]], [q, k, v, mask]);
  }

  cont(a: Tensor, ne: readonly number[] = a.ne): Tensor {
    return this.make("CONT", a.type, ne, [a]);
  }

  reshape(a: Tensor, ne: readonly number[]): Tensor {
    return this.make("RESHAPE", a.type, ne, [a], { of: a });
  }

  /** ggml_view_Nd: `nb` are the strides of dims 1..3 (dim 0 is the element size). */
  view(a: Tensor, ne: readonly number[], nb: readonly number[]): Tensor {
    const shape = dims(ne);
    const elem = ggmlType(a.type).typeSize;
    const strides = contiguousStrides(a.type, shape);
    const full: Dims = [elem, nb[0] ?? strides[1], nb[1] ?? strides[2], nb[2] ?? strides[3]];
    return this.make("VIEW", a.type, shape, [a], { of: a, nb: full });
  }

  permute(a: Tensor, axes: readonly [number, number, number, number]): Tensor {
    const ne = [...a.ne] as Dims;
    const nb = [...a.nb] as Dims;
    axes.forEach((axis, i) => {
      ne[axis] = a.ne[i]!;
      nb[axis] = a.nb[i]!;
    });
    return this.make("PERMUTE", a.type, ne, [a], { of: a, nb });
  }

  transpose(a: Tensor): Tensor {
    return this.make("TRANSPOSE", a.type, [a.ne[1], a.ne[0], a.ne[2], a.ne[3]], [a], { of: a, nb: [a.nb[1], a.nb[0], a.nb[2], a.nb[3]] });
  }

  /** ggml_concat along `dim`: a new F32 tensor. */
  concat(a: Tensor, b: Tensor, dim: number): Tensor {
    const ne = [...a.ne];
    ne[dim] = a.ne[dim]! + b.ne[dim]!;
    return this.make("CONCAT", a.type, ne, [a, b]);
  }

  /** ggml_ssm_conv(sx [d_conv - 1 + n_t, d_inner, n_s], c [d_conv, d_inner]): F32 [d_inner, n_t, n_s]. */
  ssmConv(sx: Tensor, c: Tensor): Tensor {
    return this.make("SSM_CONV", GgmlType.F32, [sx.ne[1], sx.ne[0] - c.ne[0] + 1, sx.ne[2]], [sx, c]);
  }

  /** ggml_cpy(a, b): a view of the destination `b`. */
  cpy(a: Tensor, b: Tensor): Tensor {
    return this.make("CPY", b.type, b.ne, [a, b], { of: b, nb: b.nb });
  }

  /** ggml_scale_inplace: a view of `a`. */
  scaleInplace(a: Tensor): Tensor {
    return this.make("SCALE", a.type, a.ne, [a], { of: a, nb: a.nb });
  }

  /** ggml_set_rows(a, b, c): a view of the destination `a`; sources are [b, c, a]. */
  setRows(a: Tensor, b: Tensor, c: Tensor): Tensor {
    return this.make("SET_ROWS", a.type, a.ne, [b, c, a], { of: a, nb: a.nb });
  }
}

/** Node and leaf order exactly as ggml_build_forward_expand produces it (sources left to right, depth first). */
export class ComputeGraph {
  readonly nodes: Tensor[] = [];
  readonly leafs: Tensor[] = [];
  private readonly visited = new Set<number>();

  expand(tensor: Tensor): void {
    this.visit(tensor);
  }

  private visit(node: Tensor): void {
    if (this.visited.has(node.id)) return;
    this.visited.add(node.id);
    for (const src of node.src) if (src) this.visit(src);
    if (node.op === "NONE") this.leafs.push(node);
    else this.nodes.push(node);
  }
}
