import { GGUFValueType } from "@huggingface/gguf";
import type { GgufScalar, GgufValue } from "./metadata.js";

/** Growable little-endian byte sink for the GGUF header. */
export class HeaderEncoder {
  private bytes = new Uint8Array(1 << 16);
  private view = new DataView(this.bytes.buffer);
  length = 0;

  /** Grows the buffer if needed and returns the offset to write at; call it before reading `this.view`. */
  private reserve(extra: number): number {
    const at = this.length;
    if (at + extra > this.bytes.length) {
      const grown = new Uint8Array(Math.max(this.bytes.length * 2, at + extra));
      grown.set(this.bytes.subarray(0, at));
      this.bytes = grown;
      this.view = new DataView(grown.buffer);
    }
    this.length += extra;
    return at;
  }

  u8(v: number) { const at = this.reserve(1); this.view.setUint8(at, v); }
  i8(v: number) { const at = this.reserve(1); this.view.setInt8(at, v); }
  u16(v: number) { const at = this.reserve(2); this.view.setUint16(at, v, true); }
  i16(v: number) { const at = this.reserve(2); this.view.setInt16(at, v, true); }
  u32(v: number) { const at = this.reserve(4); this.view.setUint32(at, v, true); }
  i32(v: number) { const at = this.reserve(4); this.view.setInt32(at, v, true); }
  f32(v: number) { const at = this.reserve(4); this.view.setFloat32(at, v, true); }
  f64(v: number) { const at = this.reserve(8); this.view.setFloat64(at, v, true); }
  u64(v: bigint | number) { const at = this.reserve(8); this.view.setBigUint64(at, BigInt(v), true); }
  i64(v: bigint) { const at = this.reserve(8); this.view.setBigInt64(at, v, true); }

  raw(data: Uint8Array) {
    const at = this.reserve(data.length);
    this.bytes.set(data, at);
  }

  /** GGUF strings: u64 byte length, then UTF-8 without a terminator. */
  string(s: string) {
    const utf8 = Buffer.from(s, "utf8");
    this.u64(utf8.length);
    this.raw(utf8);
  }

  padTo(alignment: number) {
    const padding = (alignment - (this.length % alignment)) % alignment;
    this.reserve(padding); // fresh bytes are zero: reserve only grows into zeroed memory
  }

  value(v: GgufValue) {
    if (v.type !== GGUFValueType.ARRAY) return this.scalar(v);
    this.u32(v.itemType);
    this.u64(v.value.length);
    for (let i = 0; i < v.value.length; i++) this.scalar({ type: v.itemType, value: v.value[i] } as GgufScalar);
  }

  private scalar(v: GgufScalar) {
    switch (v.type) {
      case GGUFValueType.UINT8: return this.u8(v.value);
      case GGUFValueType.INT8: return this.i8(v.value);
      case GGUFValueType.UINT16: return this.u16(v.value);
      case GGUFValueType.INT16: return this.i16(v.value);
      case GGUFValueType.UINT32: return this.u32(v.value);
      case GGUFValueType.INT32: return this.i32(v.value);
      case GGUFValueType.FLOAT32: return this.f32(v.value);
      case GGUFValueType.FLOAT64: return this.f64(v.value);
      case GGUFValueType.UINT64: return this.u64(v.value);
      case GGUFValueType.INT64: return this.i64(v.value);
      case GGUFValueType.BOOL: return this.u8(v.value ? 1 : 0);
      case GGUFValueType.STRING: return this.string(v.value);
    }
  }

  finish(): Uint8Array {
    return this.bytes.subarray(0, this.length);
  }
}
