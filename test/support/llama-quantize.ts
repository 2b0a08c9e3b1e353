// llama.cpp's own quantizer (llama_model_quantize in the libllama that node-llama-cpp ships), called
// through koffi. It runs in a child process: the library must not share a process with
// node-llama-cpp's addon, and a timed run should be measured alone (wall time, peak RSS).

import { execFileSync, spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const BINS = join(ROOT, "node_modules/@node-llama-cpp/linux-x64/bins/linux-x64");

/** The shipped generic build: libggml-base's reference quantizers, no -march=native. */
export function llamaLibraryPath(): string {
  const name = readdirSync(BINS).find((file) => /^libllama\.v[\d.]+\.so$/.test(file));
  if (!name) throw new Error(`no libllama.v*.so in ${BINS}`);
  return join(BINS, name);
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

/** True when the shipped library can be loaded here (x64 Linux with the prebuilt package installed). */
export function llamaQuantizeAvailable(): boolean {
  try {
    execFileSync(process.execPath, ["-e", `require("koffi").load(${JSON.stringify(llamaLibraryPath())})`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}
