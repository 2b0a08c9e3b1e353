import { configDefaults, defineConfig } from "vitest/config";

/**
 * The fast tier (`npm run test:unit`, seconds): suites that load no native oracle (no llama.cpp,
 * libggml, onnxruntime or transformers.js) and convert nothing bigger than the tiny fixture.
 * tokenizer-tables reads llama.cpp's source bundle (a git bundle inside node_modules, no binary);
 * mixture-rules checks src's mixture rules against llama_model_quantize's recorded types.
 * `npm test` runs these and every other suite.
 */
export const UNIT_SUITES = [
  "test/float.test.ts",
  "test/gguf-writer.test.ts",
  "test/safetensors-reader.test.ts",
  "test/mlx-quantizer.test.ts",
  "test/nbits.test.ts",
  "test/fit-alloc.test.ts",
  "test/gguf-cache.test.ts",
  "test/tokenizer-tables.test.ts",
  "test/mixture-rules.test.ts",
  "test/recipes.test.ts",
  "test/llama3-rope.test.ts",
  "test/phi3-gguf-metadata.test.ts",
  "test/device-catalogue.test.ts",
];

export default defineConfig({
  test: {
    // llama.cpp loads and conversions of real models take seconds, not milliseconds.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Several suites load llama.cpp; one fork at a time keeps peak memory predictable on 2-core CI.
    pool: "forks",
    fileParallelism: false,
    reporters: ["default", "./test/support/summary-reporter.ts"],
    projects: [
      // small and free of native libraries: its files may run side by side
      { extends: true, test: { name: "unit", include: UNIT_SUITES, fileParallelism: true } },
      { extends: true, test: { name: "integration", include: ["test/**/*.test.ts"], exclude: [...configDefaults.exclude, ...UNIT_SUITES] } },
    ],
  },
});
