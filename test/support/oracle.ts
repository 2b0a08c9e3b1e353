// The oracles are the independent implementations the tests compare our output against: ggml's
// quantizer, llama.cpp's quantizer and runtime, onnxruntime, transformers.js and llama.cpp's own
// source. A suite whose oracle is missing has checked nothing, so it must fail, never skip: every
// support module reaches its oracle through requireOracle, which throws an error naming the oracle
// and how to get it.

import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export interface Oracle {
  /** What is missing, e.g. "libggml-base.so from @node-llama-cpp/linux-x64". */
  readonly name: string;
  /** How to get it. */
  readonly remedy: string;
}

const NODE_MODULES = fileURLToPath(new URL("../../node_modules/", import.meta.url));
/** node-llama-cpp's prebuilt CPU package for this machine (its binaries are never built or downloaded here). */
export const LLAMA_CPP_PACKAGE = `@node-llama-cpp/${process.platform}-${process.arch}`;
const SHARED_LIBRARY = (base: string) => (process.platform === "win32" ? `${base}.dll` : process.platform === "darwin" ? `lib${base}.dylib` : `lib${base}.so`);

export const ORACLES = {
  ggml: { name: `${SHARED_LIBRARY("ggml-base")} from ${LLAMA_CPP_PACKAGE}`, remedy: "npm install" },
  llamaQuantize: { name: `llama_model_quantize in ${SHARED_LIBRARY("llama")} from ${LLAMA_CPP_PACKAGE}`, remedy: "npm install" },
  llamaCpp: { name: `llama.cpp through node-llama-cpp, prebuilt CPU binaries from ${LLAMA_CPP_PACKAGE}`, remedy: "npm install" },
  llamaSource: { name: "llama.cpp's source tree, node_modules/node-llama-cpp/llama/gitRelease.bundle, read with git", remedy: "npm install, and git on PATH" },
  llamaCppBuild: { name: "llama.cpp's CLI tools (e.g. llama-completion), built for the CPU with CMake from node_modules/node-llama-cpp/llama/gitRelease.bundle", remedy: "npm install, and cmake, a C/C++ compiler, make, git and tar on PATH (Debian: apt-get install cmake build-essential git)" },
  onnxruntime: { name: "onnxruntime-node and its native binding", remedy: "npm install" },
  transformersJs: { name: "transformers.js (@huggingface/transformers)", remedy: "npm install" },
} as const satisfies Record<string, Oracle>;

export class OracleMissingError extends Error {
  constructor(
    readonly oracle: Oracle,
    cause: unknown,
  ) {
    const detail = cause instanceof Error ? cause.message : String(cause);
    super(`oracle missing: ${oracle.name} (${oracle.remedy}): ${detail}`, { cause });
    this.name = "OracleMissingError";
  }
}

/** Runs `check`, which returns the oracle or throws; any failure becomes an OracleMissingError. */
export function requireOracle<T>(oracle: Oracle, check: () => T): T {
  try {
    return check();
  } catch (error) {
    throw error instanceof OracleMissingError ? error : new OracleMissingError(oracle, error);
  }
}

/** requireOracle for oracles that load asynchronously (dynamic imports, native addons). */
export async function requireOracleAsync<T>(oracle: Oracle, check: () => Promise<T>): Promise<T> {
  try {
    return await check();
  } catch (error) {
    throw error instanceof OracleMissingError ? error : new OracleMissingError(oracle, error);
  }
}

/**
 * The folder of node-llama-cpp's prebuilt binaries for this machine
 * (node_modules/@node-llama-cpp/<platform>-<arch>/bins/<platform>-<arch>), holding libggml-base,
 * libllama and llama-addon.node. Throws an OracleMissingError for `oracle` when it is not there.
 */
export function llamaCppBinaries(oracle: Oracle): string {
  return requireOracle(oracle, () => {
    const bins = join(NODE_MODULES, LLAMA_CPP_PACKAGE, "bins");
    if (!existsSync(bins)) throw new Error(`${bins} does not exist`);
    for (const dir of readdirSync(bins)) {
      if (existsSync(join(bins, dir, "llama-addon.node"))) return join(bins, dir);
    }
    throw new Error(`no llama-addon.node in any folder of ${bins}`);
  });
}

/** Checks, without loading it, that node-llama-cpp has prebuilt binaries to load on this machine. */
export function requireLlamaCpp(): void {
  llamaCppBinaries(ORACLES.llamaCpp);
}
