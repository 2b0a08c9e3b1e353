// Typos get a suggestion wherever a name is typed: schemes, devices, recipe keys and values,
// commands and options. Names are matched normalised (case, '_' and '-' ignored), so the way
// people write q4_k_m or iphone-15 without punctuation finds the real name.
import { describe, expect, it } from "vitest";
import { selectDevices, type Catalogue } from "../src/fit/devices.js";
import { parseRecipe } from "../src/pipeline/recipe.js";
import { resolveScheme } from "../src/quant/schemes.js";
import { closest } from "../src/suggest.js";
import { runCli, TINY_LLAMA } from "./support/cli.js";

const messageOf = (run: () => unknown): string => {
  try {
    run();
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error("expected a refusal");
};

describe("a mistyped scheme is answered with the scheme meant", () => {
  it.each([
    ["q4km", "q4_k_m"],
    ["Q4KM", "q4_k_m"],
    ["q4-k-m", "q4_k_m"],
    ["q5km", "q5_k_m"],
    ["q3kl", "q3_k_l"],
    ["q6k", "q6_k"],
    ["q8", "q8_0"],
    ["tq10", "tq1_0"],
    ["q4_0_", "q4_0"],
    ["bf61", "bf16"],
  ])("%s -> %s", (typed, meant) => {
    expect(messageOf(() => resolveScheme(typed))).toContain(`(did you mean '${meant}'?)`);
  });

  it("a name close to nothing gets the list, no guess", () => {
    const message = messageOf(() => resolveScheme("gptq"));
    expect(message).not.toContain("did you mean");
    expect(message).toContain("schemes: f32, f16");
  });
});

describe("a mistyped device is answered with the device meant", () => {
  const ids = ["iphone-15", "iphone-15-pro", "pixel-9-pro", "raspberry-pi-5-8gb", "raspberry-pi-5-16gb", "mac-mini-m4-16gb"];
  const catalogue = { devices: ids.map((id) => ({ id })) } as unknown as Catalogue;
  it.each([
    ["iphone15", "iphone-15"],
    ["iPhone-15-Pro", "iphone-15-pro"],
    ["pixel9pro", "pixel-9-pro"],
    ["raspberry-pi-5-16", "raspberry-pi-5-16gb"],
    ["macmini-m4-16gb", "mac-mini-m4-16gb"],
  ])("%s -> %s", (typed, meant) => {
    expect(messageOf(() => selectDevices(catalogue, [typed]))).toContain(`unknown device '${typed}' (did you mean '${meant}'?)`);
  });
});

describe("recipes: values and keys are matched the same way", () => {
  it("scheme: q4km in a recipe", () => {
    const problem = messageOf(() => parseRecipe(`source: ${TINY_LLAMA}\noutputs:\n  gguf: [q4km]\n`, "recipe.yaml", "."));
    expect(problem).toContain("unknown GGUF scheme 'q4km' (did you mean 'q4_k_m'?)");
  });

  it("the closest of several candidates wins, ties to the first listed", () => {
    expect(closest("split_max_size", ["split-max-size", "scheme"])).toBe("split-max-size");
    expect(closest("q4_k", ["q4_k_s", "q4_k_m"])).toBe("q4_k_s");
  });
});

describe("the CLI suggests commands, options and values", () => {
  it.each([
    [["conver", TINY_LLAMA], /unknown command 'conver'\n\(Did you mean convert\?\)/],
    [["convert", TINY_LLAMA, "--to", "gguf", "--shceme", "q8_0"], /unknown option '--shceme'\n\(Did you mean --scheme\?\)/],
    [["convert", TINY_LLAMA, "--to", "gguf", "--scheme", "q4km", "-o", "/nonexistent/x.gguf"], /unknown scheme 'q4km' \(did you mean 'q4_k_m'\?\)/],
  ])("%j", (args, message) => {
    const result = runCli(args);
    expect(result.stderr).toMatch(message);
    expect(result.code).toBe(2);
  });
});
