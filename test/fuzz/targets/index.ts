import type { FuzzTarget } from "../target.js";
import { configTarget } from "./config.js";
import { ggufTarget } from "./gguf.js";
import { hubTarget } from "./hub.js";
import { indexTarget } from "./index-json.js";
import { recipeTarget } from "./recipe.js";
import { safetensorsTarget } from "./safetensors.js";
import { sentencepieceTarget } from "./sentencepiece.js";
import { tokenizerTarget } from "./tokenizer.js";

export const FUZZ_TARGETS = [safetensorsTarget, configTarget, tokenizerTarget, sentencepieceTarget, indexTarget, recipeTarget, ggufTarget, hubTarget] as readonly FuzzTarget<unknown>[];
