/**
 * One file from the Hugging Face Hub, byte for byte: a GET that follows redirects by hand
 * (the token never leaves the Hub's origin), resumes a partial download with Range requests,
 * retries a dropped or stalled connection, and checks the sha256 or git blob id the Hub
 * lists. Also what HTTP and network failures mean in words.
 */
import { createHash, type Hash } from "node:crypto";
import { createReadStream, existsSync } from "node:fs";
import { open, rm, stat, truncate } from "node:fs/promises";
import { HubApiError, InvalidApiResponseFormatError } from "@huggingface/hub";
import { UserError } from "../errors.js";
import { formatBytes, ProgressBar } from "../progress.js";

export const DEFAULT_ENDPOINT = "https://huggingface.co";

/** What a transfer needs to know about the source it is fetching for. */
export interface HubSession {
  /** The hf: source as given, for messages. */
  readonly source: string;
  readonly repo: string;
  readonly revision: string;
  readonly hubUrl: string;
  readonly token: string | undefined;
  readonly log: (line: string) => void;
  readonly progress: boolean;
  readonly attempts: number;
  readonly stallTimeoutMs: number;
  readonly retryDelayMs: number;
  readonly fetch: typeof fetch;
}

/** The checksum the Hub lists for a file: sha256 for LFS files, the git blob id otherwise. */
export interface Digest {
  readonly algorithm: "sha256" | "git-sha1";
  readonly hex: string;
}

class RetryableError extends Error {}

/** What has been written to the .incomplete file and hashed, in order. */
interface TransferState {
  hash: Hash;
  hashedTo: number;
  readonly fresh: () => Hash;
}

/** Downloads `url` into `target` (a .incomplete file), resuming what is there with Range requests. */
export async function transfer(ctx: HubSession, url: string, target: string, size: number, expected: Digest | undefined, name: string): Promise<void> {
  const bar = new ProgressBar(`hf: ${name}`, ctx.progress && size >= 1_000_000);
  const state: TransferState = { hash: newHash(expected, size), hashedTo: 0, fresh: () => newHash(expected, size) };
  let have = (await stat(target).catch(() => undefined))?.size ?? 0;
  if (have > size) {
    await rm(target, { force: true });
    have = 0;
  }
  if (have > 0) {
    // An earlier run stopped part-way: hash what it wrote, then ask for the rest.
    state.hashedTo = await hashFile(target, state.hash);
    ctx.log(`hf: ${name}: resuming at ${formatBytes(have)} of ${formatBytes(size)}`);
  }
  for (let attempt = 1; state.hashedTo < size; attempt++) {
    try {
      await receive(ctx, url, target, size, state, (done) => bar.update(done, size));
    } catch (error) {
      if (!(error instanceof RetryableError || isNetworkError(error)) || attempt >= ctx.attempts) {
        bar.finish();
        if (error instanceof UserError) throw error;
        throw new UserError(`${ctx.source}: downloading '${name}' failed after ${attempt} attempt(s) (${networkReason(error)}); run again to resume from ${target}`);
      }
      // Keep exactly the bytes that were hashed; a write cut short may have left a few more.
      if (existsSync(target)) await truncate(target, state.hashedTo);
      ctx.log(`hf: ${name}: transfer interrupted at ${formatBytes(state.hashedTo)} of ${formatBytes(size)} (${networkReason(error)}); resuming (attempt ${attempt + 1} of ${ctx.attempts})`);
      await new Promise((done) => setTimeout(done, ctx.retryDelayMs * attempt));
    }
  }
  bar.finish();
  if (expected) {
    const actual = state.hash.digest("hex");
    if (actual !== expected.hex) {
      await rm(target, { force: true });
      throw new UserError(`${ctx.source}: '${name}' does not match the Hub's checksum (${expected.algorithm} ${expected.hex}, got ${actual}); the partial file was removed, run again`);
    }
  }
}

function newHash(expected: Digest | undefined, size: number): Hash {
  if (expected?.algorithm === "git-sha1") {
    const hash = createHash("sha1");
    hash.update(`blob ${size}\0`);
    return hash;
  }
  return createHash("sha256");
}

async function hashFile(path: string, hash: Hash): Promise<number> {
  let total = 0;
  for await (const chunk of createReadStream(path)) {
    hash.update(chunk as Buffer);
    total += (chunk as Buffer).length;
  }
  return total;
}

