/**
 * ggml's tensor types and llama.cpp's file types, in one place for the whole program: the
 * writers, the kernels, the readers and the fit model.
 *
 * The ids and names come from @huggingface/gguf (`GGMLQuantizationType` is ggml.h's
 * `enum ggml_type`, `GGMLFileQuantizationType` is llama.h's `enum llama_ftype`). The package
 * has no exported table of block layouts (its GGML_QUANT_SIZES is bits per weight, and
 * internal), so the block size and bytes per block of every type, from ggml/src/ggml-common.h,
 * are here. The table covers every type a GGUF file may hold, not only those edgequant
 * writes, so a GGUF made by another tool can still be inspected and fitted.
 */
import { GGMLFileQuantizationType, GGMLQuantizationType } from "@huggingface/gguf";

export { GGMLQuantizationType as GgmlType, GGMLFileQuantizationType as FileType };

interface GgmlTypeInfo {
  readonly id: GGMLQuantizationType;
  /** ggml_type_name(): "f32", "q4_K", "iq2_xxs" (what llama.cpp prints in its logs). */
  readonly name: string;
  readonly blockSize: number;
  readonly typeSize: number;
}

type T = GGMLQuantizationType;
const T = GGMLQuantizationType;

/** [elements per block, bytes per block]; a Record, so a type the package adds fails to compile until it is listed. */
const LAYOUTS: Readonly<Record<T, readonly [number, number]>> = {
  [T.F32]: [1, 4],
  [T.F16]: [1, 2],
  [T.Q4_0]: [32, 18],
  [T.Q4_1]: [32, 20],
  [T.Q5_0]: [32, 22],
  [T.Q5_1]: [32, 24],
  [T.Q8_0]: [32, 34],
  [T.Q8_1]: [32, 36],
  [T.Q2_K]: [256, 84],
  [T.Q3_K]: [256, 110],
  [T.Q4_K]: [256, 144],
  [T.Q5_K]: [256, 176],
  [T.Q6_K]: [256, 210],
  [T.Q8_K]: [256, 292],
  [T.IQ2_XXS]: [256, 66],
  [T.IQ2_XS]: [256, 74],
  [T.IQ3_XXS]: [256, 98],
  [T.IQ1_S]: [256, 50],
  [T.IQ4_NL]: [32, 18],
  [T.IQ3_S]: [256, 110],
  [T.IQ2_S]: [256, 82],
  [T.IQ4_XS]: [256, 136],
  [T.I8]: [1, 1],
  [T.I16]: [1, 2],
  [T.I32]: [1, 4],
  [T.I64]: [1, 8],
  [T.F64]: [1, 8],
  [T.IQ1_M]: [256, 56],
  [T.BF16]: [1, 2],
  [T.TQ1_0]: [256, 54],
  [T.TQ2_0]: [256, 66],
  [T.MXFP4]: [32, 17],
  [T.NVFP4]: [64, 36],
  [T.Q1_0]: [128, 18],
  [T.Q2_0]: [64, 18],
};

const TYPES: ReadonlyMap<number, GgmlTypeInfo> = new Map(
  (Object.entries(LAYOUTS) as [string, readonly [number, number]][]).map(([id, [blockSize, typeSize]]) => {
    const type = Number(id) as T;
    // ggml's names are the enum's in lower case, except that the k-quants keep a capital K.
    const name = T[type].toLowerCase().replace(/_k$/, "_K");
    return [type, { id: type, name, blockSize, typeSize }];
  }),
);
const BY_NAME: ReadonlyMap<string, GgmlTypeInfo> = new Map([...TYPES.values()].map((info) => [info.name.toLowerCase(), info]));

/** The enum's name: "Q4_K", "F16" (as edgequant's messages and reports write types). */
export function ggmlTypeName(type: T): string {
  return T[type] ?? `type ${type}`;
}

export function ggmlType(id: number): GgmlTypeInfo {
  const info = TYPES.get(id);
  if (!info) throw new Error(`unknown ggml type ${id}`);
  return info;
}

/** Looks a type up by its ggml name ("q8_0", "F16", ...); undefined if there is none. */
export function ggmlTypeByName(name: string): GgmlTypeInfo | undefined {
  return BY_NAME.get(name.toLowerCase());
}

export function blockSize(type: T): number {
  return ggmlType(type).blockSize;
}

/** Block-quantized, as opposed to a plain float or integer type. */
export function isQuantized(type: T): boolean {
  return ggmlType(type).blockSize > 1;
}

/** ggml_row_size(type, n): bytes of n elements (ggml asserts, without checking in release builds, that n is a whole number of blocks). */
export function rowSize(type: T, n: number): number {
  const { blockSize, typeSize } = ggmlType(type);
  return (typeSize * n) / blockSize;
}

/** rowSize for a row that is going to be written: refuses one that is not a whole number of blocks. */
export function rowBytes(type: T, rowLength: number): number {
  const size = blockSize(type);
  if (rowLength % size !== 0) throw new Error(`row of ${rowLength} is not a multiple of ${ggmlTypeName(type)}'s block size ${size}`);
  return rowSize(type, rowLength);
}

/** ggml_nbytes of a contiguous tensor with ggml dims `ne` (innermost first). */
export function contiguousBytes(type: T, ne: readonly number[]): number {
  const [first = 1, ...rest] = ne;
  return rowSize(type, first) * rest.reduce((a, b) => a * b, 1);
}

/** Bytes of a tensor whose innermost dimension is the last entry of `shape` (PyTorch order); rows must be whole blocks. */
export function tensorBytes(type: T, shape: readonly number[]): number {
  const rowLength = shape.at(-1) ?? 1;
  return rowBytes(type, rowLength) * shape.slice(0, -1).reduce((a, b) => a * b, 1);
}

/** GGUF's default (and llama.cpp's) alignment of tensor data. */
export const TENSOR_ALIGNMENT = 32;

export function alignUp(value: number, alignment: number): number {
  return Math.ceil(value / alignment) * alignment;
}

/**
 * The name llama.cpp's quantize tool gives `general.file_type` (enum llama_ftype): "Q4_K_M",
 * "F16", "MXFP4_MOE"; "file type N" for a number llama.cpp does not define.
 */
export function fileTypeName(fileType: number): string {
  // The package's enum also holds names of its own (1000 and up) that are not llama_ftype values.
  const name = fileType < 1000 ? GGMLFileQuantizationType[fileType] : undefined;
  return name ?? `file type ${fileType}`;
}
