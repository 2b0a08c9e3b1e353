/**
 * `hf:org/name[@revision]` sources: the model files fetched from the Hugging
 * Face Hub into the cache that Python's huggingface_hub uses, so either tool
 * finds what the other downloaded:
 *
 *   $HF_HUB_CACHE/models--org--name/
 *     blobs/<etag>                     file contents (etag: sha256 for LFS files, git blob id otherwise)
 *     blobs/<etag>.incomplete          a download under way; resumed with an HTTP Range request
 *     refs/<revision>                  the commit a branch or tag pointed to when last resolved
 *     snapshots/<commit>/<file>        relative symlinks into blobs/
 *
 * The Hub API calls (revision -> commit, file listing, each file's download
 * URL and etag) go through @huggingface/hub. The transfer itself is ours: the
 * library's downloadFileToCacheDir restarts from zero and writes no refs, and
 * its WebBlob hides whether a server honoured a Range request.
 */
import { createHash, type Hash } from "node:crypto";
import { createReadStream, existsSync, readFileSync, rmSync, statSync } from "node:fs";
import { copyFile, lstat, mkdir, mkdtemp, open, readdir, readFile, readlink, rename, rm, stat, symlink, truncate, writeFile } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileDownloadInfo, HubApiError, InvalidApiResponseFormatError, listFiles, modelInfo, type ListFileEntry } from "@huggingface/hub";
import { ProgressBar, formatBytes } from "../progress.js";
import { UserError } from "../errors.js";
import { TOKENIZER_AND_GENERATION_FILES } from "./side-files.js";

export interface HubSource {
  /** org/name (or a legacy single name). */
  readonly repo: string;
  /** Branch, tag or commit; absent means "main". */
  readonly revision?: string;
}

export interface ResolveSourceOptions {
  /** Folder that relative local paths resolve against (default: the current folder). */
  readonly baseDir?: string;
  /** Hub endpoint; default $HF_ENDPOINT or https://huggingface.co. */
  readonly hubUrl?: string;
  /** Hub cache folder; default $HF_HUB_CACHE, $HF_HOME/hub or ~/.cache/huggingface/hub, as huggingface_hub. */
  readonly cacheDir?: string;
  /** Access token for gated or private models; default $HF_TOKEN or the token file `huggingface-cli login` writes. Never printed. */
  readonly token?: string;
  /** Use the cache only, no network; default $HF_HUB_OFFLINE. */
  readonly offline?: boolean;
  /** Progress bars on a terminal, a few lines otherwise (default true). */
  readonly progress?: boolean;
  /** Where status lines go (default: stderr). */
  readonly log?: (line: string) => void;
  /** Environment to read HF_* variables from (default: process.env). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Download attempts per file before giving up (default 5); each resumes where the last stopped. */
  readonly attempts?: number;
  /** Abort a transfer that receives nothing for this long (default 60 s) and resume it. */
  readonly stallTimeoutMs?: number;
  /** Pause before a retry, times the attempt number (default 1000 ms). */
  readonly retryDelayMs?: number;
  /**
   * Called with the source's config.json before any weights are downloaded (and for cached or
   * local sources once they are found), so a model the caller cannot convert fails before gigabytes move.
   */
  readonly checkConfig?: (configFile: string) => void | Promise<void>;
  readonly fetch?: typeof fetch;
}

export interface ResolvedSource {
  /** The folder (or file) to read the model from. */
  readonly path: string;
  /** The commit the files come from (Hub sources). */
  readonly revision?: string;
  readonly repo?: string;
  /** The cache's snapshot folder (Hub sources). */
  readonly snapshot?: string;
  /** True when no network was used. */
  readonly fromCache?: boolean;
  /** Files of the snapshot that edgequant reads. */
  readonly files?: readonly string[];
  /** Removes the temporary named folder, if one was made; the cache stays. */
  dispose(): Promise<void>;
}

const REPO_ID = /^(?:[A-Za-z0-9][A-Za-z0-9._-]{0,95}\/)?[A-Za-z0-9][A-Za-z0-9._-]{0,95}$/;
const COMMIT = /^[0-9a-f]{40}$/;
const DEFAULT_ENDPOINT = "https://huggingface.co";

