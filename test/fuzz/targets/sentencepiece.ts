import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { readVocabulary } from "../../../src/tokenizer/index.js";
import type { FuzzTarget } from "../target.js";
import { linkMicroModel, microModel } from "./base.js";
import { edgeNumber } from "./values.js";

/** Edits to the tiny Llama's real tokenizer.model: the input stays small, the file stays mostly valid. */
interface SentencePieceCase {
  /** Bytes overwritten at positions (modulo the length): in pieces' text, scores and types, or near the start where lengths and tags sit. */
  readonly overwrites: readonly { at: number; byte: number }[];
  /** Protobuf fields appended: tag byte, a varint length (often a lie), then a few bytes. */
  readonly appended: readonly { tag: number; length: number; bytes: readonly number[] }[];
  /** Cut the file to this percentage of its length. */
  readonly keep: number | undefined;
}

let original: Buffer | undefined;
const baseModel = (): Buffer => (original ??= readFileSync(join(microModel(), "tokenizer.model")));

function varint(value: number): number[] {
  const out: number[] = [];
  let rest = BigInt(Math.max(0, Math.trunc(value))) & 0xffffffffffffffffn;
  do {
    const low = Number(rest & 0x7fn);
    rest >>= 7n;
    out.push(rest > 0n ? low | 0x80 : low);
  } while (rest > 0n);
  return out;
}

function mutated(input: SentencePieceCase): Buffer {
  const bytes = Buffer.from(baseModel());
  for (const { at, byte } of input.overwrites) bytes[at % bytes.length] = byte;
  const kept = input.keep === undefined ? bytes : bytes.subarray(0, Math.floor((bytes.length * input.keep) / 100));
  const tail = input.appended.flatMap(({ tag, length, bytes: body }) => [tag, ...varint(length), ...body]);
  return Buffer.concat([kept, Buffer.from(tail)]);
}

export const sentencepieceTarget: FuzzTarget<SentencePieceCase> = {
  name: "sentencepiece",
  description: "tokenizer.model (SentencePiece protobuf) with bytes overwritten, lying field lengths and truncation, no tokenizer.json",
  input: fc.record({
    overwrites: fc.array(
      fc.record({ at: fc.oneof({ weight: 1, arbitrary: fc.nat({ max: 64 }) }, { weight: 3, arbitrary: fc.nat() }), byte: fc.integer({ min: 0, max: 255 }) }),
      { maxLength: 6 },
    ),
    appended: fc.oneof({ weight: 2, arbitrary: fc.constant([]) }, { weight: 1, arbitrary: fc.array(
      fc.record({
        // Fields 1 (pieces), 2 (trainer_spec), 3 (normalizer_spec) as length-delimited, and odd wire types.
        tag: fc.constantFrom(0x0a, 0x12, 0x1a, 0x08, 0x0d, 0x0b, 0xff),
        length: fc.oneof(fc.nat({ max: 16 }), edgeNumber),
        bytes: fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 16 }),
      }),
      { maxLength: 3 },
    ) }),
    keep: fc.option(fc.integer({ min: 0, max: 99 }), { nil: undefined, freq: 4 }),
  }),
  async run(input, scratch) {
    linkMicroModel(scratch, ["tokenizer.model"]);
    writeFileSync(join(scratch, "tokenizer.model"), mutated(input));
    await readVocabulary(scratch, 4096);
  },
};
