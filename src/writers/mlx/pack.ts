/**
 * MLX's packing of quantized integers into uint32 words.
 *
 * mlx/backend/cpu/quantized.cpp `quantize` ORs value k of a pack into bit
 * k * bits of the pack, least significant first. For 2, 4 and 8 bits a pack is
 * one uint32 (32 / bits values). For 3 and 5 bits a pack is 8 values in 3 or 5
 * bytes, for 6 bits 4 values in 3 bytes, written byte by byte little-endian
 * (get_pack_factor / get_bytes_per_pack in mlx/backend/common/quantized.h), and
 * the byte buffer is the uint32 array MLX returns. Either way the result is one
 * continuous least-significant-bit-first bit stream over the row-major values,
 * read as little-endian uint32 words, so a 3-, 5- or 6-bit value can straddle
 * two words. Every row holds a multiple of 32 values (group sizes are 32, 64 or
 * 128), so every row starts on a word boundary.
 */

/** Number of uint32 words `count` values of `bits` bits occupy. */
export function packedWords(count: number, bits: number): number {
  const totalBits = count * bits;
  if (totalBits % 32 !== 0) throw new Error(`packedWords: ${count} values of ${bits} bits do not fill whole words`);
  return totalBits / 32;
}

/** Packs `q` (each value < 2^bits) into `out`, which must hold packedWords(q.length, bits) words. */
export function packBits(q: Uint8Array, bits: number, out: Uint32Array): void {
  const words = packedWords(q.length, bits);
  if (out.length < words) throw new Error(`packBits: output holds ${out.length} words, ${words} needed`);
  if (32 % bits === 0) {
    const perWord = 32 / bits;
    for (let w = 0, i = 0; w < words; w++) {
      let word = 0;
      for (let k = 0; k < perWord; k++, i++) word |= q[i]! << (k * bits);
      out[w] = word >>> 0;
    }
    return;
  }
  // 3, 5 and 6 bits: fill a 32-bit accumulator; a value that does not fit continues the next word.
  let accumulator = 0;
  let filled = 0;
  let w = 0;
  for (let i = 0; i < q.length; i++) {
    const value = q[i]!;
    accumulator |= value << filled; // bits past 32 fall off here and are carried below
    filled += bits;
    if (filled >= 32) {
      out[w++] = accumulator >>> 0;
      filled -= 32;
      accumulator = filled > 0 ? value >>> (bits - filled) : 0;
    }
  }
}

/** Reads the values back (for dequantizing our own output in tools and tests). */
export function unpackBits(words: Uint32Array, bits: number, count: number): Uint8Array {
  const out = new Uint8Array(count);
  const mask = (1 << bits) - 1;
  for (let i = 0; i < count; i++) {
    const bit = i * bits;
    const word = bit >>> 5;
    const shift = bit & 31;
    let value = words[word]! >>> shift;
    if (shift + bits > 32) value |= words[word + 1]! << (32 - shift);
    out[i] = value & mask;
  }
  return out;
}
