import { GGUFValueType } from "@huggingface/gguf";

/**
 * One GGUF key/value. The value type is explicit because GGUF distinguishes
 * u32 from i32 from f32, and llama.cpp rejects a key stored with the wrong one.
 */
type NumberValueType =
  | GGUFValueType.UINT8 | GGUFValueType.INT8 | GGUFValueType.UINT16 | GGUFValueType.INT16
  | GGUFValueType.UINT32 | GGUFValueType.INT32 | GGUFValueType.FLOAT32 | GGUFValueType.FLOAT64;
type BigIntValueType = GGUFValueType.UINT64 | GGUFValueType.INT64;

export type GgufValue =
  | { type: NumberValueType; value: number }
  | { type: BigIntValueType; value: bigint }
  | { type: GGUFValueType.BOOL; value: boolean }
  | { type: GGUFValueType.STRING; value: string }
  | { type: GGUFValueType.ARRAY; itemType: NumberValueType; value: ArrayLike<number> }
  | { type: GGUFValueType.ARRAY; itemType: BigIntValueType; value: readonly bigint[] }
  | { type: GGUFValueType.ARRAY; itemType: GGUFValueType.BOOL; value: readonly boolean[] }
  | { type: GGUFValueType.ARRAY; itemType: GGUFValueType.STRING; value: readonly string[] };

/** A scalar GGUF value: any value but an array. */
export type GgufScalar = Exclude<GgufValue, { type: GGUFValueType.ARRAY }>;

export type GgufMetadata = Map<string, GgufValue>;

export const u32 = (value: number): GgufValue => ({ type: GGUFValueType.UINT32, value });
export const i32 = (value: number): GgufValue => ({ type: GGUFValueType.INT32, value });
export const f32 = (value: number): GgufValue => ({ type: GGUFValueType.FLOAT32, value });
export const bool = (value: boolean): GgufValue => ({ type: GGUFValueType.BOOL, value });
export const str = (value: string): GgufValue => ({ type: GGUFValueType.STRING, value });
export const strings = (value: readonly string[]): GgufValue => ({ type: GGUFValueType.ARRAY, itemType: GGUFValueType.STRING, value });
export const f32s = (value: ArrayLike<number>): GgufValue => ({ type: GGUFValueType.ARRAY, itemType: GGUFValueType.FLOAT32, value });
export const i32s = (value: ArrayLike<number>): GgufValue => ({ type: GGUFValueType.ARRAY, itemType: GGUFValueType.INT32, value });
