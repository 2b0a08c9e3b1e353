// Compares two GGUF files tensor by tensor (name, order, type, bytes) and key by key.

import { openSync, readSync, closeSync } from "node:fs";
import { gguf, GGMLQuantizationType } from "@huggingface/gguf";
import { requireGgml } from "./ggml-oracle.js";

export interface GgufComparison {
  readonly tensors: number;
  readonly sameOrder: boolean;
  /** Tensors whose type or bytes differ, with the first differing byte. */
  readonly mismatches: { name: string; ours: string; theirs: string; firstDifference?: number }[];
  /** Metadata keys present in one file only or with a different type or value. */
  readonly metadataDifferences: string[];
}

export async function compareGguf(oursPath: string, theirsPath: string): Promise<GgufComparison> {
  const [ours, theirs] = await Promise.all([oursPath, theirsPath].map((path) => gguf(path, { allowLocalFile: true, typedMetadata: true })));
  const theirIndex = new Map(theirs!.tensorInfos.map((info) => [info.name, info]));
  const mismatches: GgufComparison["mismatches"] = [];
  const fdOurs = openSync(oursPath, "r");
  const fdTheirs = openSync(theirsPath, "r");
  try {
    for (const info of ours!.tensorInfos) {
      const other = theirIndex.get(info.name);
      const typeName = (t: number) => GGMLQuantizationType[t] ?? String(t);
      if (!other) {
        mismatches.push({ name: info.name, ours: typeName(info.dtype), theirs: "missing" });
        continue;
      }
      if (other.dtype !== info.dtype) {
        mismatches.push({ name: info.name, ours: typeName(info.dtype), theirs: typeName(other.dtype) });
        continue;
      }
      // ggml's own row size (not src's byte count) times the rows
      const shape = info.shape.map(Number);
      const length = requireGgml().rowSize(info.dtype, shape[0]!) * shape.slice(1).reduce((a, b) => a * b, 1);
      const a = read(fdOurs, Number(ours!.tensorDataOffset + info.offset), length);
      const b = read(fdTheirs, Number(theirs!.tensorDataOffset + other.offset), length);
      if (!a.equals(b)) {
        const firstDifference = a.findIndex((byte, i) => byte !== b[i]);
        mismatches.push({ name: info.name, ours: typeName(info.dtype), theirs: typeName(other.dtype), firstDifference });
      }
    }
  } finally {
    closeSync(fdOurs);
    closeSync(fdTheirs);
  }
  for (const name of theirIndex.keys()) {
    if (!ours!.tensorInfos.some((info) => info.name === name)) mismatches.push({ name, ours: "missing", theirs: "present" });
  }
  const keys = new Set([...Object.keys(ours!.typedMetadata), ...Object.keys(theirs!.typedMetadata)]);
  const metadataDifferences = [...keys].filter((key) => {
    const [x, y] = [ours!.typedMetadata[key], theirs!.typedMetadata[key]];
    return JSON.stringify(x, bigintToString) !== JSON.stringify(y, bigintToString);
  });
  return {
    tensors: ours!.tensorInfos.length,
    sameOrder: ours!.tensorInfos.map((t) => t.name).join() === theirs!.tensorInfos.map((t) => t.name).join(),
    mismatches,
    metadataDifferences,
  };
}

function read(fd: number, position: number, length: number): Buffer {
  const buffer = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) done += readSync(fd, buffer, done, Math.min(length - done, 1 << 30), position + done);
  return buffer;
}

function bigintToString(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? value.toString() : value;
}
