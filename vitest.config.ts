import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // llama.cpp loads and conversions of real models take seconds, not milliseconds.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Several suites load llama.cpp; one fork at a time keeps peak memory predictable on 2-core CI.
    pool: "forks",
    fileParallelism: false,
    reporters: ["default", "./test/support/summary-reporter.ts"],
  },
});
