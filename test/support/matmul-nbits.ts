// An unpacker for ONNX Runtime's block-quantized weights, written from the com.microsoft operator
// specs (MatMulNBits, and GatherBlockQuantized with uint8 data, which follows MatMulNBits'
// conventions) and sharing nothing with src/:
//
//   B            uint8 [N, kBlocks, blockSize * bits / 8]  codes packed along K, lowest bits first
//                (4-bit: element 2i is the low nibble of byte i, 2i + 1 the high nibble)
//   scales       float32 or float16 [N, kBlocks]
//   zero_points  uint8 [N, ceil(kBlocks * bits / 8)], packed the same way; absent: 2^(bits - 1)
//                (8 for 4-bit, 128 for 8-bit, 2 for 2-bit)
//   W[n, k] = (code - zero_point) * scale, in float32.
//
// GatherBlockQuantized stores its uint8 data as [N, K * bits / 8]: for K a multiple of the block
// size that is the same bytes as MatMulNBits' [N, kBlocks, blob].

export interface NBitsShape {
  readonly n: number;
  readonly k: number;
  readonly bits: number;
  readonly blockSize: number;
}

/** ONNX TensorProto.DataType values the scales can have. */
export const ONNX_FLOAT = 1;
export const ONNX_FLOAT16 = 10;

/** IEEE half -> float, from the bit layout (1 sign, 5 exponent, 10 mantissa bits). */
export function halfToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0x1f) return mantissa ? Number.NaN : sign * Infinity;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** Scales stored as float32 or float16 bytes (little-endian), as float numbers. */
export function decodeScales(bytes: Uint8Array, dataType: number): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dataType === ONNX_FLOAT) return Float32Array.from({ length: bytes.length / 4 }, (_, i) => view.getFloat32(4 * i, true));
  if (dataType === ONNX_FLOAT16) return Float32Array.from({ length: bytes.length / 2 }, (_, i) => halfToFloat(view.getUint16(2 * i, true)));
  throw new Error(`scales of ONNX data type ${dataType}: expected float (1) or float16 (10)`);
}

/** The `bits`-wide field at position `index` of a low-bits-first packed byte array. */
function field(bytes: Uint8Array, index: number, bits: number): number {
  const bit = index * bits;
  return (bytes[bit >> 3]! >> (bit & 7)) & ((1 << bits) - 1);
}

/** The dequantized [N, K] matrix, row-major. */
export function unpackNBits(shape: NBitsShape, b: Uint8Array, scales: Float32Array, zeroPoints?: Uint8Array): Float32Array {
  const { n, k, bits, blockSize } = shape;
  if (![2, 4, 8].includes(bits)) throw new Error(`${bits}-bit codes: MatMulNBits packs 2, 4 or 8`);
  const kBlocks = Math.ceil(k / blockSize);
  const blob = (blockSize * bits) / 8;
  const zeroPointRow = Math.ceil((kBlocks * bits) / 8);
  if (b.length !== n * kBlocks * blob) throw new Error(`B holds ${b.length} bytes; [${n}, ${kBlocks}, ${blob}] needs ${n * kBlocks * blob}`);
  if (scales.length !== n * kBlocks) throw new Error(`${scales.length} scales; [${n}, ${kBlocks}] needs ${n * kBlocks}`);
  if (zeroPoints && zeroPoints.length !== n * zeroPointRow) throw new Error(`zero_points holds ${zeroPoints.length} bytes; [${n}, ${zeroPointRow}] needs ${n * zeroPointRow}`);
  const out = new Float32Array(n * k);
  for (let row = 0; row < n; row++) {
    for (let block = 0; block < kBlocks; block++) {
      const scale = scales[row * kBlocks + block]!;
      const zero = zeroPoints ? field(zeroPoints.subarray(row * zeroPointRow, (row + 1) * zeroPointRow), block, bits) : 1 << (bits - 1);
      const codes = b.subarray((row * kBlocks + block) * blob, (row * kBlocks + block + 1) * blob);
      for (let i = 0; i < blockSize && block * blockSize + i < k; i++) {
        out[row * k + block * blockSize + i] = Math.fround((field(codes, i, bits) - zero) * scale);
      }
    }
  }
  return out;
}