export function isHubSource(source: string): boolean {
  return source.startsWith("hf:");
}

/** `hf:org/name[@revision]` -> repo and revision. */
export function parseHubSource(source: string): HubSource {
  if (!isHubSource(source)) throw new UserError(`not a Hub source: '${source}' (expected hf:org/name[@revision])`);
  const body = source.slice(3);
  const at = body.indexOf("@");
  const repo = at < 0 ? body : body.slice(0, at);
  const revision = at < 0 ? undefined : body.slice(at + 1);
  if (repo.startsWith("//")) throw new UserError(`'${source}': write hf:org/name, without '//'`);
  if (!REPO_ID.test(repo) || repo.includes("..") || repo.includes("--")) {
    throw new UserError(`'${source}' is not a Hub model id; expected hf:org/name[@revision], e.g. hf:Qwen/Qwen3-0.6B@main`);
  }
  if (revision !== undefined && (revision === "" || /[\s~^:?*[\\]/.test(revision) || revision.includes("..") || revision.startsWith("/") || revision.endsWith("/"))) {
    throw new UserError(`'${source}': '${revision}' is not a valid revision (a branch, tag or 40-hex commit)`);
  }
  return revision === undefined ? { repo } : { repo, revision };
}

/** huggingface_hub's cache folder: HF_HUB_CACHE, HUGGINGFACE_HUB_CACHE, HF_HOME/hub, XDG_CACHE_HOME/huggingface/hub, ~/.cache/huggingface/hub. */
export function hubCacheDir(env: Readonly<Record<string, string | undefined>> = process.env): string {
  const explicit = nonEmpty(env["HF_HUB_CACHE"]) ?? nonEmpty(env["HUGGINGFACE_HUB_CACHE"]);
  return expandHome(explicit ?? join(hfHome(env), "hub"));
}

function hfHome(env: Readonly<Record<string, string | undefined>>): string {
  return expandHome(nonEmpty(env["HF_HOME"]) ?? join(nonEmpty(env["XDG_CACHE_HOME"]) ?? join(homedir(), ".cache"), "huggingface"));
}

/** `models--org--name`, as huggingface_hub names a model's cache folder. */
export function repoFolderName(repo: string): string {
  return ["models", ...repo.split("/")].join("--");
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === "" ? undefined : value.trim();
}

function expandHome(path: string): string {
  return path === "~" || path.startsWith("~/") ? join(homedir(), path.slice(1)) : path;
}

function isTrue(value: string | undefined): boolean {
  return ["1", "ON", "YES", "TRUE"].includes((value ?? "").trim().toUpperCase());
}

/** HF_TOKEN, the legacy HUGGING_FACE_HUB_TOKEN, or the file `huggingface-cli login` writes. */
function findToken(env: Readonly<Record<string, string | undefined>>): string | undefined {
  const fromEnv = nonEmpty(env["HF_TOKEN"]) ?? nonEmpty(env["HUGGING_FACE_HUB_TOKEN"]);
  if (fromEnv) return fromEnv;
  const file = expandHome(nonEmpty(env["HF_TOKEN_PATH"]) ?? join(hfHome(env), "token"));
  try {
    return nonEmpty(readFileSync(file, "utf8"));
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------

/**
 * A local path as it is, or an `hf:` source fetched into (or found in) the Hub cache.
 * Callers should `dispose()` the result when done with it.
 */
export async function resolveSource(source: string, options: ResolveSourceOptions = {}): Promise<ResolvedSource> {
  if (!isHubSource(source)) {
    const path = resolve(options.baseDir ?? ".", source);
    const configFile = existsSync(path) && statSync(path).isFile() ? join(dirname(path), "config.json") : join(path, "config.json");
    if (options.checkConfig && existsSync(configFile)) await options.checkConfig(configFile);
    return { path, dispose: async () => {} };
  }
  const { repo, revision = "main" } = parseHubSource(source);
  const env = options.env ?? process.env;
  const ctx: Context = {
    source,
    repo,
    revision,
    hubUrl: (options.hubUrl ?? nonEmpty(env["HF_ENDPOINT"]) ?? DEFAULT_ENDPOINT).replace(/\/+$/, ""),
    storage: join(resolve(options.cacheDir ?? hubCacheDir(env)), repoFolderName(repo)),
    token: options.token ?? findToken(env),
    log: options.log ?? ((line) => process.stderr.write(`${line}\n`)),
    progress: options.progress ?? true,
    attempts: Math.max(1, options.attempts ?? 5),
    stallTimeoutMs: options.stallTimeoutMs ?? 60_000,
    retryDelayMs: options.retryDelayMs ?? 1000,
    fetch: options.fetch ?? globalThis.fetch,
    checkConfig: options.checkConfig,
  };
  const offline = options.offline ?? isTrue(env["HF_HUB_OFFLINE"]);

  let snapshot: Snapshot;
  if (offline) {
    const cached = await cachedSnapshot(ctx, false);
    if (!cached) {
      throw new UserError(
        `HF_HUB_OFFLINE is set and ${source} is not in the Hub cache (${ctx.storage}); run once with network access, or unset HF_HUB_OFFLINE`,
      );
    }
    snapshot = cached;
  } else {
    // A pinned commit whose snapshot is complete needs no network at all.
    const pinned = COMMIT.test(revision) ? await cachedSnapshot(ctx, true) : undefined;
    if (pinned) {
      snapshot = pinned;
    } else {
      try {
        snapshot = await downloadSnapshot(ctx);
      } catch (error) {
        if (!isNetworkError(error)) throw error;
        const cached = await cachedSnapshot(ctx, false);
        if (!cached) {
          throw new UserError(`cannot reach ${ctx.hubUrl} (${networkReason(error)}) and ${source} is not in the Hub cache (${ctx.storage})`);
        }
        ctx.log(`hf: cannot reach ${ctx.hubUrl} (${networkReason(error)}); using the cached snapshot ${cached.commit} of ${repo}`);
        snapshot = cached;
      }
    }
  }

  if (snapshot.fromCache) await ctx.checkConfig?.(join(snapshot.dir, "config.json"));
  const base = { revision: snapshot.commit, repo, snapshot: snapshot.dir, fromCache: snapshot.fromCache, files: snapshot.files };
  // A folder named after the repository, so converters that name the model after its folder do not call it by its commit hash.
  const view = await namedView(snapshot.dir, repo.split("/").at(-1)!);
  return { ...base, path: view.path, dispose: view.dispose };
}

interface Context {
  readonly source: string;
  readonly repo: string;
  readonly revision: string;
  readonly hubUrl: string;
  readonly storage: string;
  readonly token: string | undefined;
  readonly log: (line: string) => void;
  readonly progress: boolean;
  readonly attempts: number;
  readonly stallTimeoutMs: number;
  readonly retryDelayMs: number;
  readonly fetch: typeof fetch;
  readonly checkConfig: ((configFile: string) => void | Promise<void>) | undefined;
}

interface Snapshot {
  readonly commit: string;
  readonly dir: string;
  readonly files: readonly string[];
  readonly fromCache: boolean;
}

// ---------------------------------------------------------------------------
// Which files a conversion reads

const SIDE_FILES = new Set<string>(["config.json", "model.safetensors.index.json", ...TOKENIZER_AND_GENERATION_FILES]);
const TOKENIZER_FILES = ["tokenizer.json", "tokenizer.model", "vocab.json", "tiktoken.model", "vocab.txt"];
const INDEX = "model.safetensors.index.json";
const MAX_LISTED_FILES = 20_000;

function isSideFile(path: string): boolean {
  return SIDE_FILES.has(path) || path.endsWith(".tiktoken") || path.endsWith(".jinja");
}

/** Shards named by an index's weight_map. */
function shardsOfIndex(text: string, where: string): string[] {
  let index: unknown;
  try {
    index = JSON.parse(text);
  } catch (cause) {
    throw new UserError(`invalid JSON (${(cause as Error).message})`, { file: where });
  }
  const map = (index as { weight_map?: unknown } | null)?.weight_map;
  if (typeof map !== "object" || map === null) throw new UserError("missing 'weight_map'", { file: where });
  const shards = [...new Set(Object.values(map as Record<string, unknown>))];
  for (const shard of shards) {
    if (typeof shard !== "string" || !safeRelativePath(shard) || shard.includes("/")) throw new UserError(`invalid shard name ${JSON.stringify(shard)}`, { file: where });
  }
  return (shards as string[]).sort();
}

/** A repository path that cannot leave the snapshot folder. */
function safeRelativePath(path: string): boolean {
  return path.length > 0 && !path.startsWith("/") && !path.includes("\\") && path.split("/").every((s) => s !== "" && s !== "." && s !== "..");
}

// ---------------------------------------------------------------------------
// The cache

/** The snapshot for ctx.revision if it is in the cache and holds a readable model. */
async function cachedSnapshot(ctx: Context, needTokenizer: boolean): Promise<Snapshot | undefined> {
  let commit: string | undefined = COMMIT.test(ctx.revision) ? ctx.revision : undefined;
  if (!commit) {
    try {
      commit = (await readFile(join(ctx.storage, "refs", ...ctx.revision.split("/")), "utf8")).trim();
    } catch {
      return undefined;
    }
    if (!COMMIT.test(commit)) return undefined;
  }
  const dir = join(ctx.storage, "snapshots", commit);
  const present = (name: string) => existsSync(join(dir, name)); // follows the symlink: the blob must be there too
  if (!present("config.json")) return undefined;
  let weights: string[];
  if (present(INDEX)) {
    try {
      weights = shardsOfIndex(await readFile(join(dir, INDEX), "utf8"), join(dir, INDEX));
    } catch {
      return undefined;
    }
  } else {
    const names = await readdir(dir).catch(() => [] as string[]);
    weights = names.includes("model.safetensors") ? ["model.safetensors"] : names.filter((n) => n.endsWith(".safetensors"));
  }
  if (weights.length === 0 || !weights.every(present)) return undefined;
  if (needTokenizer && !TOKENIZER_FILES.some(present)) return undefined;
  const files = (await readdir(dir)).filter((name) => isSideFile(name) || weights.includes(name)).sort();
  return { commit, dir, files, fromCache: true };
}

async function downloadSnapshot(ctx: Context): Promise<Snapshot> {
  const credentials = ctx.token ? { accessToken: checkedToken(ctx.token) } : {};
  const api = { hubUrl: ctx.hubUrl, fetch: boundedFetch(ctx), ...credentials };

  const info = await hubCall(ctx, () => modelInfo({ name: ctx.repo, revision: ctx.revision, additionalFields: ["sha"], ...api }));
  const commit = (info as { sha?: unknown }).sha;
  if (typeof commit !== "string" || !COMMIT.test(commit)) throw new UserError(`${ctx.source}: the Hub did not return a commit for revision '${ctx.revision}'`);

  const entries = new Map<string, ListFileEntry>();
  await hubCall(ctx, async () => {
    for await (const entry of listFiles({ repo: ctx.repo, revision: commit, ...api })) {
      if (entry.type === "file") entries.set(entry.path, entry);
      if (entries.size > MAX_LISTED_FILES) throw new UserError(`${ctx.source}: more than ${MAX_LISTED_FILES} files at the top of the repository; is this a model?`);
    }
  });

  const dir = join(ctx.storage, "snapshots", commit);
  const fetchOne = async (path: string) => {
    const entry = entries.get(path);
    if (!entry) throw new UserError(`${ctx.source}: '${path}' is not in the repository at ${commit}`);
    await fetchFile(ctx, api, commit, entry);
  };

  // Side files first: the index says which shards to fetch.
  const side = [...entries.keys()].filter(isSideFile).sort();
  if (!side.includes("config.json")) throw new UserError(`${ctx.source}: the repository has no config.json at ${commit}; is it a transformers model?`);
  let weights: string[];
  if (side.includes(INDEX)) {
    await fetchOne(INDEX);
    weights = shardsOfIndex(await readFile(join(dir, INDEX), "utf8"), `${ctx.source}/${INDEX}`);
    const missing = weights.filter((w) => !entries.has(w));
    if (missing.length > 0) throw new UserError(`${ctx.source}: ${INDEX} names shards the repository does not have: ${missing.join(", ")}`);
  } else {
    const safetensors = [...entries.keys()].filter((p) => p.endsWith(".safetensors") && !p.includes("/")).sort();
    weights = safetensors.includes("model.safetensors") ? ["model.safetensors"] : safetensors;
  }
  if (weights.length === 0) {
    throw new UserError(
      `${ctx.source}: no safetensors weights at ${commit}. edgequant never loads PyTorch pickle files; ` +
        "many repositories have safetensors on a 'refs/pr/N' revision made by the conversion bot (hf:org/name@refs/pr/N)",
    );
  }
  const wanted = [...side, ...weights];
  const totalBytes = wanted.reduce((sum, p) => sum + (entries.get(p)?.size ?? 0), 0);
  ctx.log(`hf: ${ctx.repo}@${commit.slice(0, 12)}${ctx.revision !== commit ? ` (${ctx.revision})` : ""}: ${wanted.length} files, ${formatBytes(totalBytes)}, cache ${ctx.storage}`);
  for (const path of side) await fetchOne(path);
  // The caller can refuse the model from its config before the weights move.
  await ctx.checkConfig?.(join(dir, "config.json"));
  for (const path of weights) await fetchOne(path);

  // As huggingface_hub: refs/<revision> holds the commit a branch or tag resolved to.
  if (ctx.revision !== commit) {
    const ref = join(ctx.storage, "refs", ...ctx.revision.split("/"));
    await mkdir(dirname(ref), { recursive: true });
    const temporary = `${ref}.${process.pid}.tmp`;
    await writeFile(temporary, commit);
    await rename(temporary, ref);
  }
  return { commit, dir, files: wanted.sort(), fromCache: false };
}

type ApiParams = { hubUrl: string; fetch: typeof fetch; accessToken?: string };

/**
 * One file into blobs/ and its snapshot link. Blobs are named as huggingface_hub names them:
 * by the sha256 for LFS files and the git blob id otherwise (the tree listing's oids, which are
 * the ETags the Hub sends).
 */
async function fetchFile(ctx: Context, api: ApiParams, commit: string, entry: ListFileEntry): Promise<void> {
  if (!safeRelativePath(entry.path)) throw new UserError(`${ctx.source}: the Hub listed an unsafe path ${JSON.stringify(entry.path)}`);
  const pointer = join(ctx.storage, "snapshots", commit, ...entry.path.split("/"));
  if (await sizeMatches(pointer, entry.size)) return;
  const listed = entry.lfs?.oid ?? entry.oid;
  if (listed && (await sizeMatches(join(ctx.storage, "blobs", listed), entry.size))) {
    await linkPointer(join(ctx.storage, "blobs", listed), pointer); // the same content under another commit
    return;
  }

  const info = await hubCall(ctx, () => fileDownloadInfo({ repo: ctx.repo, path: entry.path, revision: commit, ...api }));
  if (!info) throw new UserError(`${ctx.source}: '${entry.path}' is listed but cannot be downloaded`);
  if (info.size !== entry.size) throw new UserError(`${ctx.source}: the Hub gives two sizes for '${entry.path}' (${entry.size} and ${info.size})`);
  const etag = listed ?? info.etag.replace(/^W\//, "").replaceAll('"', "");
  if (!/^[0-9a-f]{40}$|^[0-9a-f]{64}$/.test(etag)) throw new UserError(`${ctx.source}: unexpected ETag for '${entry.path}'`);
  const blob = join(ctx.storage, "blobs", etag);
  if (!(await sizeMatches(blob, entry.size))) {
    await mkdir(dirname(blob), { recursive: true });
    await transfer(ctx, info.url, `${blob}.incomplete`, entry.size, expectedDigest(entry), entry.path);
    await rename(`${blob}.incomplete`, blob);
  }
  await linkPointer(blob, pointer);
}

function expectedDigest(entry: ListFileEntry): { algorithm: "sha256" | "git-sha1"; hex: string } | undefined {
  if (entry.lfs?.oid && /^[0-9a-f]{64}$/.test(entry.lfs.oid)) return { algorithm: "sha256", hex: entry.lfs.oid };
  if (!entry.lfs && entry.oid && /^[0-9a-f]{40}$/.test(entry.oid)) return { algorithm: "git-sha1", hex: entry.oid };
  return undefined;
}

async function sizeMatches(path: string, size: number): Promise<boolean> {
  try {
    const info = await stat(path);
    return info.isFile() && info.size === size;
  } catch {
    return false;
  }
}

/** snapshots/<commit>/<path> -> ../../blobs/<etag>, relative as huggingface_hub makes it; a copy where symlinks are not allowed. */
async function linkPointer(blob: string, pointer: string): Promise<void> {
  await mkdir(dirname(pointer), { recursive: true });
  const target = relative(dirname(pointer), blob);
  try {
    if ((await lstat(pointer)).isSymbolicLink() && (await readlink(pointer)) === target) return;
    await rm(pointer, { force: true });
  } catch {
    // not there yet
  }
  try {
    await symlink(target, pointer);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (code === "EEXIST") return; // another process made the same link
    await copyFile(blob, pointer);
  }
}

// ---------------------------------------------------------------------------
// Transfers

class RetryableError extends Error {}

type Expected = ReturnType<typeof expectedDigest>;

/** What has been written to the .incomplete file and hashed, in order. */
interface TransferState {
  hash: Hash;
  hashedTo: number;
  readonly fresh: () => Hash;
}

/** Downloads `url` into `target` (a .incomplete file), resuming what is there with Range requests. */
async function transfer(ctx: Context, url: string, target: string, size: number, expected: Expected, name: string): Promise<void> {
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

function newHash(expected: Expected, size: number): Hash {
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
async function receive(ctx: Context, url: string, target: string, size: number, state: TransferState, onBytes: (done: number) => void): Promise<void> {
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
 * GET with redirects followed by hand (at most 10): the token goes to the Hub's
 * own origin only, never to the storage servers it redirects to.
 */
async function get(ctx: Context, url: string, headers: Record<string, string>, signal: AbortSignal): Promise<Response> {
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
function boundedFetch(ctx: Context): typeof fetch {
  return (input, init) => ctx.fetch(input, { ...init, signal: init?.signal ?? AbortSignal.timeout(Math.max(ctx.stallTimeoutMs, 30_000)) });
}

function checkedToken(token: string): string {
  if (!token.startsWith("hf_")) throw new UserError("the Hugging Face token (HF_TOKEN or the saved login) does not look like one: tokens start with 'hf_'");
  return token;
}

/** Hub API errors in words: gated, private, missing. */
async function hubCall<T>(ctx: Context, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof HubApiError) throw httpProblem(ctx, error.statusCode, error.url);
    if (error instanceof InvalidApiResponseFormatError) throw new UserError(`${ctx.source}: unexpected answer from ${ctx.hubUrl} (${error.message})`);
    throw error;
  }
}

function httpProblem(ctx: Context, status: number, url: string): Error {
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
function isNetworkError(error: unknown): boolean {
  if (error instanceof RetryableError) return true;
  if (!(error instanceof Error)) return false;
  if (error.name === "AbortError" || error.name === "TimeoutError") return true;
  const code = (error as NodeJS.ErrnoException).code ?? ((error as { cause?: { code?: string } }).cause?.code);
  if (code && NETWORK_CODES.has(code)) return true;
  return error instanceof TypeError && /fetch failed|terminated|network/i.test(error.message);
}

function networkReason(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? (error as NodeJS.ErrnoException).code ?? (cause?.message || error.message);
}

// ---------------------------------------------------------------------------

/** A temporary folder named after the model, linking to the snapshot's files. */
async function namedView(snapshot: string, name: string): Promise<{ path: string; dispose: () => Promise<void> }> {
  const root = await mkdtemp(join(tmpdir(), "edgequant-hf-"));
  const removeOnExit = () => rmSync(root, { recursive: true, force: true });
  process.once("exit", removeOnExit);
  const path = join(root, name);
  await mkdir(path);
  for (const file of await readdir(snapshot)) {
    if (statSync(join(snapshot, file), { throwIfNoEntry: false })?.isFile()) await symlink(join(snapshot, file), join(path, file));
  }
  return {
    path,
    dispose: async () => {
      process.off("exit", removeOnExit);
      await rm(root, { recursive: true, force: true });
    },
  };
}
