// ggml itself as the oracle for the quantization kernels: libggml-base from node-llama-cpp's
// prebuilt binaries (never built or downloaded), called through koffi.
//
//   quantize   → ggml_quantize_chunk(type, src, dst, 0, nrows, n_per_row, imatrix = NULL)
//   dequantize → ggml_get_type_traits(type)->to_float
//   f32ToF16   → ggml_fp32_to_fp16_row,  f32ToBf16 → ggml_fp32_to_bf16_row
//
// Set EDGEQUANT_GGML_BASE to a libggml-base path to use another build.

import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import koffi from "koffi";
import { ORACLES, OracleMissingError } from "./oracle.js";

export interface GgmlOracle {
  readonly libraryPath: string;
  /** ggml's type name (e.g. "q4_K"), a cross-check that enum values line up. */
  typeName(type: number): string;
  rowSize(type: number, rowLength: number): number;
  /** ggml_blck_size and ggml_type_size: elements and bytes per block. */
  blockSize(type: number): number;
  typeSize(type: number): number;
  quantize(type: number, values: Float32Array, rowLength: number): Uint8Array;
  /** quantize into a caller's buffer of exactly the right size (for benchmarks). */
  quantizeInto(type: number, values: Float32Array, rowLength: number, out: Uint8Array): void;
  dequantize(type: number, bytes: Uint8Array, count: number): Float32Array;
  dequantizeInto(type: number, bytes: Uint8Array, out: Float32Array): void;
  f32ToF16(values: Float32Array): Uint16Array;
  f32ToBf16(values: Float32Array): Uint16Array;
}

const LIBRARY = process.platform === "win32" ? "ggml-base.dll" : process.platform === "darwin" ? "libggml-base.dylib" : "libggml-base.so";

function findLibrary(): string | undefined {
  const override = process.env["EDGEQUANT_GGML_BASE"];
  if (override) return override;
  const root = fileURLToPath(new URL("../../node_modules/@node-llama-cpp/", import.meta.url));
  // CPU-only package for this platform first (its ggml-base has no GPU dependencies).
  const packages = [`${process.platform}-${process.arch}`];
  for (const pkg of packages) {
    const bins = join(root, pkg, "bins");
    if (!existsSync(bins)) continue;
    for (const dir of readdirSync(bins)) {
      const candidate = join(bins, dir, LIBRARY);
      if (existsSync(candidate)) return candidate;
    }
  }
  return undefined;
}

let cached: { oracle: GgmlOracle } | { error: string } | undefined;

/** ggml for a test: a missing or unloadable library is an OracleMissingError, so the suite fails. */
export function requireGgml(): GgmlOracle {
  const loaded = loadGgmlOracle();
  if ("error" in loaded) throw new OracleMissingError(ORACLES.ggml, new Error(loaded.error));
  return loaded.oracle;
}

/** Loads ggml once per process. Never throws: a missing library is reported as `error` (for bench/kernels.ts). */
export function loadGgmlOracle(): { oracle: GgmlOracle } | { error: string } {
  cached ??= open();
  return cached;
}

function open(): { oracle: GgmlOracle } | { error: string } {
  const libraryPath = findLibrary();
  if (!libraryPath) return { error: `${LIBRARY} not found under node_modules/@node-llama-cpp/${process.platform}-${process.arch}/bins` };
  try {
    return { oracle: bind(libraryPath) };
  } catch (error) {
    return { error: `could not load ${libraryPath}: ${(error as Error).message}` };
  }
}

function bind(libraryPath: string): GgmlOracle {
  const lib = koffi.load(libraryPath);
  const quantizeChunk = lib.func(
    "size_t ggml_quantize_chunk(int type, const float *src, void *dst, int64_t start, int64_t nrows, int64_t n_per_row, const float *imatrix)",
  );
  const rowSizeFn = lib.func("size_t ggml_row_size(int type, int64_t ne)");
  const blckSizeFn = lib.func("int64_t ggml_blck_size(int type)");
  const typeSizeFn = lib.func("size_t ggml_type_size(int type)");
  const typeNameFn = lib.func("const char *ggml_type_name(int type)");
  const fp16Row = lib.func("void ggml_fp32_to_fp16_row(const float *x, void *y, int64_t n)");
  const bf16Row = lib.func("void ggml_fp32_to_bf16_row(const float *x, void *y, int64_t n)");
  const getTraits = lib.func("void *ggml_get_type_traits(int type)");
  // ggml.h: struct ggml_type_traits, in declaration order.
  const Traits = koffi.struct("edgequant_ggml_type_traits", {
    type_name: "const char *",
    blck_size: "int64_t",
    blck_size_interleave: "int64_t",
    type_size: "size_t",
    is_quantized: "bool",
    to_float: "void *",
    from_float_ref: "void *",
  });
  const ToFloat = koffi.proto("void edgequant_ggml_to_float_t(const void *x, void *y, int64_t k)");
  const toFloat = new Map<number, (x: Uint8Array, y: Float32Array, k: number) => void>();

  const rowSize = (type: number, rowLength: number): number => Number(rowSizeFn(type, rowLength));

  return {
    libraryPath,
    typeName: (type) => String(typeNameFn(type)),
    rowSize,
    blockSize: (type) => Number(blckSizeFn(type)),
    typeSize: (type) => Number(typeSizeFn(type)),
    quantize(type, values, rowLength) {
      const out = new Uint8Array((values.length / rowLength) * rowSize(type, rowLength));
      this.quantizeInto(type, values, rowLength, out);
      return out;
    },
    quantizeInto(type, values, rowLength, out) {
      const rows = values.length / rowLength;
      if (out.byteLength !== rows * rowSize(type, rowLength)) throw new Error(`output of ${out.byteLength} bytes, ggml needs ${rows * rowSize(type, rowLength)}`);
      const written = Number(quantizeChunk(type, values, out, 0, rows, rowLength, null));
      if (written !== out.byteLength) throw new Error(`ggml_quantize_chunk wrote ${written} bytes, expected ${out.byteLength}`);
    },
    dequantize(type, bytes, count) {
      const out = new Float32Array(count);
      this.dequantizeInto(type, bytes, out);
      return out;
    },
    dequantizeInto(type, bytes, out) {
      let fn = toFloat.get(type);
      if (!fn) {
        const traits = koffi.decode(getTraits(type), Traits) as { to_float: unknown; type_name: string };
        if (!traits.to_float) throw new Error(`ggml type ${traits.type_name} has no to_float`);
        fn = koffi.decode(traits.to_float, ToFloat) as (x: Uint8Array, y: Float32Array, k: number) => void;
        toFloat.set(type, fn);
      }
      fn(bytes, out, out.length);
    },
    f32ToF16(values) {
      const out = new Uint16Array(values.length);
      fp16Row(values, out, values.length);
      return out;
    },
    f32ToBf16(values) {
      const out = new Uint16Array(values.length);
      bf16Row(values, out, values.length);
      return out;
    },
  };
}
