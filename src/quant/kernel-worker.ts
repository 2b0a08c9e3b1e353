/**
 * Piscina worker for the quantization kernels: each worker thread instantiates the WASM
 * module once (on its first task, through kernels.ts) and quantizes the row ranges it is
 * sent. Input arrives and output leaves as transferred buffers, so nothing is copied twice.
 */

import { move } from "piscina";
import type { GgmlType } from "./ggml-types.js";
import { quantizeRows } from "./kernels.js";

export interface QuantizeTask {
  readonly type: GgmlType;
  readonly rowLength: number;
  /** Whole rows; its buffer is transferred to the worker. */
  readonly values: Float32Array;
}

export default function quantizeTask(task: QuantizeTask): Uint8Array {
  const bytes = quantizeRows(task.type, task.values, task.rowLength);
  return move(bytes) as Uint8Array;
}
