// The peak resident set of llama.cpp's own CLI on a GGUF: `/usr/bin/time -v llama-completion ...`
// with a prompt that fills the context (at least 90% of it, and at most n_ctx - 4 tokens, the most
// llama-completion accepts), so that the KV cache and the compute buffer are touched as a long
// prompt touches them. The fit model's predicted peak RSS is checked against these figures.
//
// The run is llama.cpp's defaults except what the measurement needs: mmap on (the default load
// mode), batch 2048 / ubatch 512 (defaults, read back from the log), no warmup, no conversation
// mode, no prompt echo, `--fit off` so llama.cpp never shrinks the requested context, one
// generated token. The prompt is the held-out corpus (test/fixtures/corpus-test.txt, repeated as
// needed) cut at a word boundary to the token count that llama-tokenize, built from the same
// source, reports for this GGUF's vocabulary; the count is then confirmed from the run's own log.

import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { llamaCppTool } from "./llama-build.js";
import { ORACLES, requireOracle } from "./oracle.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const CORPUS = join(ROOT, "test", "fixtures", "corpus-test.txt");
const TIME = "/usr/bin/time";
const MiB = 2 ** 20;

export interface PeakRssOptions {
  /** -c: the context size. */
  readonly context: number;
  /** -fa on | off. */
  readonly flashAttention: boolean;
  /** -t (and -tb); 2 unless given. */
  readonly threads?: number;
  /**
   * The prompt, verbatim, instead of one that fills the context: a short one measures the fixed
   * cost (model, KV cache, buffers reserved but mostly untouched) without the prompt's compute.
   */
  readonly prompt?: string;
}

/** llama.cpp's logged buffer sizes, in bytes (the log prints MiB with two decimals: +-5 KiB). */
export interface LlamaBuffers {
  /** Model buffers by ggml buffer type name, e.g. { CPU_Mapped, CPU_REPACK } (CPU when not mapped). */
  readonly model: Readonly<Record<string, number>>;
  /** KV cache buffers, summed (a sliding-window model logs two caches). */
  readonly kv: number;
  readonly compute: number;
  readonly output: number;
}

export interface PeakRss {
  /** /usr/bin/time's "Maximum resident set size", in bytes. */
  readonly maxRssBytes: number;
  /** The prompt's tokens as llama-completion counts them (--verbose-prompt's "number of tokens in prompt"); all are evaluated. */
  readonly promptTokens: number;
  /** llama.cpp's log (stdout and stderr) followed by /usr/bin/time's report. */
  readonly log: string;
  readonly buffers: LlamaBuffers;
  /** What llama.cpp ran with, read back from its log. */
  readonly nCtx: number;
  readonly nBatch: number;
  readonly nUbatch: number;
  /** The command line, for reports. */
  readonly command: readonly string[];
  readonly wallSeconds: number;
}

/**
 * Runs llama-completion on `gguf` under /usr/bin/time -v and returns its peak RSS. With no
 * `prompt`, the prompt fills between 90% of the context and n_ctx - 4 tokens (aiming at the top);
 * a run whose logged prompt misses that range is retried once with a corrected prompt, then fails.
 */
