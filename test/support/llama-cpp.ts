// Test harness over node-llama-cpp: raw per-position logits and llama.cpp tokenization of a
// GGUF file, using the prebuilt CPU binaries shipped in node_modules (never builds or downloads).

import { statSync } from "node:fs";
import { resolve } from "node:path";
import { getLlama, LlamaLogLevel, type Llama, type LlamaModel, type ControlledEvaluateInputItem, type Token } from "node-llama-cpp";
import { ORACLES, requireLlamaCpp, requireOracleAsync } from "./oracle.js";

// Every suite importing this module compares against llama.cpp: without its binaries, fail at once.
requireLlamaCpp();

/** Threads used for every llama.cpp evaluation (fixed so runs are reproducible). */
export const LLAMA_CPP_THREADS = 2;

/**
 * Whether llamaCppLogits runs with an F32 KV cache. node-llama-cpp exposes this through the
 * (experimental) `experimentalKvCacheKeyType` / `experimentalKvCacheValueType` context options,
 * which map to llama.cpp's `type_k` / `type_v`. The types llama.cpp actually used are parsed from
 * its log and reported by `lastLlamaCppRun()`.
 */
export const LLAMA_CPP_KV_CACHE_F32 = true;

/** Flash attention is disabled so attention runs as plain F32 matmul + softmax. */
export const LLAMA_CPP_FLASH_ATTENTION = false;

const LOG_HISTORY = 400;
const recentLogs: string[] = [];
let loggedLines = 0; // total ever logged; recentLogs holds the last LOG_HISTORY of them
const echoLogs = process.env["EDGEQUANT_LLAMA_LOG"] === "1";

function recordLog(level: LlamaLogLevel, message: string): void {
  const line = `[${level}] ${message.trimEnd()}`;
  recentLogs.push(line);
  loggedLines++;
  if (recentLogs.length > LOG_HISTORY) recentLogs.splice(0, recentLogs.length - LOG_HISTORY);
  if (echoLogs) process.stderr.write(line + "\n");
}

/** Log lines recorded since `mark` (a previous value of `loggedLines`), as far as history allows. */
function logsSince(mark: number): string[] {
  const count = Math.min(loggedLines - mark, recentLogs.length);
  return count > 0 ? recentLogs.slice(recentLogs.length - count) : [];
}

/**
 * The most recent llama.cpp / node-llama-cpp log lines (info and above). Logs are captured
 * rather than printed because loading a vocab-only GGUF makes node-llama-cpp's memory
 * estimator emit a harmless "missing tensor 'token_embd.weight'" error. Set
 * EDGEQUANT_LLAMA_LOG=1 to echo them to stderr.
 */
export function llamaCppRecentLogs(): string[] {
  return [...recentLogs];
}

let llamaPromise: Promise<Llama> | null = null;

function sharedLlama(): Promise<Llama> {
  llamaPromise ??= requireOracleAsync(ORACLES.llamaCpp, () => getLlama({
    gpu: false,
    build: "never",
    usePrebuiltBinaries: true,
    skipDownload: true,
    progressLogs: false,
    maxThreads: LLAMA_CPP_THREADS,
    logLevel: LlamaLogLevel.info,
    logger: recordLog,
  })).catch((error: unknown) => {
    llamaPromise = null;
    throw error;
  });
  return llamaPromise;
}

/** Wraps an error with the llama.cpp warnings/errors logged since `mark` (they hold the actual reason). */
async function withLlamaLog(error: unknown, mark: number, what: string): Promise<Error> {
  // Native log lines reach JS asynchronously; give them a moment to arrive.
  await new Promise((resolveDelay) => setTimeout(resolveDelay, 50));
  const detail = logsSince(mark).filter((line) => line.startsWith("[error]") || line.startsWith("[warn]"));
  const message = error instanceof Error ? error.message : String(error);
  return new Error(`${what}: ${message}${detail.length > 0 ? "\nllama.cpp log:\n  " + detail.join("\n  ") : ""}`, { cause: error });
}

