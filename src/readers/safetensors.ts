import { open, type FileHandle } from "node:fs/promises";
import { UserError } from "../errors.js";
import { SAFETENSORS_DTYPES, isFloatDtype, isSafetensorsDtype, type SafetensorsDtype } from "./dtypes.js";
import { readFully } from "./read-fully.js";
import { checkRegularFile } from "./regular-file.js";
import type { SourceTensor } from "./source-tensor.js";

/** The safetensors format caps the JSON header at 100 MB; anything larger is corrupt. */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

export interface TensorInfo {
  readonly name: string;
  readonly dtype: SafetensorsDtype;
  /** Row-major shape, outermost dimension first (PyTorch order). */
  readonly shape: readonly number[];
  readonly byteLength: number;
  /** Absolute byte offset of the tensor's data in the file. */
  readonly fileOffset: number;
}

/** One .safetensors file whose header has been fully validated; tensor data is read on demand. */
export class SafetensorsFile {
  private constructor(
    readonly path: string,
    private readonly handle: FileHandle,
    readonly tensors: ReadonlyMap<string, TensorInfo>,
    /** `__metadata__.format`: "mlx" in mlx-lm's files, "pt" in transformers' (absent in many). */
    readonly format: string | undefined,
  ) {}

  /** One of this file's float tensors as a source for conversion; other dtypes are refused by name. */
  sourceTensor(info: TensorInfo): SourceTensor {
    const dtype = info.dtype;
    if (!isFloatDtype(dtype)) {
      throw new UserError(`dtype ${dtype} is not supported for conversion (supported: F32, F16, BF16)`, { file: this.path, tensor: info.name });
    }
    return {
      name: info.name,
      file: this.path,
      dtype,
      shape: info.shape,
      byteLength: info.byteLength,
      read: (offset, length) => this.readRange(info.fileOffset + offset, length, info.name),
    };
  }

  static async open(path: string): Promise<SafetensorsFile> {
    checkRegularFile(path, "safetensors file");
    const handle = await open(path, "r").catch((cause: NodeJS.ErrnoException) => {
      throw new UserError(`cannot open safetensors file (${cause.code ?? cause.message})`, { file: path });
    });
    try {
      const { size } = await handle.stat();
      const { tensors, format } = await readHeader(handle, size, path);
      return new SafetensorsFile(path, handle, tensors, format);
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  /** Reads one tensor's raw little-endian bytes. */
  async read(name: string): Promise<Buffer> {
    const info = this.tensors.get(name);
    if (!info) throw new UserError("no such tensor", { file: this.path, tensor: name });
    return this.readRange(info.fileOffset, info.byteLength, name);
  }

  /** Reads `byteLength` bytes at an absolute file offset, naming `tensor` if the file turns out shorter. */
  readRange(fileOffset: number, byteLength: number, tensor: string): Promise<Buffer> {
    return readFully(this.handle, fileOffset, byteLength, { file: this.path, tensor });
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

async function readHeader(handle: FileHandle, fileSize: number, file: string) {
  const fail = (message: string, tensor?: string): never => {
    throw new UserError(message, { file, ...(tensor === undefined ? {} : { tensor }) });
  };
  if (fileSize < 8) fail(`truncated: the file is ${fileSize} bytes, too short for the 8-byte header length`);

  const lengthBytes = Buffer.alloc(8);
  await handle.read(lengthBytes, 0, 8, 0);
  const headerLength = lengthBytes.readBigUInt64LE(0);
  if (headerLength > BigInt(fileSize - 8)) {
    fail(`header length ${headerLength} runs past the end of the file (${fileSize} bytes): the file is truncated or not safetensors`);
  }
  if (headerLength > BigInt(MAX_HEADER_BYTES)) fail(`header length ${headerLength} exceeds the format's 100 MB limit`);

  const headerBytes = Buffer.alloc(Number(headerLength));
  await handle.read(headerBytes, 0, headerBytes.length, 8);
  let header: unknown;
  try {
    header = JSON.parse(headerBytes.toString("utf8"));
  } catch (cause) {
    fail(`invalid JSON header (${(cause as Error).message})`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) fail("invalid header: expected a JSON object of tensors");

  const dataStart = 8 + headerBytes.length;
  const dataLength = fileSize - dataStart;
  const tensors = new Map<string, TensorInfo>();

  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") continue; // free-form strings; only `format` is read, below
    const { dtype, shape, data_offsets: offsets } = (entry ?? {}) as Record<string, unknown>;
    if (typeof dtype !== "string") fail("header entry has no dtype", name);
    if (!isSafetensorsDtype(dtype as string)) {
      fail(`unknown dtype '${dtype}' (safetensors defines ${Object.keys(SAFETENSORS_DTYPES).join(", ")})`, name);
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) fail(`invalid shape ${JSON.stringify(shape)}`, name);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      fail(`invalid data_offsets ${JSON.stringify(offsets)}`, name);
    }
    const [begin, end] = offsets as [number, number];
    const typedDtype = dtype as SafetensorsDtype;
    const dims = shape as number[];
    const expected = dims.reduce((a, b) => a * b, 1) * SAFETENSORS_DTYPES[typedDtype].bytes;
    if (end < begin) fail(`data_offsets [${begin}, ${end}] end before they begin`, name);
    if (end > dataLength) fail(`data_offsets [${begin}, ${end}] out of range: the data section is ${dataLength} bytes (truncated file?)`, name);
    if (end - begin !== expected) {
      fail(`shape [${dims.join(", ")}] x ${typedDtype} needs ${expected} bytes but data_offsets [${begin}, ${end}] hold ${end - begin}`, name);
    }
    tensors.set(name, { name, dtype: typedDtype, shape: dims, byteLength: expected, fileOffset: dataStart + begin });
  }

  const byOffset = [...tensors.values()].sort((a, b) => a.fileOffset - b.fileOffset);
  for (let i = 1; i < byOffset.length; i++) {
    const previous = byOffset[i - 1]!;
    const current = byOffset[i]!;
    if (current.fileOffset < previous.fileOffset + previous.byteLength) {
      fail(`data overlaps tensor '${previous.name}'`, current.name);
    }
  }
  const metadata = (header as Record<string, unknown>)["__metadata__"];
  const format = typeof metadata === "object" && metadata !== null ? (metadata as Record<string, unknown>)["format"] : undefined;
  return { tensors, format: typeof format === "string" ? format : undefined };
}
