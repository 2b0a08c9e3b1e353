// Every GGUF header edgequant reads goes through here. Before @huggingface/gguf parses it, one
// bounded pass walks the header and checks every count and length it declares against the
// file's size: the fuzzer found that a count of 393,228 tensors in a 354 kB file cost 600 MB,
// and a file cut inside its header made the parser grow its buffer for 18 s.
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { resolve } from "node:path";
import { gguf, type GGUFParseOutput, type GGUFTypedMetadata } from "@huggingface/gguf";
import { UserError } from "../errors.js";
import { checkRegularFile } from "./regular-file.js";

export type GgufHeader = GGUFParseOutput & { typedMetadata: GGUFTypedMetadata };

export async function readGgufHeader(path: string): Promise<GgufHeader> {
  checkRegularFile(path, "GGUF file");
  walkHeader(path);
  return gguf(resolve(path), { allowLocalFile: true, typedMetadata: true }).catch((cause: Error) => {
    throw new UserError(`not a readable GGUF file (${cause.message})`, { file: path });
  });
}

/** Bytes of each GGUF value type with a fixed size (gguf.h's gguf_type), by type id. */
const FIXED_SIZE: Readonly<Record<number, number>> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
const STRING = 8;
const ARRAY = 9;
/** ggml's GGML_MAX_DIMS. */
const MAX_DIMS = 4;
/** The smallest entries the format allows: a tensor info (name length, n_dims, type, offset) and a key-value pair (key length, type, a 1-byte value). */
const MIN_TENSOR_INFO_BYTES = 8 + 4 + 4 + 8;
const MIN_KV_BYTES = 8 + 4 + 1;

/** Sequential little-endian reads through a 1 MiB window; nothing is read past the file's end. */
class HeaderCursor {
  private readonly window = Buffer.alloc(1 << 20);
  private windowStart = 0;
  private windowEnd = 0;
  position = 0;

  constructor(
    private readonly fd: number,
    readonly size: number,
    private readonly fail: (problem: string) => never,
  ) {}

  private ensure(bytes: number, what: string): number {
    if (this.position + bytes > this.size) this.fail(`${what} at byte ${this.position} needs ${bytes} bytes, but the file ends at ${this.size}`);
    if (this.position < this.windowStart || this.position + bytes > this.windowEnd) {
      this.windowStart = this.position;
      this.windowEnd = this.position + readSync(this.fd, this.window, 0, this.window.length, this.position);
    }
    const at = this.position - this.windowStart;
    this.position += bytes;
    return at;
  }

  u32(what: string): number {
    return this.window.readUInt32LE(this.ensure(4, what));
  }

  /** A u64 that must fit in the rest of the file when multiplied by `unit` bytes. */
  length(what: string, unit = 1): number {
    const value = this.window.readBigUInt64LE(this.ensure(8, what));
    const rest = BigInt(this.size - this.position);
    if (value * BigInt(unit) > rest) {
      this.fail(`${what} at byte ${this.position - 8} is ${value}, which needs at least ${value * BigInt(unit)} bytes, but only ${rest} are left in the file`);
    }
    return Number(value);
  }

  skip(bytes: number, what: string): void {
    if (this.position + bytes > this.size) this.fail(`${what} at byte ${this.position} needs ${bytes} bytes, but the file ends at ${this.size}`);
    this.position += bytes;
  }
}

function walkHeader(path: string): void {
  const fd = openSync(path, "r");
  try {
    const fail = (problem: string): never => {
      throw new UserError(`not a readable GGUF file: ${problem}`, { file: path });
    };
    const cursor = new HeaderCursor(fd, fstatSync(fd).size, fail);
    const magic = cursor.u32("the magic");
    if (magic !== 0x46554747) fail("it does not start with 'GGUF'");
    const version = cursor.u32("the version");
    if (version !== 2 && version !== 3) fail(`version ${version}; llama.cpp reads versions 2 and 3`);
    const tensors = cursor.length("the tensor count", MIN_TENSOR_INFO_BYTES);
    const pairs = cursor.length("the metadata key count", MIN_KV_BYTES);
    for (let i = 0; i < pairs; i++) {
      cursor.skip(cursor.length(`metadata key ${i}'s name length`), `metadata key ${i}'s name`);
      skipValue(cursor, cursor.u32(`metadata key ${i}'s type`), `metadata key ${i}'s value`, fail);
    }
    for (let i = 0; i < tensors; i++) {
      cursor.skip(cursor.length(`tensor ${i}'s name length`), `tensor ${i}'s name`);
      const dims = cursor.u32(`tensor ${i}'s dimension count`);
      if (dims > MAX_DIMS) fail(`tensor ${i} has ${dims} dimensions; ggml allows at most ${MAX_DIMS}`);
      cursor.skip(8 * dims + 4 + 8, `tensor ${i}'s shape, type and offset`);
    }
  } finally {
    closeSync(fd);
  }
}

function skipValue(cursor: HeaderCursor, type: number, what: string, fail: (problem: string) => never): void {
  const fixed = FIXED_SIZE[type];
  if (fixed !== undefined) return cursor.skip(fixed, what);
  if (type === STRING) return cursor.skip(cursor.length(`${what}'s length`), what);
  if (type !== ARRAY) fail(`${what} has type ${type}, which GGUF does not define`);
  const element = cursor.u32(`${what}'s element type`);
  const elementSize = FIXED_SIZE[element];
  // Every element takes at least a byte (strings 8, for their length), so the count is bounded first.
  const count = cursor.length(`${what}'s item count`, elementSize ?? (element === STRING ? 8 : 1));
  if (elementSize !== undefined) return cursor.skip(count * elementSize, what);
  for (let i = 0; i < count; i++) skipValue(cursor, element, `${what}[${i}]`, fail);
}