function fileStamp(path: string): string {
  const st = statSync(path);
  return `${st.size}:${st.mtimeMs}`;
}

// ---------------------------------------------------------------------------
// Logits

export interface LlamaCppRunInfo {
  ggufPath: string;
  tokens: number;
  contextSize: number;
  batchSize: number;
  /** KV cache types as reported by llama.cpp's log, e.g. "f32"; null if the line was not seen. */
  kvCacheKeyType: string | null;
  kvCacheValueType: string | null;
  loadMs: number;
  evalMs: number;
}

let lastRun: LlamaCppRunInfo | null = null;

/** Details of the most recent llamaCppLogits call (for reports and debugging). */
export function lastLlamaCppRun(): LlamaCppRunInfo | null {
  return lastRun;
}

function kvTypesFromLogs(lines: string[]): { key: string | null; value: string | null } {
  // llama.cpp: "llama_kv_cache: size = ... MiB (...), K (f32): ... MiB, V (f32): ... MiB"
  for (const line of lines) {
    const match = /K \((\w+)\):.*V \((\w+)\):/.exec(line);
    if (match) return { key: match[1] ?? null, value: match[2] ?? null };
  }
  return { key: null, value: null };
}

/**
 * Loads `ggufPath`, evaluates `tokens` from position 0 (no BOS is added) in a single batch and
 * returns llama.cpp's raw logits at every position: result[t][v] is the score of token v
 * following tokens[0..t]. The model and context are disposed before returning.
 */
export async function llamaCppLogits(ggufPath: string, tokens: number[]): Promise<Float32Array[]> {
  if (tokens.length === 0) return [];
  const llama = await sharedLlama();
  const t0 = performance.now();
  const loadMark = loggedLines;
  const model = await llama
    .loadModel({ modelPath: resolve(ggufPath), gpuLayers: 0, useMmap: false })
    .catch(async (error: unknown) => {
      throw await withLlamaLog(error, loadMark, `llamaCppLogits: loading ${ggufPath} failed`);
    });
  const loadMs = performance.now() - t0;
  try {
    // llama.cpp pads the context to a multiple of 256 anyway.
    const contextSize = Math.max(256, Math.ceil(tokens.length / 256) * 256);
    const batchSize = tokens.length;
    const logMark = loggedLines;
    const context = await model.createContext({
      sequences: 1,
      contextSize,
      batchSize,
      threads: LLAMA_CPP_THREADS,
      flashAttention: LLAMA_CPP_FLASH_ATTENTION,
      experimentalKvCacheKeyType: "F32",
      experimentalKvCacheValueType: "F32",
      failedCreationRemedy: false,
    });
    try {
      const sequence = context.getSequence();
      const input: ControlledEvaluateInputItem[] = tokens.map((token) => [token as Token, { generateNext: { logits: true } }]);
      const t1 = performance.now();
      const results = await sequence.controlledEvaluate(input);
      const evalMs = performance.now() - t1;
      const logits = results.map((result, t) => {
        const map = result?.next.logits;
        if (!map) throw new Error(`llamaCppLogits: no logits returned for position ${t}`);
        return denseLogits(map, t);
      });
      const vocab = logits[0]!.length;
      if (logits.some((row) => row.length !== vocab)) throw new Error("llamaCppLogits: vocab size differs between positions");
      // Parsed after evaluation: native log lines reach JS asynchronously.
      const kv = kvTypesFromLogs(logsSince(logMark));
      lastRun = {
        ggufPath,
        tokens: tokens.length,
        contextSize: context.contextSize,
        batchSize: context.batchSize,
        kvCacheKeyType: kv.key,
        kvCacheValueType: kv.value,
        loadMs,
        evalMs,
      };
      return logits;
    } finally {
      await context.dispose();
    }
  } finally {
    await model.dispose();
  }
}

/**
 * The addon returns every vocab entry (greedy sampling leaves logits untouched) as a token->logit
 * map sorted by logit. Non-finite logits from a broken model are passed through unchanged.
 */
