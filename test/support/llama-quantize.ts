// llama.cpp's own quantizer (llama_model_quantize in the libllama that node-llama-cpp ships), called
// through koffi. It runs in a child process: the library must not share a process with
// node-llama-cpp's addon, and a timed run should be measured alone (wall time, peak RSS).

import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { llamaCppBinaries, ORACLES, OracleMissingError, requireOracle } from "./oracle.js";

/** The shipped generic build: libggml-base's reference quantizers, no -march=native. */
export function llamaLibraryPath(): string {
  const bins = llamaCppBinaries(ORACLES.llamaQuantize);
  return requireOracle(ORACLES.llamaQuantize, () => {
    const name = readdirSync(bins).find((file) => /^libllama\.v[\d.]+\.(so|dylib|dll)$/.test(file));
    if (!name) throw new Error(`no libllama.v*.so in ${bins}`);
    return join(bins, name);
  });
}

export interface LlamaQuantizeRun {
  readonly seconds: number;
  readonly peakRssBytes: number;
}

/** Runs llama_model_quantize(input, output, { ftype, nthread }) and waits for it. */
export function llamaQuantize(input: string, output: string, fileType: number, threads: number): LlamaQuantizeRun {
  const started = performance.now();
  const result = spawnSync(process.execPath, ["--import", "tsx", fileURLToPath(import.meta.url), input, output, String(fileType), String(threads)], {
    encoding: "utf8",
    maxBuffer: 64 << 20,
  });
  const seconds = (performance.now() - started) / 1000;
  if (result.status !== 0) throw new Error(`llama_model_quantize failed (${result.status}):\n${result.stderr.slice(-4000)}`);
  const peakRssBytes = Number(/peak-rss-bytes=(\d+)/.exec(result.stderr)?.[1] ?? NaN);
  return { seconds, peakRssBytes };
}

async function runInThisProcess(input: string, output: string, fileType: number, threads: number): Promise<void> {
  const { default: koffi } = await import("koffi");
  const lib = koffi.load(llamaLibraryPath());
  koffi.struct("llama_model_quantize_params", {
    nthread: "int32_t",
    ftype: "int",
    output_tensor_type: "int",
    token_embedding_type: "int",
    allow_requantize: "bool",
    quantize_output_tensor: "bool",
    only_copy: "bool",
    pure: "bool",
    keep_split: "bool",
    dry_run: "bool",
    imatrix: "void *",
    kv_overrides: "void *",
    tt_overrides: "void *",
    prune_layers: "void *",
    max_buf_size: "size_t",
  });
  const backendInit = lib.func("void llama_backend_init(void)");
  const defaults = lib.func("llama_model_quantize_params llama_model_quantize_default_params(void)");
  const quantize = lib.func("uint32_t llama_model_quantize(const char *, const char *, const llama_model_quantize_params *)");
  backendInit();
  const params = { ...defaults(), ftype: fileType, nthread: threads };
  const status = quantize(input, output, params) as number;
  process.stderr.write(`peak-rss-bytes=${process.resourceUsage().maxRSS * 1024}\n`);
  if (status !== 0) throw new Error(`llama_model_quantize returned ${status}`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [input, output, fileType, threads] = process.argv.slice(2);
  await runInThisProcess(input!, output!, Number(fileType), Number(threads));
}

/**
 * Checks that the shipped library loads here and exports llama_model_quantize (in a child process,
 * as llamaQuantize runs it). Throws an OracleMissingError naming the library when it does not.
 */
export function requireLlamaQuantize(): void {
  const path = llamaLibraryPath();
  const probe = `require("koffi").load(${JSON.stringify(path)}).func("uint32_t llama_model_quantize(const char *, const char *, const void *)")`;
  const result = spawnSync(process.execPath, ["-e", probe], { encoding: "utf8", cwd: fileURLToPath(new URL("../..", import.meta.url)) });
  if (result.status !== 0) throw new OracleMissingError(ORACLES.llamaQuantize, new Error(`${path} does not load: ${(result.stderr || result.error?.message || "").trim().split("\n").slice(-3).join(" ")}`));
}
