// Every GGUF header edgequant reads goes through here: the counts a file declares are checked
// against its size before @huggingface/gguf is asked to parse that many entries (a count of
// 400,000 tensors in a 300 kB file cost 600 MB and seconds before any error).
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { resolve } from "node:path";
import { gguf, type GGUFParseOutput, type GGUFTypedMetadata } from "@huggingface/gguf";
import { UserError } from "../errors.js";
import { checkRegularFile } from "./regular-file.js";

/** The smallest entries the GGUF format allows: a tensor info (name length, n_dims, type, offset) and a key-value pair (key length, type, a 1-byte value). */
const MIN_TENSOR_INFO_BYTES = 8 + 4 + 4 + 8;
const MIN_KV_BYTES = 8 + 4 + 1;
const FIXED_HEADER_BYTES = 24;

export type GgufHeader = GGUFParseOutput & { typedMetadata: GGUFTypedMetadata };

export async function readGgufHeader(path: string): Promise<GgufHeader> {
  checkRegularFile(path, "GGUF file");
  checkDeclaredCounts(path);
  return gguf(resolve(path), { allowLocalFile: true, typedMetadata: true }).catch((cause: Error) => {
    throw new UserError(`not a readable GGUF file (${cause.message})`, { file: path });
  });
}

function checkDeclaredCounts(path: string): void {
  const fd = openSync(path, "r");
  try {
    const size = fstatSync(fd).size;
    const fixed = Buffer.alloc(FIXED_HEADER_BYTES);
    if (readSync(fd, fixed, 0, FIXED_HEADER_BYTES, 0) < FIXED_HEADER_BYTES || fixed.toString("latin1", 0, 4) !== "GGUF") return; // the parser names what is wrong
    const tensors = fixed.readBigUInt64LE(8);
    const pairs = fixed.readBigUInt64LE(16);
    const needed = BigInt(FIXED_HEADER_BYTES) + tensors * BigInt(MIN_TENSOR_INFO_BYTES) + pairs * BigInt(MIN_KV_BYTES);
    if (needed > BigInt(size)) {
      throw new UserError(`the header declares ${tensors} tensors and ${pairs} metadata keys, more than a ${size}-byte file can hold`, { file: path });
    }
  } finally {
    closeSync(fd);
  }
}
