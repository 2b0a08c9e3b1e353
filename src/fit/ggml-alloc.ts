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
  const allocator = new DynamicAllocator(alignment);
  const hash = new Map<number, HashNode>();
  const live = new Map<number, Tensor>();
  let peak: { name: string; bytes: number }[] = [];
  const get = (t: Tensor): HashNode => {
    let node = hash.get(t.id);
    if (!node) {
      node = { children: 0, views: 0, offset: 0, allocated: false };
      hash.set(t.id, node);
    }
    return node;
  };
  const isAllocated = (t: Tensor) => t.external || get(t).allocated;

  const freeExtraSpace = (node: Tensor, parent: Tensor) => {
    const parentSize = alignUp(allocSize(parent), alignment);
    const nodeSize = alignUp(allocSize(node), alignment);
    if (parentSize > nodeSize) allocator.free(get(parent).offset + nodeSize, parentSize - nodeSize);
  };

  const allocateNode = (node: Tensor) => {
    const hn = get(node);
    if (isAllocated(node) || node.isView) return;
    hn.allocated = true;
    if (canInplace(node.op)) {
      for (const parent of node.src) {
        if (!parent) continue;
        if (!get(parent).allocated) continue; // external or not ours
        if (parent.output || parent.viewSrc?.output) continue;
        if (!sameLayout(node, parent)) continue;
        const phn = get(parent);
        if (phn.children === 1 && phn.views === 0) {
          if (parent.isView) {
            const viewSrc = parent.viewSrc!;
            const vhn = get(viewSrc);
            if (vhn.views === 1 && vhn.children === 0) {
              hn.offset = phn.offset;
              phn.allocated = false;
              vhn.allocated = false;
              live.delete(viewSrc.id);
              live.set(node.id, node);
              freeExtraSpace(node, viewSrc);
              return;
            }
          } else {
            hn.offset = phn.offset;
            phn.allocated = false;
            live.delete(parent.id);
            live.set(node.id, node);
            freeExtraSpace(node, parent);
            return;
          }
        }
      }
    }
    const before = allocator.maxSize;
    hn.offset = allocator.alloc(allocSize(node));
    live.set(node.id, node);
    if (allocator.maxSize > before) peak = [...live.values()].map((t) => ({ name: t.name, bytes: allocSize(t) }));
  };

  const freeNode = (node: Tensor) => {
    if (node.output) return;
    const hn = get(node);
    allocator.free(hn.offset, allocSize(node));
    hn.allocated = false;
    live.delete(node.id);
  };

  for (const leaf of graph.leafs) allocateNode(leaf);

  for (const node of graph.nodes) {
    if (node.isView) get(node.viewSrc!).views += 1;
    if (node.input) allocateNode(node);
    for (const src of node.src) {
      if (!src) continue;
      get(src).children += 1;
      if (src.input) allocateNode(src);
    }
  }

  for (const node of graph.nodes) {
    for (const parent of node.src) if (parent) allocateNode(parent);
    allocateNode(node);
    for (const parent of node.src) {
      if (!parent) continue;
      const phn = get(parent);
      phn.children -= 1;
      if (phn.children === 0 && phn.views === 0) {
        if (parent.isView) {
          const viewSrc = parent.viewSrc!;
          const vhn = get(viewSrc);
          vhn.views -= 1;
          if (vhn.views === 0 && vhn.children === 0 && vhn.allocated) freeNode(viewSrc);
        } else if (phn.allocated) {
          freeNode(parent);
        }
      }
    }
  }
  return { bytes: allocator.maxSize, peak };
}
