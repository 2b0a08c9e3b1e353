import fc from "fast-check";
import { stringify } from "yaml";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { parseRecipe } from "../../../src/pipeline/recipe.js";
import type { FuzzTarget } from "../target.js";
import { linkMicroModel } from "./base.js";
import { anyJson, applyMutations, mutations } from "./values.js";

const VALID_RECIPE = {
  name: "tiny",
  source: "./model",
  outputs: { gguf: ["q4_k_m", { scheme: "q8_0", "split-max-size": "1G" }], onnx: [{ bits: 4, layout: "genai" }], mlx: [{ bits: 4, "group-size": 64 }] },
  fit: { devices: ["iphone-15"], contexts: [2048, "8k"] },
};

/** YAML that is not a recipe: aliases that expand, tags, duplicate keys, documents. */
const HOSTILE_TEXTS = ["a: &a [*a]", "a: &x [1,2]\nb: [*x,*x,*x,*x]", "!!binary x", "name: a\nname: b", "---\n---\n---", "? [a]\n: b", "\t: x", "outputs:\n  gguf: !!js/function 'x'"];

export const recipeTarget: FuzzTarget<string> = {
  name: "recipe",
  description: "recipe YAML: a valid recipe with nodes replaced, hostile YAML features and raw text",
  input: fc.oneof(
    { weight: 5, arbitrary: mutations(3).map((edits) => stringify(applyMutations(VALID_RECIPE, edits))) },
    { weight: 1, arbitrary: fc.constantFrom(...HOSTILE_TEXTS) },
    { weight: 1, arbitrary: anyJson.map((value) => stringify(value)) },
    { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
  ),
  async run(input, scratch) {
    mkdirSync(join(scratch, "model"));
    linkMicroModel(join(scratch, "model"), []);
    parseRecipe(input, `${scratch}/recipe.yaml`, scratch);
  },
};