/** One GET from state.hashedTo on, appended to target. Throws RetryableError when the connection drops or stalls. */
async function receive(ctx: HubSession, url: string, target: string, size: number, state: TransferState, onBytes: (done: number) => void): Promise<void> {
  const controller = new AbortController();
  let stall: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(stall);
    stall = setTimeout(() => controller.abort(new RetryableError(`no data for ${ctx.stallTimeoutMs / 1000} s`)), ctx.stallTimeoutMs);
  };
  const restart = async () => {
    await rm(target, { force: true });
    state.hash = state.fresh();
    state.hashedTo = 0;
  };
  arm();
  try {
    const have = state.hashedTo;
    const response = await get(ctx, url, have > 0 ? { Range: `bytes=${have}-` } : {}, controller.signal);
    if (response.status === 206) {
      const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(response.headers.get("content-range") ?? "");
      if (!range || Number(range[1]) !== have) {
        await response.body?.cancel();
        await restart();
        throw new RetryableError("the server answered another range than asked; restarting the file");
      }
    } else if (response.status === 200) {
      if (have > 0) {
        ctx.log(`hf: ${url.replace(/\?.*$/, "")}: the server ignored the Range request; downloading from the start`);
        await restart();
      }
    } else if (response.status === 416) {
      await response.body?.cancel();
      await restart();
      throw new RetryableError("the server refused the range; restarting the file");
    } else {
      await response.body?.cancel();
      throw httpProblem(ctx, response.status, url);
    }
    await appendBody(response, target, size, state, arm, onBytes);
  } catch (error) {
    if (controller.signal.aborted && controller.signal.reason instanceof RetryableError) throw controller.signal.reason;
    throw error;
  } finally {
    clearTimeout(stall);
  }
}

async function appendBody(response: Response, target: string, size: number, state: TransferState, arm: () => void, onBytes: (done: number) => void): Promise<void> {
  if (!response.body) throw new RetryableError("empty response body");
  const handle = await open(target, state.hashedTo === 0 ? "w" : "r+");
  try {
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      arm();
      if (state.hashedTo + chunk.length > size) throw new UserError(`the server sent more than the file's ${size} bytes`);
      await handle.write(chunk, 0, chunk.length, state.hashedTo);
      state.hash.update(chunk);
      state.hashedTo += chunk.length;
      onBytes(state.hashedTo);
    }
  } catch (error) {
    if (error instanceof UserError) throw error;
    throw new RetryableError(networkReason(error));
  } finally {
    await handle.close();
  }
  if (state.hashedTo < size) throw new RetryableError(`connection closed after ${formatBytes(state.hashedTo)} of ${formatBytes(size)}`);
}

/**
 * Bytes [start, start + length) of `url`, with a Range request (what `plan` reads of a shard: its
 * header, not its weights). A server that ignores the range is read only as far as needed.
 */
