// An architecture edgequant does not convert is refused before any work, naming what is
// supported and, where llama.cpp's converter knows the class, what llama.cpp makes of it and the
// nearest family edgequant does convert. The table of llama.cpp's converter classes is checked
// against the bundled llama.cpp source (refresh: EDGEQUANT_UPDATE_LLAMA_CPP_CONVERTERS=1).
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import recorded from "../src/arch/llama-cpp-converters.json" with { type: "json" };
import { TINY_LLAMA, copyFixture, listFiles, runCli, tempDir } from "./support/cli.js";
import { llamaCppConverterTable } from "./support/llama-converters.js";
import { llamaSourceCommit } from "./support/llama-source.js";

const TABLE = join(import.meta.dirname, "..", "src", "arch", "llama-cpp-converters.json");

describe("the converter table is llama.cpp's, as bundled with node-llama-cpp", () => {
  it("maps every text-model class of conversion/__init__.py to its converter's GGUF architectures", () => {
    const converters = llamaCppConverterTable();
    expect(Object.keys(converters).length).toBeGreaterThan(200);
    expect(converters["SmolLM3ForCausalLM"]).toEqual(["smollm3", "llama"]);
    expect(converters["Qwen3ForCausalLM"]).toEqual(["qwen3", "qwen2"]);
    const expected = {
      description: "llama.cpp's converter: each Hugging Face text-model class (conversion/__init__.py TEXT_MODEL_MAP) -> the GGUF architectures (gguf-py MODEL_ARCH_NAMES) of its converter class and the classes that one is built on, its own first",
      source: { file: "conversion/*.py", bundleCommit: llamaSourceCommit(), via: "node-llama-cpp llama/gitRelease.bundle" },
      converters,
    };
    if (process.env["EDGEQUANT_UPDATE_LLAMA_CPP_CONVERTERS"] === "1") writeFileSync(TABLE, JSON.stringify(expected, null, 2) + "\n");
    else expect(recorded, "src/arch/llama-cpp-converters.json is stale: regenerate it (see the top of this test)").toEqual(expected);
  });
});

const outDir = tempDir();
afterAll(() => rmSync(outDir, { recursive: true, force: true }));

/** The tiny Llama with another `architectures` entry, converted: exit 2, the message, nothing written. */
function refusal(architecture: string): string {
  const dir = copyFixture(TINY_LLAMA);
  const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
  writeFileSync(join(dir, "config.json"), JSON.stringify({ ...config, architectures: [architecture] }));
  const output = join(outDir, `${architecture}.gguf`);
  const result = runCli(["convert", dir, "--to", "gguf", "-o", output, "--no-progress"]);
  expect(result.code).toBe(2);
  expect(result.stderr).not.toMatch(/\n\s+at /);
  expect(existsSync(output)).toBe(false);
  expect(listFiles(outDir)).toEqual([]);
  const message = result.stderr.trim();
  expect(message).toContain(`${join(dir, "config.json")}: architecture ${architecture} is not supported; supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM`);
  return message;
}

describe("an architecture edgequant does not convert gets what is supported and the nearest family", () => {
  it("a class llama.cpp builds on a supported converter names that family (Arcee is Llama's converter plus its own arch)", () => {
    expect(refusal("ArceeForCausalLM")).toMatch(/llama\.cpp's converter makes it 'arcee', built on its 'llama' converter; the nearest supported family is llama \(LlamaForCausalLM, MistralForCausalLM\)$/);
  });

  it("a class llama.cpp converts as a supported GGUF architecture says so (Mixtral is llama with experts)", () => {
    expect(refusal("MixtralForCausalLM")).toMatch(/llama\.cpp's converter makes it 'llama', the same GGUF architecture as llama \(LlamaForCausalLM, MistralForCausalLM\)$/);
  });

  it("a class llama.cpp converts to an architecture with no supported ancestor says edgequant does not convert it yet", () => {
    expect(refusal("GPTBigCodeForCausalLM")).toMatch(/llama\.cpp's converter makes it 'starcoder', which edgequant does not convert yet$/);
  });

  it("a class llama.cpp does not know gets the supported list alone", () => {
    expect(refusal("MadeUpForCausalLM")).toMatch(/supported: [^;]+$/);
  });
});
