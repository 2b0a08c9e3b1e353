/**
 * A port of ggml's graph allocator (ggml/src/ggml-alloc.c) for one backend buffer: the dynamic
 * tensor allocator (`ggml_dyn_tallocr_alloc` best fit with the growable last block,
 * `ggml_dyn_tallocr_free_bytes` merging neighbours) driven by `ggml_gallocr_alloc_graph_impl`
 * (leafs first, then explicit inputs, then every node in graph order, reusing a parent's memory for
 * in-place ops and freeing a tensor when its last consumer has run). The largest offset it reaches
 * is the compute buffer llama.cpp reports as "<backend> compute buffer size".
 */
import { canInplace, sameLayout, type ComputeGraph, type Tensor } from "./ggml-graph.js";
import { alignUp } from "../quant/ggml-types.js";

interface FreeBlock {
  offset: number;
  size: number;
}

/** The growable tail block's size: MAX(min_size, max_chunk_size) with max_chunk_size = SIZE_MAX/2, kept exact in a double. */
const UNBOUNDED = 2 ** 52;

class DynamicAllocator {
  private readonly blocks: FreeBlock[] = [{ offset: 0, size: UNBOUNDED }];
  maxSize = 0;

  constructor(private readonly alignment: number) {}

  alloc(requested: number): number {
    const size = alignUp(requested, this.alignment);
    let best = -1;
    let bestSize = Infinity;
    // best fit among all blocks but the last
    for (let i = 0; i < this.blocks.length - 1; i++) {
      const block = this.blocks[i]!;
      if (block.size >= size && block.size <= bestSize) {
        best = i;
        bestSize = block.size;
      }
    }
    if (best === -1) best = this.blocks.length - 1; // the last block, which may grow the chunk
    const block = this.blocks[best]!;
    const offset = block.offset;
    block.offset += size;
    block.size -= size;
    if (block.size === 0) this.blocks.splice(best, 1);
    this.maxSize = Math.max(this.maxSize, offset + size);
    return offset;
  }

  free(offset: number, requested: number): void {
    const size = alignUp(requested, this.alignment);
    for (let i = 0; i < this.blocks.length; i++) {
      const block = this.blocks[i]!;
      if (block.offset + block.size === offset) {
        block.size += size;
        const next = this.blocks[i + 1];
        if (next && block.offset + block.size === next.offset) {
          block.size += next.size;
          this.blocks.splice(i + 1, 1);
        }
        return;
      }
      if (offset + size === block.offset) {
        block.offset = offset;
        block.size += size;
        const prev = this.blocks[i - 1];
        if (prev && prev.offset + prev.size === block.offset) {
          prev.size += block.size;
          this.blocks.splice(i, 1);
        }
        return;
      }
    }
    let at = 0;
    while (at < this.blocks.length && this.blocks[at]!.offset < offset) at++;
    this.blocks.splice(at, 0, { offset, size });
  }
}

interface HashNode {
  children: number;
  views: number;
  offset: number;
  allocated: boolean;
}

interface AllocationResult {
  /** Bytes of the compute buffer: the highest offset the allocator reached. */
  readonly bytes: number;
  /** The tensors live when that offset was first reached (for explaining where the memory goes). */
  readonly peak: readonly { name: string; bytes: number }[];
}

/** Replays ggml_gallocr_reserve for `graph` on one buffer with the given alignment. */
export function allocateGraph(graph: ComputeGraph, alignment: number, allocSize: (t: Tensor) => number = (t) => t.bytes): AllocationResult {
  const replay = new GraphAllocation(alignment, allocSize);
  for (const leaf of graph.leafs) replay.allocate(leaf);
  replay.countUses(graph);
  for (const node of graph.nodes) {
    for (const parent of node.src) if (parent) replay.allocate(parent);
    replay.allocate(node);
    for (const parent of node.src) if (parent) replay.release(parent);
  }
  return { bytes: replay.allocator.maxSize, peak: replay.peak };
}

/** ggml_gallocr's per-graph state: a hash node per tensor, the live tensors, the allocator. */
class GraphAllocation {
  readonly allocator: DynamicAllocator;
  private readonly hash = new Map<number, HashNode>();
  private readonly live = new Map<number, Tensor>();
  /** The live tensors when the buffer last grew. */
  peak: { name: string; bytes: number }[] = [];