export async function measurePeakRss(gguf: string, options: PeakRssOptions): Promise<PeakRss> {
  requireOracle(ORACLES.llamaCppBuild, () => {
    if (!existsSync(TIME)) throw new Error(`${TIME} does not exist (Debian package "time")`);
  });
  const cli = await llamaCppTool("llama-completion");
  const { context } = options;
  const work = mkdtempSync(join(tmpdir(), "edgequant-rss-"));
  try {
    const promptFile = join(work, "prompt.txt");
    if (options.prompt !== undefined) {
      writeFileSync(promptFile, options.prompt);
      return await runCompletion(cli, gguf, promptFile, work, options);
    }
    const lowest = Math.ceil(0.9 * context);
    const highest = context - 4;
    if (lowest > highest) throw new Error(`context ${context} is too small to fill 90% of it`);
    let target = highest;
    for (let attempt = 0; ; attempt++) {
      const { text, tokens } = await fillingPrompt(gguf, lowest, target);
      writeFileSync(promptFile, text);
      let evaluated: number;
      let log: string;
      try {
        const run = await runCompletion(cli, gguf, promptFile, work, options, tokens);
        if (run.promptTokens >= lowest && run.promptTokens <= highest) return run;
        ({ promptTokens: evaluated, log } = run);
      } catch (error) {
        if (!(error instanceof PromptTooLong)) throw error;
        ({ tokens: evaluated, log } = error);
      }
      if (attempt > 0) throw new Error(`${gguf}: llama-completion read ${evaluated} prompt tokens, outside ${lowest}..${highest} for context ${context} (llama-tokenize counted ${tokens})\n${log}`);
      // llama-completion tokenized differently from llama-tokenize: shift the target by the difference.
      target = Math.max(lowest, Math.min(highest, target - (evaluated - tokens)));
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

class PromptTooLong extends Error {
  constructor(
    readonly tokens: number,
    readonly log: string,
  ) {
    super(`prompt too long: ${tokens} tokens\n${log}`);
  }
}

async function runCompletion(cli: string, gguf: string, promptFile: string, work: string, options: PeakRssOptions, expectedTokens?: number): Promise<PeakRss> {
  const threads = options.threads ?? 2;
  const timeFile = join(work, "time.txt");
  const args = [
    "-m", gguf,
    "-c", String(options.context),
    "-n", "1",
    "-fa", options.flashAttention ? "on" : "off",
    "-t", String(threads),
    "-tb", String(threads),
    "-f", promptFile,
    "--fit", "off",
    "--no-warmup",
    "-no-cnv",
    "--no-display-prompt",
    "--temp", "0",
    "--seed", "1",
    // logs the prompt's token count before evaluating it: the "prompt eval time" line at exit is not
    // always printed, as llama.cpp's logger is an unjoined thread that loses what is queued at exit
    "--verbose-prompt",
    // libllama's own info lines (buffer sizes, n_ctx, n_ubatch) are logged at verbosity 4 (trace)
    "-lv", "4",
  ];
  const command = [TIME, "-v", "-o", timeFile, cli, ...args];
  const started = Date.now();
  const { code, output: raw } = await capture(command[0]!, command.slice(1));
  // --verbose-prompt also echoes the prompt and one line per token: keep only the count.
  const output = raw
    .replace(/(llama_completion: prompt: ')[\s\S]*?(?=\n\S+ I llama_completion: number of tokens in prompt)/, "$1(elided)'")
    .replace(/^\S+ I +-?\d+ -> '.*\n/gm, "");
  const wallSeconds = (Date.now() - started) / 1000;
  const timeReport = existsSync(timeFile) ? readFileSync(timeFile, "utf8") : "";
  const log = `${output}\n--- ${TIME} -v ---\n${timeReport}`;
  const tooLong = /prompt is too long \((\d+) tokens, max (\d+)\)/.exec(output);
  if (tooLong) throw new PromptTooLong(Number(tooLong[1]), log);
  if (code !== 0) throw new Error(`\`${command.join(" ")}\` failed (exit ${code})\n${log}`);
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(timeReport);
  if (!rss) throw new Error(`no "Maximum resident set size" in ${TIME}'s report\n${log}`);
  const promptTokens = logNumber(output, /llama_completion: number of tokens in prompt = (\d+)/, log);
  // At exit, when the logger got that far: the tokens decoded as the prompt, which must be all of them.
  const evaluated = /prompt eval time =.*\/\s*(\d+) tokens/.exec(output);
  if (evaluated && Number(evaluated[1]) !== promptTokens) throw new Error(`llama.cpp tokenized ${promptTokens} prompt tokens but evaluated ${evaluated[1]}\n${log}`);
  if (expectedTokens !== undefined && promptTokens !== expectedTokens) console.warn(`${gguf}: llama-tokenize counted ${expectedTokens} prompt tokens, llama-completion ${promptTokens}`);
  return {
    maxRssBytes: Number(rss[1]) * 1024,
    promptTokens,
    log,
    buffers: parseBuffers(output),
    nCtx: logNumber(output, /llama_context: n_ctx\s+=\s+(\d+)/, log),
    nBatch: logNumber(output, /llama_context: n_batch\s+=\s+(\d+)/, log),
    nUbatch: logNumber(output, /llama_context: n_ubatch\s+=\s+(\d+)/, log),
    command,
    wallSeconds,
  };
}

function logNumber(output: string, pattern: RegExp, log: string): number {
  const match = pattern.exec(output);
  if (!match) throw new Error(`no ${pattern} in llama.cpp's log\n${log}`);
  return Number(match[1]);
}

/** The "<buffer type> ... buffer size = X MiB" lines of a llama.cpp log (each line has a timestamp and level before it). */
export function parseBuffers(output: string): LlamaBuffers {
  const bytes = (mib: string) => Math.round(Number(mib) * MiB);
  const model: Record<string, number> = {};
  for (const [, name, mib] of output.matchAll(/ (\S+) model buffer size = +([\d.]+) MiB/g)) model[name!] = (model[name!] ?? 0) + bytes(mib!);
  const sum = (pattern: RegExp) => [...output.matchAll(pattern)].reduce((total, m) => total + bytes(m[1]!), 0);
  return {
    model,
    kv: sum(/ \S+ KV buffer size = +([\d.]+) MiB/g),
    compute: sum(/ \S+ compute buffer size = +([\d.]+) MiB/g),
    output: sum(/ \S+ +output buffer size = +([\d.]+) MiB/g),
  };
}

/**
 * A prefix of the corpus (repeated as needed), cut before a whitespace, whose llama-tokenize count
 * for this GGUF's vocabulary (with BOS and special tokens parsed, as llama-completion tokenizes) is in lowest..highest, as
 * close to highest as a bisection over word boundaries finds.
 */
export async function fillingPrompt(gguf: string, lowest: number, highest: number): Promise<{ text: string; tokens: number }> {
  const tokenize = await llamaCppTool("llama-tokenize");
  const work = mkdtempSync(join(tmpdir(), "edgequant-prompt-"));
  const count = (text: string): number => {
    const file = join(work, "prompt.txt");
    writeFileSync(file, text);
    const result = spawnSync(tokenize, ["-m", gguf, "-f", file, "--ids", "--show-count", "--log-disable"], { encoding: "utf8", maxBuffer: 1 << 28 });
    const total = /Total number of tokens: (\d+)/.exec(result.stdout ?? "");
    if (result.status !== 0 || !total) throw new Error(`llama-tokenize failed (${result.error?.message ?? `exit ${result.status}`}):\n${result.stderr}`);
    return Number(total[1]);
  };
  try {
    const corpus = readFileSync(CORPUS, "utf8");
    let text = corpus;
    while (count(text) <= highest) text += `\n\n${corpus}`;
    // Cut points: the start of every whitespace run, so no prompt ends in whitespace (llama-completion
    // drops one trailing newline from -f's file; llama-tokenize keeps it).
    const cuts = [...text.matchAll(/\S(?=\s)/g)].map((m) => m.index + 1);
    let low = 0; // cuts[low] gives at most highest tokens (assumed; checked below)
    let high = cuts.length - 1; // cuts[high] gives more
    let best: { text: string; tokens: number } | undefined;
    while (high - low > 1) {
      const middle = (low + high) >> 1;
      const candidate = text.slice(0, cuts[middle]);
      const tokens = count(candidate);
      if (tokens <= highest) {
        low = middle;
        best = { text: candidate, tokens };
        if (tokens >= highest - 2) break;
      } else {
        high = middle;
      }
    }
    if (!best || best.tokens < lowest) throw new Error(`no corpus prefix of ${lowest}..${highest} tokens (best ${best?.tokens})`);
    return best;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function capture(command: string, args: readonly string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
    const chunks: Buffer[] = [];
    child.stdout.on("data", (chunk: Buffer) => chunks.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => chunks.push(chunk));
    child.on("error", reject);
    child.on("close", (code) => resolvePromise({ code, output: Buffer.concat(chunks).toString("utf8") }));
  });
}
