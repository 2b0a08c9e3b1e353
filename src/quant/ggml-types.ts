import { GGMLQuantizationType } from "@huggingface/gguf";

export { GGMLQuantizationType as GgmlType };

/** Elements per block and bytes per block, as in ggml's type traits. */
interface TypeTraits {
  readonly blockSize: number;
  readonly typeSize: number;
}

const TRAITS: Partial<Record<GGMLQuantizationType, TypeTraits>> = {
  [GGMLQuantizationType.F32]: { blockSize: 1, typeSize: 4 },
  [GGMLQuantizationType.F16]: { blockSize: 1, typeSize: 2 },
  [GGMLQuantizationType.BF16]: { blockSize: 1, typeSize: 2 },
  [GGMLQuantizationType.Q4_0]: { blockSize: 32, typeSize: 18 },
  [GGMLQuantizationType.Q4_1]: { blockSize: 32, typeSize: 20 },
  [GGMLQuantizationType.Q5_0]: { blockSize: 32, typeSize: 22 },
  [GGMLQuantizationType.Q5_1]: { blockSize: 32, typeSize: 24 },
  [GGMLQuantizationType.Q8_0]: { blockSize: 32, typeSize: 34 },
  [GGMLQuantizationType.Q2_K]: { blockSize: 256, typeSize: 84 },
  [GGMLQuantizationType.Q3_K]: { blockSize: 256, typeSize: 110 },
  [GGMLQuantizationType.Q4_K]: { blockSize: 256, typeSize: 144 },
  [GGMLQuantizationType.Q5_K]: { blockSize: 256, typeSize: 176 },
  [GGMLQuantizationType.Q6_K]: { blockSize: 256, typeSize: 210 },
  [GGMLQuantizationType.TQ1_0]: { blockSize: 256, typeSize: 54 },
  [GGMLQuantizationType.TQ2_0]: { blockSize: 256, typeSize: 66 },
};

export function ggmlTypeName(type: GGMLQuantizationType): string {
  return GGMLQuantizationType[type] ?? `type ${type}`;
}

function traits(type: GGMLQuantizationType): TypeTraits {
  const found = TRAITS[type];
  if (!found) throw new Error(`ggml type ${ggmlTypeName(type)} is not supported by edgequant`);
  return found;
}

/** Bytes of one row of `rowLength` elements; the row must be a whole number of blocks. */
export function rowBytes(type: GGMLQuantizationType, rowLength: number): number {
  const { blockSize, typeSize } = traits(type);
  if (rowLength % blockSize !== 0) throw new Error(`row of ${rowLength} is not a multiple of ${ggmlTypeName(type)}'s block size ${blockSize}`);
  return (rowLength / blockSize) * typeSize;
}

/** Bytes of a tensor whose innermost dimension is the last entry of `shape` (PyTorch order). */
export function tensorBytes(type: GGMLQuantizationType, shape: readonly number[]): number {
  const rowLength = shape.at(-1) ?? 1;
  const rows = shape.slice(0, -1).reduce((a, b) => a * b, 1);
  return rows * rowBytes(type, rowLength);
}

export function blockSize(type: GGMLQuantizationType): number {
  return traits(type).blockSize;
}
