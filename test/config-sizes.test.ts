// config.json's sizes are checked against sane bounds and against the tensors before anything is
// sized by them: every planner (GGUF, MLX, ONNX) refuses with the key named, in milliseconds. So
// are tensor headers claiming rows longer than any layer, or a shape every architecture fixes.
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { resolveArchitecture } from "../src/arch/index.js";
import { convertToOnnx } from "../src/convert/onnx.js";
import { UserError } from "../src/errors.js";
import { planFromCheckpoint } from "../src/plan/gguf.js";
import { planMlx } from "../src/plan/mlx.js";
import { resolveScheme } from "../src/quant/schemes.js";
import { openCheckpoint } from "../src/readers/checkpoint.js";
import { TINY_LLAMA, copyFixture, expectRefused, tempDir } from "./support/cli.js";
import { redeclareAsSparse } from "./support/safetensors.js";

const dir = tempDir();
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function withConfig(edits: Record<string, unknown>): string {
  const folder = copyFixture(TINY_LLAMA, tempDir());
  const config = JSON.parse(readFileSync(join(folder, "config.json"), "utf8")) as Record<string, unknown>;
  writeFileSync(join(folder, "config.json"), JSON.stringify({ ...config, ...edits }));
  return folder;
}

async function refusals(folder: string): Promise<string[]> {
  const messages: string[] = [];
  const checkpoint = await openCheckpoint(folder);
  const architecture = resolveArchitecture(checkpoint.config, checkpoint.configFile);
  for (const plan of [() => planFromCheckpoint(checkpoint, architecture, resolveScheme("f16"), "x"), () => planMlx(checkpoint, architecture, { bits: 4, groupSize: 64 })]) {
    try {
      plan();
      messages.push("accepted");
    } catch (error) {
      expect(error).toBeInstanceOf(UserError);
      messages.push((error as Error).message);
    }
  }
  await checkpoint.close();
  const onnx = await convertToOnnx({ source: folder, output: join(dir, "never"), bits: 32 }).then(() => "accepted", (error: Error) => (error instanceof UserError ? error.message : `internal: ${error.message}`));
  return [...messages, onnx];
}

describe("config.json sizes that do not fit the tensors or any real model are refused by every planner", () => {
  it.each([
    [{ num_hidden_layers: 2 ** 31 }, /'num_hidden_layers' must be a positive integer up to 4096, got 2147483648/],
    [{ num_hidden_layers: 4 }, /num_hidden_layers is 4, but the checkpoint has 6 blocks of tensors/],
    [{ vocab_size: 2e7 }, /vocab_size 20000000 and hidden_size 256 do not match the token embedding's shape \[4096, 256\]/],
    [{ num_attention_heads: 16, head_dim: 16 }, /num_key_value_heads 4 x head_dim 16 = 64 rows, but block 0's attn_k has 128/],
    [{ num_key_value_heads: 3 }, /num_key_value_heads 3 must be a positive divisor of num_attention_heads 8/],
    [{ num_key_value_heads: 2.5 }, /'num_key_value_heads' must be a positive integer up to 8, got 2.5/],
    [{ hidden_size: 1e9 }, /'hidden_size' must be a positive integer up to 16777216/],
    [{ rope_scaling: { rope_type: 5, factor: 2 } }, /rope_scaling's rope_type must be a string, got 5/],
  ])("%j", async (edits, message) => {
    const messages = await refusals(withConfig(edits));
    for (const text of messages) expect(text).toMatch(message);
    for (const text of messages) expect(text).toContain("config.json");
  });
});

describe("a context too long for ONNX's cos/sin tables is refused before the export starts", () => {
  it("max_position_embeddings 2^31 - 1: exit 2 with the key named, in well under a second", async () => {
    const folder = withConfig({ max_position_embeddings: 2 ** 31 - 1 });
    const output = join(dir, "long-context");
    await expect(convertToOnnx({ source: folder, output, bits: 32 })).rejects.toThrow(/config\.json: max_position_embeddings 2147483647 would make each ONNX cos\/sin table 128\.0 GiB/);
  });
});

describe("tensor shapes that no layer has are refused before anything is sized by them", () => {
  // Rows are read whole: a row of 2^31 values used to reach a 8 GiB allocation, reported as a problem with the output file.
  it.each(["gguf", "onnx", "mlx"] as const)("%s: a norm weight declared as 2^31 values (8 GiB, a sparse file) names the tensor and the file", (to) => {
    const folder = copyFixture(TINY_LLAMA, tempDir());
    redeclareAsSparse(join(folder, "model.safetensors"), "model.norm.weight", [2 ** 31]);
    expectRefused(folder, /model\.safetensors, tensor 'model\.norm\.weight': its rows of 2147483648 values are longer than any layer's \(at most 16777216\)/, to);
  });

  it.each(["gguf", "mlx"] as const)("%s: a norm weight of 2^20 values, not hidden_size's 256 (was converted into a model no runtime loads)", (to) => {
    const folder = copyFixture(TINY_LLAMA, tempDir());
    redeclareAsSparse(join(folder, "model.safetensors"), "model.norm.weight", [2 ** 20]);
    expectRefused(folder, /model\.safetensors, tensor 'model\.norm\.weight': expected shape \[256\] \(from config\.json\), found \[1048576\]/, to);
  });
});
