/**
 * ggml tensor types as the fit model needs them: every type a GGUF file may hold (ggml/include/ggml.h
 * `enum ggml_type`), with the block size and bytes per block of ggml/src/ggml-common.h. Unlike
 * src/quant/ggml-types.ts (the types edgequant can write), this covers everything llama.cpp can load,
 * so a GGUF made by another tool still gets a manifest.
 */

export interface GgmlTypeInfo {
  readonly id: number;
  /** ggml_type_name(): "f32", "q4_K", ... (llama.cpp prints these in its logs). */
  readonly name: string;
  readonly blockSize: number;
  readonly typeSize: number;
}

const TYPES: readonly GgmlTypeInfo[] = [
  { id: 0, name: "f32", blockSize: 1, typeSize: 4 },
  { id: 1, name: "f16", blockSize: 1, typeSize: 2 },
  { id: 2, name: "q4_0", blockSize: 32, typeSize: 18 },
  { id: 3, name: "q4_1", blockSize: 32, typeSize: 20 },
  { id: 6, name: "q5_0", blockSize: 32, typeSize: 22 },
  { id: 7, name: "q5_1", blockSize: 32, typeSize: 24 },
  { id: 8, name: "q8_0", blockSize: 32, typeSize: 34 },
  { id: 9, name: "q8_1", blockSize: 32, typeSize: 36 },
  { id: 10, name: "q2_K", blockSize: 256, typeSize: 84 },
  { id: 11, name: "q3_K", blockSize: 256, typeSize: 110 },
  { id: 12, name: "q4_K", blockSize: 256, typeSize: 144 },
  { id: 13, name: "q5_K", blockSize: 256, typeSize: 176 },
  { id: 14, name: "q6_K", blockSize: 256, typeSize: 210 },
  { id: 15, name: "q8_K", blockSize: 256, typeSize: 292 },
  { id: 16, name: "iq2_xxs", blockSize: 256, typeSize: 66 },
  { id: 17, name: "iq2_xs", blockSize: 256, typeSize: 74 },
  { id: 18, name: "iq3_xxs", blockSize: 256, typeSize: 98 },
  { id: 19, name: "iq1_s", blockSize: 256, typeSize: 50 },
  { id: 20, name: "iq4_nl", blockSize: 32, typeSize: 18 },
  { id: 21, name: "iq3_s", blockSize: 256, typeSize: 110 },
  { id: 22, name: "iq2_s", blockSize: 256, typeSize: 82 },
  { id: 23, name: "iq4_xs", blockSize: 256, typeSize: 136 },
  { id: 24, name: "i8", blockSize: 1, typeSize: 1 },
  { id: 25, name: "i16", blockSize: 1, typeSize: 2 },
  { id: 26, name: "i32", blockSize: 1, typeSize: 4 },
  { id: 27, name: "i64", blockSize: 1, typeSize: 8 },
  { id: 28, name: "f64", blockSize: 1, typeSize: 8 },
  { id: 29, name: "iq1_m", blockSize: 256, typeSize: 56 },
  { id: 30, name: "bf16", blockSize: 1, typeSize: 2 },
  { id: 34, name: "tq1_0", blockSize: 256, typeSize: 54 },
  { id: 35, name: "tq2_0", blockSize: 256, typeSize: 66 },
  { id: 39, name: "mxfp4", blockSize: 32, typeSize: 17 },
  { id: 40, name: "nvfp4", blockSize: 64, typeSize: 36 },
  { id: 41, name: "q1_0", blockSize: 128, typeSize: 18 },
  { id: 42, name: "q2_0", blockSize: 64, typeSize: 18 },
];

const BY_ID = new Map(TYPES.map((t) => [t.id, t]));
const BY_NAME = new Map(TYPES.map((t) => [t.name.toLowerCase(), t]));

export const GGML = {
  F32: 0,
  F16: 1,
  Q4_0: 2,
  Q4_1: 3,
  Q5_0: 6,
  Q5_1: 7,
  Q8_0: 8,
  Q2_K: 10,
  Q3_K: 11,
  Q4_K: 12,
  Q5_K: 13,
  Q6_K: 14,
  IQ4_NL: 20,
  I32: 26,
  I64: 27,
  BF16: 30,
  MXFP4: 39,
  Q1_0: 41,
} as const;

export function ggmlType(id: number): GgmlTypeInfo {
  const info = BY_ID.get(id);
  if (!info) throw new Error(`unknown ggml type ${id}`);
  return info;
}

/** Looks a type up by its ggml name ("q8_0", "F16", ...); undefined if there is none. */
export function ggmlTypeByName(name: string): GgmlTypeInfo | undefined {
  return BY_NAME.get(name.toLowerCase());
}

export function isQuantized(id: number): boolean {
  return ggmlType(id).blockSize > 1;
}

/** ggml_row_size(type, n). */
export function rowSize(id: number, n: number): number {
  const { blockSize, typeSize } = ggmlType(id);
  return (typeSize * n) / blockSize;
}

/** ggml_nbytes of a contiguous tensor with ggml dims `ne` (innermost first). */
export function contiguousBytes(id: number, ne: readonly number[]): number {
  const [first = 1, ...rest] = ne;
  return rowSize(id, first) * rest.reduce((a, b) => a * b, 1);
}

export const TENSOR_ALIGNMENT = 32;

export function alignUp(value: number, alignment: number): number {
  return Math.ceil(value / alignment) * alignment;
}
