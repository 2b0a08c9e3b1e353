// The recipe parser, schema and bundled recipes, in process (fast tier). Malformed recipes run
// through the CLI are in recipe-validation.test.ts.

import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Ajv } from "ajv";
import { describe, expect, it } from "vitest";
import { loadCatalogue } from "../src/fit/devices.js";
import { loadRecipe, parseRecipe, RecipeError, recipeSchema } from "../src/pipeline/recipe.js";
import { SCHEMES } from "../src/quant/schemes.js";
import { REPO_ROOT, TINY_LLAMA, tempDir } from "./support/cli.js";

const SRC = TINY_LLAMA;

describe("recipes", () => {
  it("reports every problem at once, in file order", () => {
    const text = `sorce: ${SRC}\nthreads: 0\noutputs:\n  gguf:\n    - q9\n  mlx:\n    - bits: 7\n`;
    const error = (() => {
      try {
        parseRecipe(text, "r.yaml", REPO_ROOT);
      } catch (e) {
        return e;
      }
    })() as RecipeError;
    expect(error).toBeInstanceOf(RecipeError);
    expect(error.problems.map((p) => `${p.line}:${p.column}`)).toEqual(["1:1", "1:1", "2:10", "5:7", "7:13"]);
    expect(error.message.split("\n")).toHaveLength(5);
    expect(error.message).toMatch(/r\.yaml:1:1: missing key 'source'/);
    expect(error.message).toMatch(/r\.yaml:1:1: unknown key 'sorce' in the recipe \(did you mean 'source'\?\)/);
    expect(error.message).toMatch(/r\.yaml:2:10: threads must be at least 1; got 0/);
    expect(error.message).toMatch(/r\.yaml:7:13: outputs\.mlx\[0\]\.bits: unknown MLX bits the number 7/);
  });

  it("resolves a relative source against the recipe's folder, not the current one", () => {
    const dir = tempDir("edgequant-recipes-");
    mkdirSync(join(dir, "recipes"));
    writeFileSync(join(dir, "recipes", "r.yaml"), `source: ../model\noutputs:\n  gguf: [q8_0]\n`);
    mkdirSync(join(dir, "model"));
    const recipe = loadRecipe(join(dir, "recipes", "r.yaml"));
    expect(recipe.source).toEqual({ kind: "local", uri: "../model", path: join(dir, "model") });
    expect(recipe.name).toBe("model");
    expect(recipe.outputs[0]!.path).toBe("model-q8_0.gguf");
  });

  it("the schema is valid, strict, and lists exactly the schemes the converter knows", () => {
    const ajv = new Ajv({ strict: true, allowUnionTypes: true });
    expect(() => ajv.compile(recipeSchema())).not.toThrow();
    const definitions = recipeSchema().definitions as Record<string, { enum: string[] }>;
    expect(definitions["ggufScheme"]!.enum).toEqual(SCHEMES.map((s) => s.name));
  });

  it("every bundled recipe is valid", async () => {
    const known = (await loadCatalogue()).devices.map((d) => d.id);
    const dir = join(REPO_ROOT, "recipes");
    const files = readdirSync(dir).filter((f) => f.endsWith(".yaml"));
    expect(files.length).toBeGreaterThanOrEqual(7);
    for (const file of files) {
      const recipe = loadRecipe(join(dir, file));
      expect(recipe.outputs.length, file).toBeGreaterThan(0);
      if (recipe.fit) for (const device of recipe.fit.devices ?? []) expect(known, `${file}: ${device}`).toContain(device);
      if (recipe.source.kind === "hub") {
        // Pinned: a 40-hex commit, never a moving branch, or the marked placeholder the file explains.
        expect(recipe.source.revision, file).toMatch(/^[0-9a-f]{40}$|^PIN-A-COMMIT-HERE$/);
        if (recipe.source.revision === "PIN-A-COMMIT-HERE") {
          console.log(`${file}: placeholder revision, to pin`);
          expect(readFileSync(join(dir, file), "utf8"), file).toMatch(/PLACEHOLDER REVISION/);
        }
      }
      expect(readFileSync(join(dir, file), "utf8"), file).toMatch(/\$schema=\.\.\/formats\/recipe\.schema\.json/);
    }
  });
});
