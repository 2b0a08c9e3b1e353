// Public API: the CLI is a thin layer over these.
export { convertToGguf, type ConversionReport, type GgufConversionOptions, type ConversionProgress } from "./convert/gguf.js";
export { convertToMlx, type MlxReport, type MlxConversionOptions } from "./convert/mlx.js";
export { convertToOnnx, type OnnxReport, type OnnxConversionOptions, type OnnxBits, type OnnxLayout } from "./convert/onnx.js";
export { defaultFitPath, fitManifest } from "./fit/manifest.js";
export { writeFitFiles } from "./fit/write.js";
export { inspect, type InspectReport, type InspectedTensor } from "./inspect.js";
export { resolveScheme, SCHEMES, type Scheme } from "./quant/schemes.js";
export { UserError } from "./errors.js";
export { loadRecipe, type Recipe } from "./pipeline/recipe.js";
export { runRecipe } from "./pipeline/run.js";
export { gatherManifest } from "./pipeline/gather.js";
export { resolveSource } from "./readers/hub.js";
