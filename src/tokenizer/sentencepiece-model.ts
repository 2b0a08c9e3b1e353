// Parsing a SentencePiece tokenizer.model (a serialized sentencepiece.ModelProto).

import protobuf from "protobufjs";
import { UserError } from "../errors.js";

// The subset of google/sentencepiece's sentencepiece_model.proto that conversion needs.
// Field numbers and defaults must match the upstream schema; unknown fields are skipped.
const SCHEMA = `
syntax = "proto2";
package sentencepiece;
message TrainerSpec {
  enum ModelType { UNIGRAM = 1; BPE = 2; WORD = 3; CHAR = 4; }
  optional ModelType model_type = 3 [default = UNIGRAM];
  optional bool byte_fallback = 35 [default = false];
}
message NormalizerSpec {
  optional bool add_dummy_prefix = 3 [default = true];
  optional bool remove_extra_whitespaces = 4 [default = true];
}
message ModelProto {
  message SentencePiece {
    enum Type { NORMAL = 1; UNKNOWN = 2; CONTROL = 3; USER_DEFINED = 4; UNUSED = 5; BYTE = 6; }
    optional string piece = 1;
    optional float score = 2;
    optional Type type = 3 [default = NORMAL];
  }
  repeated SentencePiece pieces = 1;
  optional TrainerSpec trainer_spec = 2;
  optional NormalizerSpec normalizer_spec = 3;
}
`;

const schema = protobuf.parse(SCHEMA, { keepCase: true }).root;
const ModelProto = schema.lookupType("sentencepiece.ModelProto");
// An absent sub-message decodes as null; its fields then take the schema defaults.
const TO_OBJECT = { enums: String, defaults: true } as const;
const defaultsOf = (name: string): unknown => schema.lookupType(name).toObject(schema.lookupType(name).create(), TO_OBJECT);
const TRAINER_DEFAULTS = defaultsOf("sentencepiece.TrainerSpec") as TrainerSpec;
const NORMALIZER_DEFAULTS = defaultsOf("sentencepiece.NormalizerSpec") as NormalizerSpec;

/** SentencePiece's own piece types (sentencepiece_model.proto), not GGUF's. */
export type SentencePieceType = "NORMAL" | "UNKNOWN" | "CONTROL" | "USER_DEFINED" | "UNUSED" | "BYTE";

interface SentencePiece {
  readonly piece: string;
  readonly score: number;
  readonly type: SentencePieceType;
}

interface SentencePieceModel {
  readonly pieces: readonly SentencePiece[];
  readonly modelType: "UNIGRAM" | "BPE" | "WORD" | "CHAR";
  readonly byteFallback: boolean;
  /** SentencePiece prepends "▁" to the input, i.e. llama.cpp's add_space_prefix. */
  readonly addDummyPrefix: boolean;
}

interface TrainerSpec {
  model_type: SentencePieceModel["modelType"];
  byte_fallback: boolean;
}
interface NormalizerSpec {
  add_dummy_prefix: boolean;
}
interface DecodedModel {
  pieces: { piece: string; score: number; type: SentencePieceType }[];
  trainer_spec: TrainerSpec | null;
  normalizer_spec: NormalizerSpec | null;
}

export function parseSentencePieceModel(bytes: Uint8Array, file: string): SentencePieceModel {
  let decoded: DecodedModel;
  try {
    const message = ModelProto.decode(bytes);
    // defaults: true fills proto2 defaults for absent fields (e.g. type NORMAL, add_dummy_prefix true).
    decoded = ModelProto.toObject(message, TO_OBJECT) as DecodedModel;
  } catch (error) {
    throw new UserError(`not a SentencePiece model: ${(error as Error).message}`, { file });
  }
  if (decoded.pieces.length === 0) throw new UserError("the SentencePiece model has no pieces", { file });
  const trainer = decoded.trainer_spec ?? TRAINER_DEFAULTS;
  const normalizer = decoded.normalizer_spec ?? NORMALIZER_DEFAULTS;
  return {
    pieces: decoded.pieces.map(({ piece, score, type }) => ({ piece, score, type })),
    modelType: trainer.model_type,
    byteFallback: trainer.byte_fallback,
    addDummyPrefix: normalizer.add_dummy_prefix,
  };
}