  constructor(
    private readonly alignment: number,
    private readonly allocSize: (t: Tensor) => number,
  ) {
    this.allocator = new DynamicAllocator(alignment);
  }

  private get(t: Tensor): HashNode {
    let node = this.hash.get(t.id);
    if (!node) {
      node = { children: 0, views: 0, offset: 0, allocated: false };
      this.hash.set(t.id, node);
    }
    return node;
  }

  private isAllocated(t: Tensor): boolean {
    return t.external || this.get(t).allocated;
  }

  /** The first pass of ggml_gallocr_alloc_graph_impl: children and views of every tensor; explicit inputs get memory first. */
  countUses(graph: ComputeGraph): void {
    for (const node of graph.nodes) {
      if (node.isView) this.get(node.viewSrc!).views += 1;
      if (node.input) this.allocate(node);
      for (const src of node.src) {
        if (!src) continue;
        this.get(src).children += 1;
        if (src.input) this.allocate(src);
      }
    }
  }

  /** ggml_gallocr_allocate_node: reuse a parent's memory for an in-place op if it is free to take, else allocate. */
  allocate(node: Tensor): void {
    const hn = this.get(node);
    if (this.isAllocated(node) || node.isView) return;
    hn.allocated = true;
    if (canInplace(node.op) && this.takeParent(node, hn)) return;
    const before = this.allocator.maxSize;
    hn.offset = this.allocator.alloc(this.allocSize(node));
    this.live.set(node.id, node);
    if (this.allocator.maxSize > before) this.peak = [...this.live.values()].map((t) => ({ name: t.name, bytes: this.allocSize(t) }));
  }

  /** The in-place case: a parent (or the tensor a parent views) that only this node uses hands over its memory. */
  private takeParent(node: Tensor, hn: HashNode): boolean {
    for (const parent of node.src) {
      if (!parent) continue;
      if (!this.get(parent).allocated) continue; // external or not ours
      if (parent.output || parent.viewSrc?.output) continue;
      if (!sameLayout(node, parent)) continue;
      const phn = this.get(parent);
      if (phn.children !== 1 || phn.views !== 0) continue;
      if (parent.isView) {
        const viewSrc = parent.viewSrc!;
        const vhn = this.get(viewSrc);
        if (vhn.views !== 1 || vhn.children !== 0) continue;
        hn.offset = phn.offset;
        phn.allocated = false;
        vhn.allocated = false;
        this.live.delete(viewSrc.id);
        this.live.set(node.id, node);
        this.freeExtraSpace(node, viewSrc);
        return true;
      }
      hn.offset = phn.offset;
      phn.allocated = false;
      this.live.delete(parent.id);
      this.live.set(node.id, node);
      this.freeExtraSpace(node, parent);
      return true;
    }
    return false;
  }

  /** ggml_gallocr_free_extra_space: a node smaller than the parent it replaced gives the rest back. */
  private freeExtraSpace(node: Tensor, parent: Tensor): void {
    const parentSize = alignUp(this.allocSize(parent), this.alignment);
    const nodeSize = alignUp(this.allocSize(node), this.alignment);
    if (parentSize > nodeSize) this.allocator.free(this.get(parent).offset + nodeSize, parentSize - nodeSize);
  }

  /** A consumer of `parent` has run: free it (or, for a view, the tensor it views) after its last use. */
  release(parent: Tensor): void {
    const phn = this.get(parent);
    phn.children -= 1;
    if (phn.children !== 0 || phn.views !== 0) return;
    if (parent.isView) {
      const viewSrc = parent.viewSrc!;
      const vhn = this.get(viewSrc);
      vhn.views -= 1;
      if (vhn.views === 0 && vhn.children === 0 && vhn.allocated) this.free(viewSrc);
    } else if (phn.allocated) {
      this.free(parent);
    }
  }

  private free(node: Tensor): void {
    if (node.output) return;
    const hn = this.get(node);
    this.allocator.free(hn.offset, this.allocSize(node));
    hn.allocated = false;
    this.live.delete(node.id);
  }
}
