/**
 * Quantizes a tensor on several threads: rows are split into contiguous ranges, each range is
 * quantized by a piscina worker running the WASM kernels, and the results are laid out in row
 * order. Every block is quantized independently of the others, so the bytes are the same for
 * any thread count or split (and equal to quantizeRows on one thread).
 */

import { availableParallelism } from "node:os";
import { Piscina } from "piscina";
import type { GgmlType } from "./ggml-types.js";
import { quantizedSize } from "./kernels.js";
import type { QuantizeTask } from "./kernel-worker.js";

interface KernelPoolOptions {
  /** Worker threads (default: available parallelism). */
  readonly threads?: number;
}

// From src/ under tsx or vitest the worker is TypeScript and needs tsx in the worker too;
// from dist/ it is plain JavaScript.
const fromSource = import.meta.url.endsWith(".ts");
const WORKER = new URL(fromSource ? "./kernel-worker.ts" : "./kernel-worker.js", import.meta.url);

type RunOptions = NonNullable<Parameters<Piscina["run"]>[1]>;

/** Run options that transfer `buffer`. (Piscina derives its TransferList type from MessagePort's
 * postMessage overloads, which newer @types/node declare with an options-object form first.) */
function transfer(buffer: ArrayBuffer): RunOptions {
  return { transferList: [buffer] } as unknown as RunOptions;
}

export class KernelPool {
  readonly threads: number;
  private readonly pool: Piscina<QuantizeTask, Uint8Array>;

  constructor(options: KernelPoolOptions = {}) {
    this.threads = Math.max(1, Math.floor(options.threads ?? availableParallelism()));
    this.pool = new Piscina<QuantizeTask, Uint8Array>({
      filename: WORKER.href,
      minThreads: this.threads,
      maxThreads: this.threads,
      idleTimeout: 30_000,
      // Workers need only tsx (resolved from here, so any working folder works), not the parent's
      // other preloads; from dist/ they need nothing.
      execArgv: fromSource ? ["--import", import.meta.resolve("tsx")] : [],
    });
  }

  /** Same result as quantizeRows(type, values, rowLength), computed on the pool's threads. */
  async quantizeRows(type: GgmlType, values: Float32Array, rowLength: number): Promise<Uint8Array> {
    const out = new Uint8Array(quantizedSize(type, values.length, rowLength));
    const rows = values.length / rowLength;
    if (rows === 0) return out;
    const rowSize = out.byteLength / rows;
    // A few ranges per thread balance uneven speeds; ranges are whole rows.
    const ranges = Math.min(rows, this.threads * 4);
    const jobs: Promise<void>[] = [];
    for (let r = 0; r < ranges; r++) {
      const first = Math.floor((rows * r) / ranges);
      const end = Math.floor((rows * (r + 1)) / ranges);
      if (end === first) continue;
      const slice = values.slice(first * rowLength, end * rowLength); // own buffer, transferred
      jobs.push(
        this.pool.run({ type, rowLength, values: slice }, transfer(slice.buffer)).then((bytes) => {
          if (bytes.byteLength !== (end - first) * rowSize) throw new Error(`internal: worker returned ${bytes.byteLength} bytes for ${end - first} rows`);
          out.set(bytes, first * rowSize);
        }),
      );
    }
    await Promise.all(jobs);
    return out;
  }

  async destroy(): Promise<void> {
    await this.pool.destroy();
  }
}