export async function fetchRange(ctx: HubSession, url: string, start: number, length: number): Promise<Buffer> {
  for (let attempt = 1; ; attempt++) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new RetryableError(`no answer for ${ctx.stallTimeoutMs / 1000} s`)), ctx.stallTimeoutMs);
    try {
      const response = await get(ctx, url, { Range: `bytes=${start}-${start + length - 1}` }, controller.signal);
      if (response.status !== 206 && response.status !== 200) {
        await response.body?.cancel();
        throw httpProblem(ctx, response.status, url);
      }
      if (response.status === 206 && Number(/^bytes (\d+)-/.exec(response.headers.get("content-range") ?? "")?.[1]) !== start) {
        await response.body?.cancel();
        throw new RetryableError("the server answered another range than asked");
      }
      // 200: the whole file from byte 0; skip to `start` and stop once we have `length` bytes.
      const skip = response.status === 200 ? start : 0;
      const out = Buffer.alloc(length);
      let seen = 0;
      for await (const chunk of (response.body ?? []) as AsyncIterable<Uint8Array>) {
        const from = Math.max(0, skip - seen);
        const to = Math.min(chunk.length, skip + length - seen);
        if (to > from) Buffer.from(chunk.buffer, chunk.byteOffset + from, to - from).copy(out, seen + from - skip);
        seen += chunk.length;
        if (seen >= skip + length) break;
      }
      if (seen < skip + length) throw new RetryableError(`the server sent ${Math.max(0, seen - skip)} of ${length} bytes`);
      await response.body?.cancel().catch(() => {});
      return out;
    } catch (error) {
      const retry = error instanceof RetryableError || isNetworkError(error);
      if (!retry || attempt >= ctx.attempts) throw controller.signal.aborted && controller.signal.reason instanceof Error ? controller.signal.reason : error;
      await new Promise((done) => setTimeout(done, ctx.retryDelayMs * attempt));
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * GET with redirects followed by hand (at most 10): the token goes to the Hub's
 * own origin only, never to the storage servers it redirects to.
 */
async function get(ctx: HubSession, url: string, headers: Record<string, string>, signal: AbortSignal): Promise<Response> {
  const origin = new URL(ctx.hubUrl).origin;
  let current = new URL(url);
  for (let hop = 0; hop <= 10; hop++) {
    const sent: Record<string, string> = { ...headers };
    if (ctx.token && current.origin === origin) sent["Authorization"] = `Bearer ${ctx.token}`;
    const response = await ctx.fetch(current, { headers: sent, redirect: "manual", signal });
    if ([301, 302, 303, 307, 308].includes(response.status)) {
      const location = response.headers.get("location");
      await response.body?.cancel();
      if (!location) throw new UserError(`${ctx.source}: a redirect without a location from ${current.origin}`);
      current = new URL(location, current);
      continue;
    }
    return response;
  }
  throw new UserError(`${ctx.source}: more than 10 redirects downloading ${url.replace(/\?.*$/, "")}`);
}

/** The library's calls get a time limit too. */
export function boundedFetch(ctx: HubSession): typeof fetch {
  return (input, init) => ctx.fetch(input, { ...init, signal: init?.signal ?? AbortSignal.timeout(Math.max(ctx.stallTimeoutMs, 30_000)) });
}

export function checkedToken(token: string): string {
  if (!token.startsWith("hf_")) throw new UserError("the Hugging Face token (HF_TOKEN or the saved login) does not look like one: tokens start with 'hf_'");
  return token;
}

/** Hub API errors in words: gated, private, missing. */
export async function hubCall<T>(ctx: HubSession, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof HubApiError) throw httpProblem(ctx, error.statusCode, error.url);
    if (error instanceof InvalidApiResponseFormatError) throw new UserError(`${ctx.source}: unexpected answer from ${ctx.hubUrl} (${error.message})`);
    throw error;
  }
}

function httpProblem(ctx: HubSession, status: number, url: string): Error {
  const page = `${ctx.hubUrl}/${ctx.repo}`;
  if (status === 401 || status === 403) {
    return new UserError(
      ctx.token
        ? `${ctx.source}: access denied (HTTP ${status}) with the token given: the model is gated or private and this token cannot read it; accept its conditions at ${page} with the token's account, and check the token's permissions`
        : `${ctx.source}: the model is gated or private (HTTP ${status}): accept its conditions at ${page}, then set HF_TOKEN to a read token (${DEFAULT_ENDPOINT}/settings/tokens)`,
    );
  }
  if (status === 404) {
    return new UserError(`${ctx.source}: no such model or revision '${ctx.revision}' on ${ctx.hubUrl} (HTTP 404)${ctx.token ? "" : "; if it is private, set HF_TOKEN"}`);
  }
  if (status === 429 || status >= 500) return new RetryableError(`HTTP ${status} from ${new URL(url).origin}`);
  return new UserError(`${ctx.source}: the Hub answered HTTP ${status} for ${url.replace(/\?.*$/, "")}`);
}

const NETWORK_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "EPIPE", "UND_ERR_SOCKET", "UND_ERR_CONNECT_TIMEOUT", "UND_ERR_HEADERS_TIMEOUT", "UND_ERR_BODY_TIMEOUT", "UND_ERR_CLOSED"]);

/** fetch() failures that mean "no connection", as opposed to an HTTP answer. */
export function isNetworkError(error: unknown): boolean {
  if (error instanceof RetryableError) return true;
  if (!(error instanceof Error)) return false;
  if (error.name === "AbortError" || error.name === "TimeoutError") return true;
  const code = (error as NodeJS.ErrnoException).code ?? ((error as { cause?: { code?: string } }).cause?.code);
  if (code && NETWORK_CODES.has(code)) return true;
  return error instanceof TypeError && /fetch failed|terminated|network/i.test(error.message);
}

export function networkReason(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? (error as NodeJS.ErrnoException).code ?? (cause?.message || error.message);
}
