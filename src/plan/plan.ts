/**
 * The `plan` report: candidates (src/plan/candidates.ts), fitted by `fit`'s own manifest code
 * (fitArtifacts), ranked and picked per device (src/plan/recommend.ts).
 */
import { resolve } from "node:path";
import type { ArtifactFormat } from "../fit/artifact.js";
import { fitArtifacts, type FitManifest } from "../fit/manifest.js";
import type { KvConfig } from "../fit/runtimes.js";
import { openCheckpoint } from "../readers/checkpoint.js";
import { VERSION } from "../version.js";
import { planCandidates, type Unplannable } from "./candidates.js";
import { qualityOf, recommend, type Quality, type Recommendation } from "./recommend.js";

const PLAN_SCHEMA = "edgequant-plan/v1";
const DEFAULT_CONTEXT = 4096;

export interface PlanOptions {
  /** The name candidates are called by (`<name>-q4_k_m.gguf`): the folder, or the Hub repo. */
  readonly modelName: string;
  readonly devices?: readonly string[];
  readonly contexts?: readonly number[];
  readonly formats?: readonly ArtifactFormat[];
  readonly schemes?: readonly string[];
  readonly devicesFile?: string;
  /** Fraction of the binding budget to leave free (default 0.1). */
  readonly headroom?: number;
  readonly kvConfig?: KvConfig;
}

export interface PlannedCandidate {
  readonly id: string;
  readonly format: ArtifactFormat;
  readonly setting: string;
  readonly convert: string;
  /** The manifest's id for it. */
  readonly artifactId: string;
  /** Every file's size, as convert would write it. */
  readonly files: readonly { readonly path: string; readonly bytes: number }[];
  readonly bytes: number;
  readonly quality: Quality;
}

export interface PlanReport {
  readonly schema: typeof PLAN_SCHEMA;
  readonly generator: { readonly name: "edgequant"; readonly version: string };
  readonly source: string;
  readonly recommendationContext: number;
  readonly headroom: number;
  readonly kvConfig: KvConfig;
  readonly candidates: readonly PlannedCandidate[];
  readonly unplannable: readonly Unplannable[];
  readonly recommendations: readonly Recommendation[];
  readonly manifest: FitManifest;
}

export async function planModel(source: string, options: PlanOptions): Promise<PlanReport> {
  const checkpoint = await openCheckpoint(source);
  const contexts = options.contexts && options.contexts.length > 0 ? options.contexts : [DEFAULT_CONTEXT];
  const kvConfig = options.kvConfig ?? { kvCache: "f16", flashAttention: false };
  const headroom = options.headroom ?? 0.1;
  try {
    const { candidates, unplannable } = await planCandidates(checkpoint, {
      modelName: options.modelName,
      outputDir: resolve("."),
      ...(options.formats ? { formats: options.formats } : {}),
      ...(options.schemes ? { schemes: options.schemes } : {}),
    });
    const manifest = await fitArtifacts(
      candidates.map((c) => c.artifact),
      { contexts, ...(options.devices ? { devices: options.devices } : {}), ...(options.devicesFile ? { devicesFile: options.devicesFile } : {}) },
    );
    const context = Math.max(...contexts);
    return {
      schema: PLAN_SCHEMA,
      generator: { name: "edgequant", version: VERSION },
      source: options.modelName,
      recommendationContext: context,
      headroom,
      kvConfig,
      candidates: candidates.map((c, i) => ({
        id: c.id,
        format: c.format,
        setting: c.setting,
        convert: c.convert,
        artifactId: manifest.artifacts[i]!.id,
        files: c.artifact.files,
        bytes: c.artifact.files.reduce((sum, f) => sum + f.bytes, 0),
        quality: qualityOf(c),
      })),
      unplannable,
      recommendations: recommend(manifest, candidates, context, kvConfig, headroom),
      manifest,
    };
  } finally {
    await checkpoint.close();
  }
}