function denseLogits(map: Map<Token, number>, position: number): Float32Array {
  const row = new Float32Array(map.size);
  const seen = new Uint8Array(map.size);
  for (const [token, logit] of map as Map<number, number>) {
    if (!(Number.isInteger(token) && token >= 0 && token < row.length) || seen[token]) {
      throw new Error(`llamaCppLogits: unexpected token id ${token} in the logits of position ${position} (vocab ${row.length})`);
    }
    seen[token] = 1;
    row[token] = logit;
  }
  return row;
}

// ---------------------------------------------------------------------------
// Generation

/**
 * Greedy generation through llama.cpp's sampler (node-llama-cpp's sequence.evaluate with
 * temperature 0, the path generateCompletion uses), from explicit prompt tokens (no BOS added),
 * with the same context settings as llamaCppLogits (F32 KV cache, no flash attention). Returns
 * exactly `count` tokens: end-of-generation tokens are yielded, not stopped at.
 */
export async function llamaCppGreedy(ggufPath: string, prompt: readonly number[], count: number): Promise<number[]> {
  const llama = await sharedLlama();
  const model = await llama.loadModel({ modelPath: resolve(ggufPath), gpuLayers: 0, useMmap: false });
  try {
    const contextSize = Math.max(256, Math.ceil((prompt.length + count) / 256) * 256);
    const context = await model.createContext({
      sequences: 1,
      contextSize,
      threads: LLAMA_CPP_THREADS,
      flashAttention: LLAMA_CPP_FLASH_ATTENTION,
      experimentalKvCacheKeyType: "F32",
      experimentalKvCacheValueType: "F32",
      failedCreationRemedy: false,
    });
    try {
      const generated: number[] = [];
      for await (const token of context.getSequence().evaluate(prompt.map((t) => t as Token), { temperature: 0, yieldEogToken: true })) {
        generated.push(token);
        if (generated.length === count) break;
      }
      return generated;
    } finally {
      await context.dispose();
    }
  } finally {
    await model.dispose();
  }
}

// ---------------------------------------------------------------------------
// Tokenization

const vocabModels = new Map<string, { stamp: string; model: Promise<LlamaModel> }>();

function vocabModel(ggufPath: string): Promise<LlamaModel> {
  const path = resolve(ggufPath);
  const stamp = fileStamp(path);
  const hit = vocabModels.get(path);
  if (hit && hit.stamp === stamp) return hit.model;
  if (hit) void hit.model.then((m) => m.dispose()).catch(() => undefined);
  const model = sharedLlama().then((llama) => {
    const mark = loggedLines;
    return llama.loadModel({ modelPath: path, vocabOnly: true, gpuLayers: 0 }).catch(async (error: unknown) => {
      throw await withLlamaLog(error, mark, `llamaCppTokenize: loading vocab of ${ggufPath} failed`);
    });
  });
  vocabModels.set(path, { stamp, model });
  model.catch(() => {
    if (vocabModels.get(path)?.model === model) vocabModels.delete(path);
  });
  return model;
}

/**
 * Tokenizes `text` the way llama.cpp's tests/test-tokenizer-0 does:
 * common_tokenize(ctx, text, add_special = false, parse_special = false), i.e. no BOS/EOS
 * is added and special-token text such as "<s>" is tokenized as plain text.
 * The vocab-only model is cached per path (reloaded if the file changes).
 */
export async function llamaCppTokenize(ggufPath: string, text: string, parseSpecial = false): Promise<number[]> {
  const model = await vocabModel(ggufPath);
  // specialTokens -> parse_special (false unless asked); node-llama-cpp never adds BOS/EOS here.
  return Array.from(model.tokenize(text, parseSpecial));
}

/** Disposes every cached model and the shared llama.cpp instance. */
export async function disposeLlamaCpp(): Promise<void> {
  const models = [...vocabModels.values()];
  vocabModels.clear();
  await Promise.all(models.map(({ model }) => model.then((m) => m.dispose()).catch(() => undefined)));
  const pending = llamaPromise;
  llamaPromise = null;
  if (pending) await pending.then((llama) => llama.dispose()).catch(() => undefined);
}
