/**
 * A thin layer over onnx-proto (protobufjs static code for onnx.proto): the element
 * types we use, value infos, attributes, and ModelProto encoding. Weights never pass
 * through here as bytes: initializers are written with `data_location = EXTERNAL`
 * and location / offset / length entries, so the encoded ModelProto stays small
 * however large the model is (see external-data.ts).
 */
import onnxProto from "onnx-proto";

const { onnx } = onnxProto;

export type TensorProto = onnxProto.onnx.ITensorProto;
export type NodeProto = onnxProto.onnx.INodeProto;
export type ValueInfoProto = onnxProto.onnx.IValueInfoProto;
type AttributeProto = onnxProto.onnx.IAttributeProto;
export type ModelProto = onnxProto.onnx.IModelProto;

/** onnx.TensorProto.DataType values for the element types the decoder graph uses. */
export const ElementType = {
  FLOAT: 1,
  UINT8: 2,
  INT32: 6,
  INT64: 7,
  FLOAT16: 10,
} as const;
export type ElementType = (typeof ElementType)[keyof typeof ElementType];

export const ELEMENT_BYTES: Record<ElementType, number> = { 1: 4, 2: 1, 6: 4, 7: 8, 10: 2 };

/** A dimension: a fixed size or a symbolic name (batch_size, sequence_length, ...). */
export type Dim = number | string;

export function valueInfo(name: string, elemType: ElementType, shape: readonly Dim[]): ValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: shape.map((d) => (typeof d === "number" ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

export type AttributeValue = number | string | readonly number[] | { float: number };

const AttributeType = onnx.AttributeProto.AttributeType;

/** Integers become INT attributes; `{ float: x }` (or a non-integer number) a FLOAT one. */
export function attribute(name: string, value: AttributeValue): AttributeProto {
  if (typeof value === "string") return { name, type: AttributeType.STRING, s: new TextEncoder().encode(value) };
  if (Array.isArray(value)) return { name, type: AttributeType.INTS, ints: [...(value as readonly number[])] };
  if (typeof value === "object") return { name, type: AttributeType.FLOAT, f: (value as { float: number }).float };
  const n = value as number;
  return Number.isInteger(n) ? { name, type: AttributeType.INT, i: n } : { name, type: AttributeType.FLOAT, f: n };
}

/** An initializer whose bytes are in an external data file. */
export function externalTensor(name: string, elemType: ElementType, dims: readonly number[], location: string, offset: number, length: number): TensorProto {
  return {
    name,
    dataType: elemType,
    dims: [...dims],
    dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
    externalData: [
      { key: "location", value: location },
      { key: "offset", value: String(offset) },
      { key: "length", value: String(length) },
    ],
  };
}

/** A small initializer stored inside the model file. */
export function inlineTensor(name: string, elemType: ElementType, dims: readonly number[], bytes: Uint8Array): TensorProto {
  return { name, dataType: elemType, dims: [...dims], rawData: bytes };
}

export function int64Bytes(values: readonly number[]): Uint8Array {
  const out = new BigInt64Array(values.map((v) => BigInt(v)));
  return new Uint8Array(out.buffer);
}

export function encodeModel(model: ModelProto): Uint8Array {
  const error = onnx.ModelProto.verify(model);
  if (error) throw new Error(`internal: invalid ModelProto: ${error}`);
  return onnx.ModelProto.encode(model).finish();
}

export function decodeModel(bytes: Uint8Array): onnxProto.onnx.ModelProto {
  return onnx.ModelProto.decode(bytes);
}
