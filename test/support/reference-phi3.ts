// Phi-3's fused projections for the reference forward pass: qkv_proj stacks the q, k and v rows,
// gate_up_proj the gate rows then the up rows (transformers' Phi3Attention / Phi3MLP chunk them
// in that order). Shares no code with src/.

/** Consecutive row blocks of a row-major [sum(rows), cols] matrix. */
export function splitRows(weight: Float32Array, rows: readonly number[], cols: number): Float32Array[] {
  const total = rows.reduce((a, b) => a + b, 0);
  if (weight.length !== total * cols) throw new Error(`reference-phi3: fused weight has ${weight.length} values, expected ${total} x ${cols}`);
  const parts: Float32Array[] = [];
  let offset = 0;
  for (const r of rows) {
    parts.push(weight.subarray(offset * cols, (offset + r) * cols));
    offset += r;
  }
  return parts;
}
