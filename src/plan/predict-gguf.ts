/**
 * The GGUF a checkpoint would convert to, described before it exists: the converter's own plan
 * (every tensor's type, as the mixture chooses it) and header (every key, the vocabulary
 * included), so the file size is exact, and the same description `fit` reads from a real file.
 */
import { GGUFValueType } from "@huggingface/gguf";
import { ggufContents } from "../convert/gguf.js";
import type { Artifact, ArtifactTensor } from "../fit/artifact.js";
import { ggufArtifact } from "../fit/gguf-artifact.js";
import { ggmlType, tensorBytes } from "../quant/ggml-types.js";
import type { Scheme } from "../quant/schemes.js";
import type { Checkpoint } from "../readers/checkpoint.js";
import type { Vocabulary } from "../tokenizer/index.js";
import type { GgufMetadata } from "../writers/gguf/metadata.js";
import { ggufLayout } from "../writers/gguf/writer.js";

export async function predictGguf(checkpoint: Checkpoint, scheme: Scheme, path: string, known?: Vocabulary): Promise<{ artifact: Artifact; vocabulary: Vocabulary }> {
  const { plan, metadata, vocabulary } = await ggufContents(checkpoint, scheme, known);
  const layout = ggufLayout(metadata, plan.tensors);
  const tensors = plan.tensors.map((t, i): ArtifactTensor => {
    const ne = [...t.shape].reverse();
    return { name: t.name, type: ggmlType(t.type).name, ggmlType: t.type, ne, bytes: tensorBytes(t.type, t.shape), file: path, offset: layout.header.byteLength + layout.offsets[i]! };
  });
  return { artifact: ggufArtifact({ path, metadata: plainValues(metadata), tensors, files: [{ path, bytes: layout.fileBytes }] }), vocabulary };
}

/** Keys as a GGUF parser returns them: plain values, arrays as arrays. */
function plainValues(metadata: GgufMetadata): Record<string, unknown> {
  const plain: Record<string, unknown> = {};
  for (const [key, entry] of metadata) plain[key] = entry.type === GGUFValueType.ARRAY ? Array.from(entry.value as ArrayLike<unknown>) : entry.value;
  return plain;
}
