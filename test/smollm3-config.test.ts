// SmolLM3 configs llama.cpp's smollm3 graph would compute wrongly are refused (exit 2) before any
// weight is read: it hard-codes NoPE on every 4th layer (src/models/smollm3.cpp,
// n_no_rope_layer_step = 4) and has no sliding-window attention.

import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { convertToGguf } from "../src/convert/gguf.js";
import { convertToOnnx } from "../src/convert/onnx.js";
import { UserError } from "../src/errors.js";
import { resolveScheme } from "../src/quant/schemes.js";
import { tempDir } from "./support/cli.js";
import { writeSyntheticCheckpoint } from "./support/synthetic-checkpoint.js";

const dir = tempDir("edgequant-smollm3-config-");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A 4-layer SmolLM3 checkpoint whose config.json gets `edit` applied and loses the `drop` keys. */
function checkpoint(name: string, edit: Record<string, unknown>, drop: string[] = []): string {
  const source = join(dir, name);
  writeSyntheticCheckpoint(source, { modelType: "smollm3", hidden: 64, layers: 4, heads: 2, kvHeads: 1, headDim: 32, intermediate: 128, vocab: 4096, seed: 3, dtype: "BF16" });
  const config = JSON.parse(readFileSync(join(source, "config.json"), "utf8")) as Record<string, unknown>;
  for (const key of drop) delete config[key];
  writeFileSync(join(source, "config.json"), JSON.stringify({ ...config, ...edit }));
  return source;
}

const gguf = (source: string) => convertToGguf({ source, output: join(dir, "out.gguf"), scheme: resolveScheme({ scheme: "f32" }) });

describe("SmolLM3 configs llama.cpp cannot run as written", () => {
  it("NoPE layers other than every 4th are refused for GGUF, naming both patterns", async () => {
    const source = checkpoint("nope-2", { no_rope_layers: [1, 0, 1, 0] });
    await expect(gguf(source)).rejects.toThrow(UserError);
    await expect(gguf(source)).rejects.toThrow(/NoPE layers \[1,3\] differ from llama\.cpp's smollm3 graph.*\(\[3\]\)/);
  });

  it("a no_rope_layer_interval other than 4 without a list is refused too", async () => {
    const source = checkpoint("interval-2", { no_rope_layer_interval: 2 }, ["no_rope_layers"]);
    await expect(gguf(source)).rejects.toThrow(/NoPE layers \[1,3\] differ/);
  });

  it("sliding-window attention is refused", async () => {
    await expect(gguf(checkpoint("swa", { use_sliding_window: true, sliding_window: 64 }))).rejects.toThrow(/no sliding-window attention/);
  });

  it("a no_rope_layers list of the wrong length is refused for every format", async () => {
    const source = checkpoint("short", { no_rope_layers: [1, 1, 1] });
    await expect(gguf(source)).rejects.toThrow(/'no_rope_layers' has 3 entries for 4 layers/);
    await expect(convertToOnnx({ source, output: join(dir, "out-onnx"), bits: 32 })).rejects.toThrow(/'no_rope_layers' has 3 entries for 4 layers/);
  });
});
