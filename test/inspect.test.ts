import { rmSync } from "node:fs";
import { join } from "node:path";
import { gguf } from "@huggingface/gguf";
import { afterAll, describe, expect, it } from "vitest";
import { GgmlType } from "../src/quant/ggml-types.js";
import { TINY_LLAMA, runCli, tempDir } from "./support/cli.js";

const dir = tempDir();
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface InspectJson {
  format: string;
  tensors: { name: string; type: string; shape: number[]; bytes: number }[];
  metadata: Record<string, unknown>;
}

describe("@huggingface/gguf parses every GGUF we write, and inspect shows the same tensors", () => {
  for (const scheme of ["f32", "f16", "bf16"]) {
    it(`${scheme}: tensor names, types and shapes agree between @huggingface/gguf and inspect --json`, async () => {
      const output = join(dir, `tiny-${scheme}.gguf`);
      const converted = runCli(["convert", TINY_LLAMA, "--to", "gguf", "--scheme", scheme, "-o", output, "--no-progress", "--json"]);
      expect(converted.code, converted.stderr).toBe(0);
      expect(JSON.parse(converted.stdout)).toMatchObject({ output, format: "gguf", architecture: "llama", scheme, tensors: 57 });

      const parsed = await gguf(output, { allowLocalFile: true });
      const shown = runCli(["inspect", output, "--json"]);
      expect(shown.code, shown.stderr).toBe(0);
      const report = JSON.parse(shown.stdout) as InspectJson;
      expect(report.format).toBe("gguf");
      expect(report.tensors.map((t) => [t.name, t.type, t.shape])).toEqual(
        parsed.tensorInfos.map((t) => [t.name, GgmlType[t.dtype as unknown as GgmlType], t.shape.map(Number).reverse()]),
      );
      expect(parsed.metadata["general.architecture"]).toBe("llama");
      expect(report.metadata["general.file_type"]).toBe({ f32: 0, f16: 1, bf16: 32 }[scheme]);
      const weightType = { f32: "F32", f16: "F16", bf16: "BF16" }[scheme];
      expect(report.tensors.find((t) => t.name === "blk.0.attn_q.weight")?.type).toBe(weightType);
      expect(report.tensors.find((t) => t.name === "blk.0.attn_norm.weight")?.type).toBe("F32");
    });
  }

  it("inspect of the source folder lists its safetensors tensors with the same shapes", () => {
    const shown = runCli(["inspect", TINY_LLAMA, "--json"]);
    expect(shown.code, shown.stderr).toBe(0);
    const report = JSON.parse(shown.stdout) as InspectJson;
    expect(report.format).toBe("safetensors");
    expect(report.tensors).toHaveLength(57);
    expect(report.tensors.find((t) => t.name === "model.embed_tokens.weight")).toEqual({ name: "model.embed_tokens.weight", type: "BF16", shape: [4096, 256], bytes: 4096 * 256 * 2 });
  });

  it("human output names the tensors and totals", () => {
    const shown = runCli(["inspect", TINY_LLAMA]);
    expect(shown.stdout).toMatch(/model\.layers\.0\.self_attn\.q_proj\.weight\s+BF16\s+\[256, 256\]/);
    expect(shown.stdout).toMatch(/57 tensors, 6\.\d\dM parameters/);
  });
});
