import { copyFileSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gguf, GGMLQuantizationType } from "@huggingface/gguf";
import { afterAll, describe, expect, it } from "vitest";
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
      expect(JSON.parse(converted.stdout)).toMatchObject({ output, format: "gguf", architecture: "llama", gguf: { scheme, tensors: 57 } });

      const parsed = await gguf(output, { allowLocalFile: true });
      const shown = runCli(["inspect", output, "--json"]);
      expect(shown.code, shown.stderr).toBe(0);
      const report = JSON.parse(shown.stdout) as InspectJson;
      expect(report.format).toBe("gguf");
      expect(report.tensors.map((t) => [t.name, t.type, t.shape])).toEqual(
        // type names from @huggingface/gguf's enum, not from src/'s
        parsed.tensorInfos.map((t) => [t.name, GGMLQuantizationType[t.dtype], t.shape.map(Number).reverse()]),
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

describe("inspect --stats measures each tensor's quantization error against the source", () => {
  interface Stats { name: string; type: string; rmse: number; maxAbsError: number; relativeRmse: number }
  function stats(scheme: string): Stats[] {
    const output = join(dir, `stats-${scheme}.gguf`);
    expect(runCli(["convert", TINY_LLAMA, "--to", "gguf", "--scheme", scheme, "-o", output, "--no-progress"]).code).toBe(0);
    const shown = runCli(["inspect", output, "--stats", "--source", TINY_LLAMA, "--json"]);
    expect(shown.code, shown.stderr).toBe(0);
    return (JSON.parse(shown.stdout) as { stats: Stats[] }).stats;
  }

  it("F32 output of a BF16 model has zero error everywhere (RoPE-permuted Q/K included)", () => {
    const result = stats("f32");
    expect(result).toHaveLength(57);
    expect(result.every((t) => t.rmse === 0 && t.maxAbsError === 0)).toBe(true);
  });

  it("error grows as bits shrink: Q8_0 < Q6_K < Q4_K_M, all well below the weights' own scale", () => {
    const mean = (scheme: string) => {
      const quantized = stats(scheme).filter((t) => t.type !== "F32");
      return quantized.reduce((sum, t) => sum + t.relativeRmse, 0) / quantized.length;
    };
    const [q8, q6, q4] = [mean("q8_0"), mean("q6_k"), mean("q4_k_m")];
    console.log(`mean relative RMSE: q8_0 ${(100 * q8).toFixed(2)}%, q6_k ${(100 * q6).toFixed(2)}%, q4_k_m ${(100 * q4).toFixed(2)}%`);
    expect(q8).toBeLessThan(q6);
    expect(q6).toBeLessThan(q4);
    expect(q4).toBeLessThan(0.1);
  });

  it("--stats without --source says what it needs", () => {
    const result = runCli(["inspect", join(dir, "stats-f32.gguf"), "--stats"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/--stats compares against the model the file came from: give it with --source/);
  });
});

describe("inspect lists a checkpoint of any tensor count", () => {
  it("300,000 tensors (their widest name measured without a spread, which overflowed the stack)", () => {
    const folder = join(dir, "many");
    mkdirSync(folder);
    const count = 300_000;
    const header: Record<string, unknown> = {};
    for (let i = 0; i < count; i++) header[`model.layers.${i}.extra.weight`] = { dtype: "F32", shape: [1], data_offsets: [4 * i, 4 * i + 4] };
    const json = Buffer.from(JSON.stringify(header));
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(json.length));
    writeFileSync(join(folder, "model.safetensors"), Buffer.concat([length, json, Buffer.alloc(4 * count)]));
    copyFileSync(join(TINY_LLAMA, "config.json"), join(folder, "config.json"));
    // Tens of megabytes of output: piped through a counter, with the CLI's exit code kept.
    const shown = runCli(["inspect", folder], { shellPrefix: "set -o pipefail;", pipeTo: "tail -n 3" });
    expect(shown.stderr).toBe("");
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/300000 tensors/);
    const counted = "node -e \"let s = ''; process.stdin.on('data', (d) => (s += d)).on('end', () => console.log(JSON.parse(s).tensors.length))\"";
    const listed = runCli(["inspect", folder, "--json"], { shellPrefix: "set -o pipefail;", pipeTo: counted });
    expect(listed.stderr).toBe("");
    expect(listed.code).toBe(0);
    expect(listed.stdout.trim()).toBe(String(count));
  }, 120_000);
});
