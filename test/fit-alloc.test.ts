// The ggml-alloc port (src/fit/ggml-alloc.ts), which sizes llama.cpp's compute buffer: memory is
// reused along a chain, and on random graphs no two tensors whose data must coexist share a byte
// (placements recorded and checked by test/support/alloc-placements.ts, liveness from the graph).

import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { allocateGraph } from "../src/fit/ggml-alloc.js";
import { ComputeGraph, GraphContext } from "../src/fit/ggml-graph.js";
import { GgmlType as GGML } from "../src/quant/ggml-types.js";
import { overlaps, placements, recordPlacements } from "./support/alloc-placements.js";

describe("ggml-alloc port", () => {
  test("a chain of ops reuses memory: peak is the largest live pair, not the sum", () => {
    const g = new GraphContext();
    const gf = new ComputeGraph();
    const w = g.external("w", GGML.F32, [64, 64]);
    let x = g.input("x", GGML.F32, [64, 16]);
    for (let i = 0; i < 10; i++) x = g.mulMat(w, x);
    x.output = true;
    gf.expand(x);
    // each matmul needs its input and its output; the freed block is reused by the next one
    expect(allocateGraph(gf, 32).bytes).toBe(2 * 64 * 16 * 4);
  });

  test("tensors whose data must coexist never share a byte, and the buffer covers every live tensor (random graphs)", () => {
    // ops: [kind, first operand, second operand, columns, output?]; operands index the tensors made so far
    const op = fc.tuple(
      fc.constantFrom("mulMat", "scale", "add", "softMax", "cont", "reshape", "view", "transpose", "glu"),
      fc.nat(12),
      fc.nat(12),
      fc.integer({ min: 1, max: 64 }),
      fc.boolean(),
    );
    let withInPlace = 0;
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 40 }), fc.constantFrom(16, 32, 64), (ops, alignment) => {
        const g = new GraphContext();
        const gf = new ComputeGraph();
        const made = [g.input("in", GGML.F32, [8, 3]), g.input("in2", GGML.F32, [8, 3])];
        const recent = (pick: number) => made[Math.max(0, made.length - 1 - pick)]!;
        for (const [kind, pick, other, cols, output] of ops) {
          const a = recent(pick);
          const same = made.filter((t) => t.ne.every((n, i) => n === a.ne[i]));
          const b = same[other % same.length]!;
          const t =
            kind === "mulMat" ? g.mulMat(g.external("w", GGML.F32, [a.ne[0], cols]), a)
            : kind === "scale" ? g.scale(a)
            : kind === "add" ? g.add(a, b)
            : kind === "softMax" ? g.softMax(a, null)
            : kind === "cont" ? g.cont(a)
            : kind === "reshape" ? g.reshape(a, [a.ne[0] * a.ne[1], a.ne[2], a.ne[3]])
            : kind === "view" ? g.view(a, [Math.max(1, a.ne[0] >> 1), a.ne[1], a.ne[2], a.ne[3]], [a.nb[1], a.nb[2], a.nb[3]])
            : kind === "transpose" ? g.transpose(a)
            : a.ne[0] % 2 === 0 ? g.glu(a) : g.unary(a);
          t.name = `${kind}${made.length}`;
          if (output && !t.isView) t.output = true;
          made.push(t);
        }
        const last = made.at(-1)!;
        (last.viewSrc ?? last).output = true;
        for (const t of made.filter((x) => x.output)) gf.expand(t);
        gf.expand(last);

        const { result, offsets } = recordPlacements(() => allocateGraph(gf, alignment));
        const placed = placements(gf, alignment, offsets);
        expect(overlaps(placed, result.bytes)).toEqual([]);
        if (placed.some((p, i) => placed.some((q, j) => i !== j && p.offset === q.offset && p.from <= q.to && q.from <= p.to))) withInPlace++;
        // the buffer holds the biggest tensor and never more than all of them side by side
        expect(result.bytes).toBeGreaterThanOrEqual(Math.max(0, ...placed.map((p) => p.size)));
        expect(result.bytes).toBeLessThanOrEqual(placed.reduce((sum, p) => sum + p.size, 0));
      }),
      { numRuns: 500 },
    );
    // the in-place path (a node reusing its parent's bytes) was exercised, not just side-by-side tensors
    expect(withInPlace).toBeGreaterThan(20);
  });

  test("the overlap check catches a placement that puts two live tensors in the same bytes", () => {
    const g = new GraphContext();
    const gf = new ComputeGraph();
    const x = g.input("x", GGML.F32, [8, 4]);
    const y = g.mulMat(g.external("w", GGML.F32, [8, 8]), x);
    const z = g.add(y, y);
    z.output = true;
    gf.expand(z);
    const { result, offsets } = recordPlacements(() => allocateGraph(gf, 32));
    expect(overlaps(placements(gf, 32, offsets), result.bytes)).toEqual([]);
    // x is still live when y is computed from it: giving y x's offset must be reported
    const broken = new Map(offsets);
    broken.set(y.id, offsets.get(x.id)!);
    expect(overlaps(placements(gf, 32, broken), result.bytes).join("\n")).toMatch(/overlaps/);
  });
});

