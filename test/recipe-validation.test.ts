// Malformed recipes through the CLI: exit 2, file:line:column, nothing written. The in-process
// checks of the recipe parser and schema are in recipes.test.ts (fast tier).

import { existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { TINY_LLAMA, tempDir } from "./support/cli.js";
import { runEdgequant } from "./support/fake-cli.js";

const SRC = TINY_LLAMA;

/** A malformed recipe, the line and column its first problem is reported at, and what the message says. */
interface Case {
  readonly name: string;
  readonly text: string;
  readonly at: string;
  readonly message: RegExp;
}

const CASES: readonly Case[] = [
  { name: "unknown top-level key", text: `source: ${SRC}\noutputs:\n  gguf: [q8_0]\nthread: 4\n`, at: "4:1", message: /unknown key 'thread' in the recipe \(did you mean 'threads'\?\); expected one of: name, description, source, out, threads, outputs, fit/ },
  { name: "unknown key in an output", text: `source: ${SRC}\noutputs:\n  gguf:\n    - scheme: q8_0\n      splt-max-size: 2G\n`, at: "5:7", message: /unknown key 'splt-max-size' in outputs\.gguf\[0\] \(did you mean 'split-max-size'\?\)/ },
  { name: "unknown output format", text: `source: ${SRC}\noutputs:\n  tflite:\n    - bits: 8\n`, at: "3:3", message: /unknown key 'tflite' in outputs; expected one of: gguf, onnx, mlx/ },
  { name: "wrong type: threads", text: `source: ${SRC}\nthreads: four\noutputs:\n  gguf: [q8_0]\n`, at: "2:10", message: /threads must be a whole number; got the string 'four'/ },
  { name: "wrong type: outputs as a list", text: `source: ${SRC}\noutputs:\n  - q8_0\n`, at: "3:3", message: /outputs must be a mapping \(key: value lines\); got a list/ },
  { name: "wrong type: GGUF item", text: `source: ${SRC}\noutputs:\n  gguf:\n    - 5\n`, at: "4:7", message: /outputs\.gguf\[0\] must be a scheme name or a mapping .*; got the number 5/ },
  { name: "wrong type: fit devices", text: `source: ${SRC}\noutputs:\n  gguf: [q8_0]\nfit:\n  devices: iphone-15\n`, at: "5:12", message: /fit\.devices must be a list .*; got the string 'iphone-15'/ },
  { name: "unknown ONNX bits", text: `source: ${SRC}\noutputs:\n  onnx:\n    - bits: 4bit\n`, at: "4:13", message: /outputs\.onnx\[0\]\.bits: unknown ONNX bits '4bit'; expected one of: 32, 16, 8, 4, 1\.58/ },
  { name: "unknown scheme", text: `source: ${SRC}\noutputs:\n  gguf:\n    - q8_0\n    - q4_x\n`, at: "5:7", message: /outputs\.gguf\[1\]: unknown GGUF scheme 'q4_x' \(did you mean 'q4_0'\?\); expected one of: f32, f16, bf16, q8_0/ },
  { name: "scheme in capitals", text: `source: ${SRC}\noutputs:\n  gguf:\n    - scheme: Q4_K_M\n`, at: "4:15", message: /unknown GGUF scheme 'Q4_K_M' \(did you mean 'q4_k_m'\?\)/ },
  { name: "missing source", text: `name: x\noutputs:\n  gguf: [q8_0]\n`, at: "1:1", message: /missing key 'source' in the recipe: a model folder or \.safetensors file .*or hf:org\/name@revision/ },
  { name: "missing outputs", text: `source: ${SRC}\n`, at: "1:1", message: /missing key 'outputs' in the recipe/ },
  { name: "empty outputs", text: `source: ${SRC}\noutputs: {}\n`, at: "2:10", message: /outputs is empty; expected at least one of: gguf, onnx, mlx/ },
  { name: "source folder missing", text: `source: ./missing-model\noutputs:\n  gguf: [q8_0]\n`, at: "1:9", message: /source '\.\/missing-model' does not exist \(looked for .*missing-model\)/ },
  { name: "malformed hf: source", text: `source: hf:org/na me\noutputs:\n  gguf: [q8_0]\n`, at: "1:9", message: /'hf:org\/na me' is not a Hub model id; expected hf:org\/name\[@revision\]/ },
  { name: "output path escaping --out", text: `source: ${SRC}\noutputs:\n  gguf:\n    - scheme: q8_0\n      path: ../../etc/evil.gguf\n`, at: "5:13", message: /outputs\.gguf\[0\]\.path: '\.\.\/\.\.\/etc\/evil\.gguf' leaves the output folder/ },
  { name: "absolute output path", text: `source: ${SRC}\noutputs:\n  mlx:\n    - bits: 4\n      path: /tmp/mlx-out\n`, at: "5:13", message: /outputs\.mlx\[0\]\.path: '\/tmp\/mlx-out' is absolute/ },
  { name: "GGUF path without .gguf", text: `source: ${SRC}\noutputs:\n  gguf:\n    - scheme: q8_0\n      path: model.bin\n`, at: "5:13", message: /'model\.bin' must end with \.gguf/ },
  { name: "two outputs on one path", text: `source: ${SRC}\noutputs:\n  gguf:\n    - q8_0\n    - scheme: q8_0\n`, at: "5:7", message: /outputs\.gguf\[1\] writes 'tiny-llama-q8_0\.gguf', the same path as outputs\.gguf\[0\]/ },
  { name: "an output inside another's folder", text: `source: ${SRC}\noutputs:\n  gguf:\n    - scheme: q8_0\n      path: models/a.gguf\n  onnx:\n    - bits: 4\n      path: models\n`, at: "7:7", message: /outputs\.onnx\[0\] writes 'models', a path inside or around outputs\.gguf\[0\]/ },
  { name: "MLX output without bits", text: `source: ${SRC}\noutputs:\n  mlx:\n    - group-size: 64\n`, at: "4:7", message: /an MLX output needs 'bits' .* or 'mixed'/ },
  { name: "MLX mixed recipe with other bits", text: `source: ${SRC}\noutputs:\n  mlx:\n    - mixed: mixed_3_6\n      bits: 4\n`, at: "5:13", message: /mixed_3_6 quantizes with 3 and 6 bits, so its bits setting is 3/ },
  { name: "ONNX group size on float weights", text: `source: ${SRC}\noutputs:\n  onnx:\n    - bits: 16\n      group-size: 32\n`, at: "5:7", message: /group-size applies to 8-, 4- and 1\.58-bit ONNX outputs, not 16-bit/ },
  { name: "split size pattern", text: `source: ${SRC}\noutputs:\n  gguf:\n    - scheme: q8_0\n      split-max-size: 2GB\n`, at: "5:23", message: /'2GB' is not a valid split size \(.*a whole number of M or G, e\.g\. 2G\)/ },
  { name: "unknown fit device", text: `source: ${SRC}\noutputs:\n  gguf: [q8_0]\nfit:\n  devices: [iphone-15, iphone-99]\n`, at: "5:24", message: /fit\.devices\[1\]: unknown device 'iphone-99' \(did you mean 'iphone-15'\?\); known: iphone-15, / },
  { name: "YAML: unclosed flow sequence", text: `source: ${SRC}\noutputs:\n  gguf: [q8_0, q4_k_m\n`, at: "4:1", message: /YAML syntax error: Flow sequence in block collection must be sufficiently indented and end with a \]/ },
  { name: "YAML: bad indentation", text: `source: ${SRC}\noutputs:\n  gguf:\n    - q8_0\n   onnx: []\n`, at: "5:1", message: /YAML syntax error: All mapping items must start at the same column/ },
  { name: "YAML: duplicate key", text: `source: ${SRC}\nsource: other\noutputs:\n  gguf: [q8_0]\n`, at: "2:1", message: /YAML syntax error: Map keys must be unique/ },
  { name: "YAML: tab indentation", text: `source: ${SRC}\noutputs:\n\tgguf: [q8_0]\n`, at: "3:1", message: /YAML syntax error: Tabs are not allowed as indentation/ },
  { name: "YAML: two documents", text: `source: ${SRC}\noutputs:\n  gguf: [q8_0]\n---\nsource: x\n`, at: "4:1", message: /several YAML documents/ },
  { name: "empty file", text: ``, at: "1:1", message: /the recipe is empty/ },
  { name: "not a mapping", text: `just a string\n`, at: "1:1", message: /the recipe must be a mapping .*; got the string 'just a string'/ },
];

