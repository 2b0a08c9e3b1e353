/**
 * The ONNX export a checkpoint would convert to, described before it exists: the converter builds
 * its graph against the external data file's layout instead of the file (no weight is read or
 * quantized), so the ModelProto, every initializer's offset and length and both files' sizes are
 * the ones `convert` writes, and `fit` reads them through the same function as a real export.
 */
import { join } from "node:path";
import onnxProto from "onnx-proto";
import { buildOnnxModel, exportConfigs, onnxSettings, prepareExport, type OnnxConversionOptions } from "../convert/onnx.js";
import { UserError } from "../errors.js";
import type { Artifact } from "../fit/artifact.js";
import { onnxArtifact } from "../fit/onnx-artifact.js";
import type { Checkpoint } from "../readers/checkpoint.js";
import { ExternalDataLayout } from "../writers/onnx/external-data.js";
import { encodeModel } from "../writers/onnx/proto.js";

export type OnnxPlanOptions = Pick<OnnxConversionOptions, "bits" | "groupSize" | "layout" | "accuracyLevel">;

export async function predictOnnx(checkpoint: Checkpoint, options: OnnxPlanOptions, folder: string): Promise<Artifact> {
  // Whether a weight is ternary, and so how a 1.58-bit export stores it, takes reading it.
  if (options.bits === 1.58) throw new UserError("a 1.58-bit ONNX export cannot be planned without reading every weight; convert it to see its size");
  const prepared = prepareExport(checkpoint, onnxSettings(options));
  const data = new ExternalDataLayout(prepared.names.dataName);
  const { model } = await buildOnnxModel(checkpoint, prepared, data);
  const encoded = encodeModel(model);
  const file = join(folder, prepared.names.modelPath);
  const dataFile = join(folder, prepared.names.dataPath);
  const { config, genai } = await exportConfigs(checkpoint, prepared);
  const sizes = new Map([[file, encoded.byteLength], [dataFile, data.bytes]]);
  return onnxArtifact({
    file,
    folder,
    model: onnxProto.onnx.ModelProto.decode(encoded),
    config,
    ...(genai ? { genai } : {}),
    fileBytes: (path) => sizes.get(path) ?? 0,
  });
}
