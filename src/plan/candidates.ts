/**
 * `edgequant plan`: every artifact a checkpoint can become (each GGUF scheme, MLX bits/recipe,
 * ONNX bits), predicted by the converters' own planners without writing a byte, so sizes are
 * exact; then fitted by the same code as `fit`.
 */
import { basename, join } from "node:path";
import { resolveArchitecture } from "../arch/index.js";
import { ternaryLayout } from "../arch/ternary-layout.js";
import { UserError } from "../errors.js";
import type { Artifact, ArtifactFormat } from "../fit/artifact.js";
import { resolveScheme, SCHEMES } from "../quant/schemes.js";
import type { Checkpoint } from "../readers/checkpoint.js";
import type { Vocabulary } from "../tokenizer/index.js";
import type { MlxPlanOptions } from "./mlx.js";
import { predictGguf } from "./predict-gguf.js";
import { predictMlx } from "./predict-mlx.js";
import { predictOnnx, type OnnxPlanOptions } from "./predict-onnx.js";

export const PLAN_FORMATS: readonly ArtifactFormat[] = ["gguf", "mlx", "onnx"];

/** One artifact the checkpoint can become, by its format's own name for the setting. */
export interface Candidate {
  /** "gguf q4_k_m", "mlx 4bit", "onnx int4": what `--schemes` takes. */
  readonly id: string;
  readonly format: ArtifactFormat;
  /** The setting in its format's terms: a GGUF scheme, MLX bits or recipe, ONNX bits. */
  readonly setting: string;
  /** The `convert` flags that produce it. */
  readonly convert: string;
  readonly artifact: Artifact;
}

/** A candidate that could not be planned, and why (an architecture a format refuses, ...). */
export interface Unplannable {
  readonly id: string;
  readonly reason: string;
}

type Setting =
  | { readonly format: "gguf"; readonly setting: string }
  | { readonly format: "mlx"; readonly setting: string; readonly options: MlxPlanOptions }
  | { readonly format: "onnx"; readonly setting: string; readonly options: OnnxPlanOptions };

const MLX_SETTINGS: readonly Extract<Setting, { format: "mlx" }>[] = [
  ...([8, 6, 5, 4, 3, 2] as const).map((bits) => ({ format: "mlx" as const, setting: `${bits}bit`, options: { bits, groupSize: 64 as const } })),
  { format: "mlx", setting: "mixed_3_6", options: { bits: 3, groupSize: 64, mixed: "3_6" } },
  { format: "mlx", setting: "mixed_4_6", options: { bits: 4, groupSize: 64, mixed: "4_6" } },
];
const ONNX_SETTINGS: readonly Extract<Setting, { format: "onnx" }>[] = ([32, 16, 8, 4] as const).map((bits) => ({
  format: "onnx" as const,
  setting: bits >= 16 ? `fp${bits}` : `int${bits}`,
  options: { bits },
}));

/**
 * The settings to plan: every GGUF scheme (TQ1_0/TQ2_0 only for checkpoints whose architecture
 * stores ternary weights: elsewhere convert refuses them unless every weight is ternary, which only
 * reading them tells), every MLX bits and mixed recipe at group 64, ONNX fp32/fp16/int8/int4.
 */
function settingsFor(checkpoint: Checkpoint, formats: readonly ArtifactFormat[], only: readonly string[] | undefined): Setting[] {
  const ternary = ternaryLayout(checkpoint, resolveArchitecture(checkpoint.config, checkpoint.configFile)) !== undefined;
  const gguf = SCHEMES.filter((s) => ternary || !s.name.startsWith("tq")).map((s): Setting => ({ format: "gguf", setting: s.name }));
  const all: Setting[] = [...gguf, ...MLX_SETTINGS, ...ONNX_SETTINGS].filter((s) => formats.includes(s.format));
  if (!only || only.length === 0) return all;
  return only.map((wanted) => {
    const found = [...all, ...SCHEMES.map((s): Setting => ({ format: "gguf", setting: s.name }))].find((s) => candidateId(s) === wanted || s.setting === wanted);
    if (!found) throw new UserError(`unknown --schemes entry '${wanted}'; give a GGUF scheme (${SCHEMES.map((s) => s.name).join(", ")}), mlx <${MLX_SETTINGS.map((s) => s.setting).join("|")}> or onnx <${ONNX_SETTINGS.map((s) => s.setting).join("|")}>`);
    return found;
  });
}

const candidateId = (s: Setting): string => `${s.format} ${s.setting}`;

/** Every candidate artifact of `checkpoint`, named as `convert` would name it inside `outputDir`. */
export async function planCandidates(
  checkpoint: Checkpoint,
  options: { readonly formats?: readonly ArtifactFormat[]; readonly schemes?: readonly string[]; readonly modelName: string; readonly outputDir: string },
): Promise<{ candidates: Candidate[]; unplannable: Unplannable[] }> {
  const candidates: Candidate[] = [];
  const unplannable: Unplannable[] = [];
  const name = basename(options.modelName);
  const read: { vocabulary?: Vocabulary } = {};
  for (const s of settingsFor(checkpoint, options.formats ?? PLAN_FORMATS, options.schemes)) {
    const id = candidateId(s);
    try {
      candidates.push(await predict(checkpoint, s, name, options.outputDir, read));
    } catch (error) {
      if (!(error instanceof UserError)) throw error;
      unplannable.push({ id, reason: error.message });
    }
  }
  return { candidates, unplannable };
}

/** `read` keeps the vocabulary the first GGUF read: every scheme writes the same one. */
async function predict(checkpoint: Checkpoint, s: Setting, name: string, outputDir: string, read: { vocabulary?: Vocabulary }): Promise<Candidate> {
  const id = candidateId(s);
  switch (s.format) {
    case "gguf": {
      const path = join(outputDir, `${name}-${s.setting}.gguf`);
      const { artifact, vocabulary } = await predictGguf(checkpoint, resolveScheme(s.setting), path, read.vocabulary);
      read.vocabulary = vocabulary;
      return { id, format: "gguf", setting: s.setting, convert: `--to gguf --scheme ${s.setting}`, artifact };
    }
    case "mlx": {
      const path = join(outputDir, `${name}-mlx-${s.setting}`);
      const flags = s.options.mixed ? `--bits ${s.options.bits} --mixed ${s.options.mixed}` : `--bits ${s.options.bits}`;
      return { id, format: "mlx", setting: s.setting, convert: `--to mlx ${flags}`, artifact: predictMlx(checkpoint, s.options, path) };
    }
    case "onnx": {
      const path = join(outputDir, `${name}-onnx-${s.setting}`);
      return { id, format: "onnx", setting: s.setting, convert: `--to onnx --bits ${s.options.bits}`, artifact: await predictOnnx(checkpoint, s.options, path) };
    }
  }
}