/** Runs at most `limit` at once. */
async function pool<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await work(items[i]!);
      }
    }),
  );
  return results;
}

describe("recipe validation", () => {
  it(`rejects ${CASES.length} malformed recipes with file:line:column, exit 2, and writes nothing`, async () => {
    expect(CASES.length).toBeGreaterThanOrEqual(15);
    const root = tempDir("edgequant-recipes-");
    const results = await pool(CASES, 4, async (c, ) => {
      const dir = join(root, c.name.replace(/[^a-z0-9]+/gi, "-"));
      mkdirSync(dir);
      writeFileSync(join(dir, "recipe.yaml"), c.text);
      const result = await runEdgequant(["run", "recipe.yaml", "--out", join(dir, "out"), "--no-progress"], { cwd: dir });
      return { c, dir, result };
    });
    for (const { c, dir, result } of results) {
      const firstLine = result.stderr.split("\n")[0] ?? "";
      console.log(`${c.name.padEnd(36)} exit ${result.code}  ${firstLine.slice(0, 150)}`);
      expect(result.code, c.name).toBe(2);
      expect(firstLine, c.name).toMatch(new RegExp(`^error: recipe\\.yaml:${c.at}: .*${c.message.source}`));
      expect(result.stdout, c.name).toBe("");
      // Nothing written: not the output folder, not a temporary file beside the recipe.
      expect(existsSync(join(dir, "out")), c.name).toBe(false);
      expect(readdirSync(dir), c.name).toEqual(["recipe.yaml"]);
    }
  });

  it("refuses an output path that leaves --out through a symlink, before any work", async () => {
    const dir = tempDir("edgequant-recipes-");
    const out = join(dir, "out");
    const elsewhere = join(dir, "elsewhere");
    mkdirSync(out);
    mkdirSync(elsewhere);
    symlinkSync(elsewhere, join(out, "link"));
    writeFileSync(join(dir, "recipe.yaml"), `source: ${SRC}\noutputs:\n  gguf:\n    - scheme: q8_0\n      path: link/model.gguf\n`);
    const result = await runEdgequant(["run", "recipe.yaml", "--out", out, "--no-progress"], { cwd: dir });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/outputs\.gguf\[0\]: 'link\/model\.gguf' goes through a symlink that points outside the output folder/);
    expect(readdirSync(elsewhere)).toEqual([]);
    expect(readdirSync(out)).toEqual(["link"]);
  });

  it.each([["model.gguf"], ["link/model.gguf"]])("refuses an output path %j through a dangling symlink (was an ENOENT crash), before any work", async (path) => {
    const dir = tempDir("edgequant-recipes-");
    const out = join(dir, "out");
    mkdirSync(out);
    symlinkSync(join(dir, "gone"), join(out, path.split("/")[0]!));
    writeFileSync(join(dir, "recipe.yaml"), `source: ${SRC}\noutputs:\n  gguf:\n    - scheme: q8_0\n      path: ${path}\n`);
    const result = await runEdgequant(["run", "recipe.yaml", "--out", out, "--no-progress"], { cwd: dir });
    expect(result.stderr).toMatch(new RegExp(`outputs\\.gguf\\[0\\]: '${path.replace(".", "\\.")}' goes through a symlink to nothing \\(.*gone\\); remove it or choose another path`));
    expect(result.code).toBe(2);
    expect(readdirSync(dir).sort()).toEqual(["out", "recipe.yaml"]);
    expect(readdirSync(out)).toEqual([path.split("/")[0]]);
  });
});
