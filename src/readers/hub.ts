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
 *
 * This module turns a source into a folder to read; ./hub-snapshot.ts finds or
 * fetches the snapshot, ./hub-transfer.ts moves each file's bytes.
 */
import { existsSync, readFileSync, rmSync, statSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, symlink } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { UserError } from "../errors.js";
import { cachedHeaders, cachedSnapshot, COMMIT, downloadSnapshot, type Snapshot, type SnapshotContext } from "./hub-snapshot.js";
import { DEFAULT_ENDPOINT, isNetworkError, networkReason } from "./hub-transfer.js";

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
  /** Progress bars on a terminal, a few lines otherwise (default true, false when $HF_HUB_DISABLE_PROGRESS_BARS is set). */
  readonly progress?: boolean;
  /** Where status lines go (default: stderr). */
  readonly log?: (line: string) => void;
  /** Environment to read HF_* variables from (default: process.env). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Download attempts per file before giving up (default 5); each resumes where the last stopped. */
  readonly attempts?: number;
  /** Abort a transfer that receives nothing for this long (default $HF_HUB_DOWNLOAD_TIMEOUT seconds, else 60 s) and resume it. */
  readonly stallTimeoutMs?: number;
  /** Pause before a retry, times the attempt number (default 1000 ms). */
  readonly retryDelayMs?: number;
  /**
   * Called with the source's config.json before any weights are downloaded (and for cached or
   * local sources once they are found), so a model the caller cannot convert fails before gigabytes move.
   */
  readonly checkConfig?: (configFile: string) => void | Promise<void>;
  readonly fetch?: typeof fetch;
  /**
   * "headers": fetch only each safetensors file's header, by Range requests (what `plan` reads);
   * the folder's shards then hold no weights. A complete snapshot in the cache serves either way.
   */
  readonly weights?: "full" | "headers";
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

export function isHubSource(source: string): boolean {
  return source.startsWith("hf:");
}

/** `hf:org/name[@revision]`, or huggingface_hub's `hf://org/name[@revision]` -> repo and revision. */
export function parseHubSource(source: string): HubSource {
  if (!isHubSource(source)) throw new UserError(`not a Hub source: '${source}' (expected hf:org/name[@revision])`);
  const body = source.startsWith("hf://") ? source.slice(5) : source.slice(3);
  const at = body.indexOf("@");
  const repo = at < 0 ? body : body.slice(0, at);
  const revision = at < 0 ? undefined : body.slice(at + 1);
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

/** $HF_HUB_DOWNLOAD_TIMEOUT (seconds, as huggingface_hub reads it), else 60 s. */
function downloadTimeoutMs(env: Readonly<Record<string, string | undefined>>): number {
  const text = nonEmpty(env["HF_HUB_DOWNLOAD_TIMEOUT"]);
  if (text === undefined) return 60_000;
  const seconds = Number(text);
  if (!Number.isFinite(seconds) || seconds <= 0) throw new UserError(`HF_HUB_DOWNLOAD_TIMEOUT must be a positive number of seconds, got '${text}'`);
  return seconds * 1000;
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
    if (!existsSync(path) && source.includes("/") && REPO_ID.test(source)) {
      throw new UserError(`no such file or folder; for the Hugging Face model '${source}' write hf:${source}`, { file: path });
    }
    const configFile = existsSync(path) && statSync(path).isFile() ? join(dirname(path), "config.json") : join(path, "config.json");
    if (options.checkConfig && existsSync(configFile)) await options.checkConfig(configFile);
    return { path, dispose: async () => {} };
  }
  const { repo, revision = "main" } = parseHubSource(source);
  const env = options.env ?? process.env;
  const ctx: SnapshotContext = {
    source,
    repo,
    revision,
    hubUrl: (options.hubUrl ?? nonEmpty(env["HF_ENDPOINT"]) ?? DEFAULT_ENDPOINT).replace(/\/+$/, ""),
    storage: join(resolve(options.cacheDir ?? hubCacheDir(env)), repoFolderName(repo)),
    token: options.token ?? findToken(env),
    log: options.log ?? ((line) => process.stderr.write(`${line}\n`)),
    progress: options.progress ?? !isTrue(env["HF_HUB_DISABLE_PROGRESS_BARS"]),
    attempts: Math.max(1, options.attempts ?? 5),
    stallTimeoutMs: options.stallTimeoutMs ?? downloadTimeoutMs(env),
    retryDelayMs: options.retryDelayMs ?? 1000,
    fetch: options.fetch ?? globalThis.fetch,
    checkConfig: options.checkConfig,
    weights: options.weights ?? "full",
  };
  // plan: a complete snapshot, else headers an earlier plan fetched
  const cached = async (needTokenizer: boolean) => (await cachedSnapshot(ctx, needTokenizer)) ?? (ctx.weights === "headers" ? await cachedHeaders(ctx) : undefined);
  const offline = options.offline ?? isTrue(env["HF_HUB_OFFLINE"]);

  let snapshot: Snapshot;
  if (offline) {
    const found = await cached(false);
    if (!found) {
      throw new UserError(
        `HF_HUB_OFFLINE is set and ${source} is not in the Hub cache (${ctx.storage}); run once with network access, or unset HF_HUB_OFFLINE`,
      );
    }
    snapshot = found;
  } else {
    // A pinned commit whose snapshot is complete needs no network at all.
    const pinned = COMMIT.test(revision) ? await cached(true) : undefined;
    if (pinned) {
      snapshot = pinned;
    } else {
      try {
        snapshot = await downloadSnapshot(ctx);
      } catch (error) {
        if (!isNetworkError(error)) throw error;
        const found = await cached(false);
        if (!found) {
          throw new UserError(`cannot reach ${ctx.hubUrl} (${networkReason(error)}) and ${source} is not in the Hub cache (${ctx.storage})`);
        }
        ctx.log(`hf: cannot reach ${ctx.hubUrl} (${networkReason(error)}); using the cached snapshot ${found.commit} of ${repo}`);
        snapshot = found;
      }
    }
  }

  if (snapshot.fromCache) await ctx.checkConfig?.(join(snapshot.dir, "config.json"));
  const base = { revision: snapshot.commit, repo, snapshot: snapshot.dir, fromCache: snapshot.fromCache, files: snapshot.files };
  // A folder named after the repository, so converters that name the model after its folder do not call it by its commit hash.
  const view = await namedView(snapshot.dir, repo.split("/").at(-1)!);
  return { ...base, path: view.path, dispose: view.dispose };
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
