/**
 * Only for ./gguf-artifact.ts, which is being reworked elsewhere: the table itself is
 * ../quant/ggml-types.ts. Delete this file once gguf-artifact.ts imports from there.
 */
export { contiguousBytes, ggmlType } from "../quant/ggml-types.js";
