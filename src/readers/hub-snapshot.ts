/**
 * A model's files in the Hugging Face cache, laid out as Python's huggingface_hub lays
 * them out (see ./hub.ts): which files a conversion reads, whether a complete snapshot is
 * already cached, and fetching one (side files first, so the caller can refuse the model
 * from its config.json before the weights move).
 */
import { existsSync } from "node:fs";
import { copyFile, lstat, mkdir, readdir, readFile, readlink, rename, rm, stat, symlink, truncate, writeFile } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { fileDownloadInfo, listFiles, modelInfo, type ListFileEntry } from "@huggingface/hub";
import { UserError } from "../errors.js";
import { formatBytes } from "../progress.js";
import { boundedFetch, checkedToken, fetchRange, hubCall, transfer, type Digest, type HubSession } from "./hub-transfer.js";
import { TOKENIZER_AND_GENERATION_FILES } from "./side-files.js";

export const COMMIT = /^[0-9a-f]{40}$/;

export interface SnapshotContext extends HubSession {
  /** models--org--name in the cache. */
  readonly storage: string;
  /** "headers": each shard's safetensors header only (for `plan`), in a folder of its own, never the snapshot. */
  readonly weights: "full" | "headers";
  readonly checkConfig: ((configFile: string) => void | Promise<void>) | undefined;
}

export interface Snapshot {
  readonly commit: string;
  readonly dir: string;
  readonly files: readonly string[];
  readonly fromCache: boolean;
}

/** What a conversion reads besides the weights (which the index, or the folder, names). */
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

/** The snapshot for ctx.revision if it is in the cache and holds a readable model. */
export async function cachedSnapshot(ctx: SnapshotContext, needTokenizer: boolean): Promise<Snapshot | undefined> {
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

export async function downloadSnapshot(ctx: SnapshotContext): Promise<Snapshot> {
  const credentials = ctx.token ? { accessToken: checkedToken(ctx.token) } : {};
  const api = { hubUrl: ctx.hubUrl, fetch: boundedFetch(ctx), ...credentials };

  const info = await hubCall(ctx, () => modelInfo({ name: ctx.repo, revision: ctx.revision, additionalFields: ["sha"], ...api }));
  const commit = (info as { sha?: unknown }).sha;
  if (typeof commit !== "string" || !COMMIT.test(commit)) throw new UserError(`${ctx.source}: the Hub did not return a commit for revision '${ctx.revision}'`);

  const entries = new Map<string, ListFileEntry>();
  await hubCall(ctx, async () => {
    for await (const entry of listFiles({ repo: ctx.repo, revision: commit, ...api })) {
      // Every listed value is checked before it is used for anything (names, sizes, blob ids).
      if (entry.type === "file") entries.set(entry.path, checkedListing(ctx, entry));
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
  const wanted = ctx.weights === "headers" ? side : [...side, ...weights];
  const totalBytes = wanted.reduce((sum, p) => sum + (entries.get(p)?.size ?? 0), 0);
  const what = ctx.weights === "headers" ? ` and the headers of ${weights.length} safetensors files` : "";
  ctx.log(`hf: ${ctx.repo}@${commit.slice(0, 12)}${ctx.revision !== commit ? ` (${ctx.revision})` : ""}: ${wanted.length} files, ${formatBytes(totalBytes)}${what}, cache ${ctx.storage}`);
  for (const path of side) await fetchOne(path);
  // The caller can refuse the model from its config before the weights move.
  await ctx.checkConfig?.(join(dir, "config.json"));
  if (ctx.weights === "headers") {
    const headers = await fetchHeaders(ctx, api, commit, side, weights.map((path) => entries.get(path)!));
    await recordRef(ctx, commit);
    return headers;
  }
  for (const path of weights) await fetchOne(path);
  await recordRef(ctx, commit);
  return { commit, dir, files: wanted.sort(), fromCache: false };
}

/** As huggingface_hub: refs/<revision> holds the commit a branch or tag resolved to. */
async function recordRef(ctx: SnapshotContext, commit: string): Promise<void> {
  if (ctx.revision === commit) return;
  const ref = join(ctx.storage, "refs", ...ctx.revision.split("/"));
  await mkdir(dirname(ref), { recursive: true });
  const temporary = `${ref}.${process.pid}.tmp`;
  await writeFile(temporary, commit);
  await rename(temporary, ref);
}

/** Where `plan` keeps shards' headers: beside the cache's snapshots, never in them (their data is a sparse hole). */
const headersDir = (ctx: SnapshotContext, commit: string) => join(ctx.storage, "edgequant-headers", commit);
const COMPLETE = ".complete";

/**
 * Each shard's 8-byte length and JSON header by Range requests, written at the start of a sparse
 * file of the shard's real size (so the ordinary safetensors reader validates it as it would the
 * shard), beside links to the snapshot's side files. Nothing reads the hole: plan sizes artifacts
 * from headers alone.
 */
async function fetchHeaders(ctx: SnapshotContext, api: ApiParams, commit: string, side: readonly string[], shards: readonly ListFileEntry[]): Promise<Snapshot> {
  const dir = headersDir(ctx, commit);
  await mkdir(dir, { recursive: true });
  for (const path of side) if (!path.includes("/")) await linkPointer(join(ctx.storage, "snapshots", commit, path), join(dir, path));
  let fetched = 0;
  for (const entry of shards) {
    const info = await hubCall(ctx, () => fileDownloadInfo({ repo: ctx.repo, path: entry.path, revision: commit, ...api }));
    if (!info) throw new UserError(`${ctx.source}: '${entry.path}' is listed but cannot be downloaded`);
    if (entry.size < 8) throw new UserError(`${ctx.source}: '${entry.path}' is ${entry.size} bytes, too short for a safetensors header`);
    const length = (await fetchRange(ctx, info.url, 0, 8)).readBigUInt64LE(0);
    if (length > BigInt(Math.min(MAX_SAFETENSORS_HEADER, entry.size - 8))) {
      throw new UserError(`${ctx.source}: '${entry.path}' declares a ${length}-byte header in a ${entry.size}-byte file (the format allows 100 MB)`);
    }
    const header = await fetchRange(ctx, info.url, 0, 8 + Number(length));
    const file = join(dir, entry.path);
    const temporary = `${file}.${process.pid}.tmp`;
    await writeFile(temporary, header);
    await truncate(temporary, entry.size);
    await rename(temporary, file);
    fetched += header.length;
  }
  await writeFile(join(dir, COMPLETE), `${shards.map((s) => s.path).join("\n")}\n`);
  ctx.log(`hf: ${ctx.repo}@${commit.slice(0, 12)}: read ${formatBytes(fetched)} of safetensors headers, no weights`);
  return { commit, dir, files: [...side, ...shards.map((s) => s.path)].sort(), fromCache: false };
}

/** Headers fetched by an earlier `plan` of this revision. */
export async function cachedHeaders(ctx: SnapshotContext): Promise<Snapshot | undefined> {
  const commit = COMMIT.test(ctx.revision) ? ctx.revision : (await readFile(join(ctx.storage, "refs", ...ctx.revision.split("/")), "utf8").catch(() => "")).trim();
  if (!COMMIT.test(commit)) return undefined;
  const dir = headersDir(ctx, commit);
  if (!existsSync(join(dir, COMPLETE)) || !existsSync(join(dir, "config.json"))) return undefined;
  const files = (await readdir(dir)).filter((name) => name !== COMPLETE).sort();
  return { commit, dir, files, fromCache: true };
}

/** The safetensors format caps the JSON header at 100 MB. */
const MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024;


type ApiParams = { hubUrl: string; fetch: typeof fetch; accessToken?: string };

/**
 * One file into blobs/ and its snapshot link. Blobs are named as huggingface_hub names them:
 * by the sha256 for LFS files and the git blob id otherwise (the tree listing's oids, which are
 * the ETags the Hub sends).
 */
async function fetchFile(ctx: SnapshotContext, api: ApiParams, commit: string, entry: ListFileEntry): Promise<void> {
  const listed = entry.lfs?.oid ?? entry.oid;
  const pointer = join(ctx.storage, "snapshots", commit, ...entry.path.split("/"));
  if (await sizeMatches(pointer, entry.size)) return;
  if (listed && (await sizeMatches(join(ctx.storage, "blobs", listed), entry.size))) {
    await linkPointer(join(ctx.storage, "blobs", listed), pointer); // the same content under another commit
    return;
  }

  const info = await hubCall(ctx, () => fileDownloadInfo({ repo: ctx.repo, path: entry.path, revision: commit, ...api }));
  if (!info) throw new UserError(`${ctx.source}: '${entry.path}' is listed but cannot be downloaded`);
  if (info.size !== entry.size) throw new UserError(`${ctx.source}: the Hub gives two sizes for '${entry.path}' (${entry.size} and ${info.size})`);
  const etag = listed ?? info.etag.replace(/^W\//, "").replaceAll('"', "");
  if (!BLOB_ID.test(etag)) throw new UserError(`${ctx.source}: unexpected ETag for '${entry.path}'`);
  const blob = join(ctx.storage, "blobs", etag);
  if (!(await sizeMatches(blob, entry.size))) {
    await mkdir(dirname(blob), { recursive: true });
    await transfer(ctx, info.url, `${blob}.incomplete`, entry.size, expectedDigest(entry), entry.path);
    await rename(`${blob}.incomplete`, blob);
  }
  await linkPointer(blob, pointer);
}

/** A git blob id (sha1) or an LFS sha256: the only names blobs/ may hold. */
const BLOB_ID = /^[0-9a-f]{40}$|^[0-9a-f]{64}$/;

/**
 * The listing's path, size and object id, checked before any of them reaches the filesystem:
 * a hostile endpoint could otherwise name a blob `../../<some local file>` and have it linked
 * into the snapshot.
 */
function checkedListing(ctx: SnapshotContext, entry: ListFileEntry): ListFileEntry {
  const problem = (what: string) => new UserError(`${ctx.source}: the Hub listed ${what} for ${JSON.stringify(entry.path)}; refusing it`);
  if (typeof entry.path !== "string" || !safeRelativePath(entry.path)) throw new UserError(`${ctx.source}: the Hub listed an unsafe path ${JSON.stringify(entry.path)}`);
  if (!Number.isSafeInteger(entry.size) || entry.size < 0) throw problem(`an invalid size ${JSON.stringify(entry.size)}`);
  const listed = entry.lfs?.oid ?? entry.oid;
  if (listed !== undefined && (typeof listed !== "string" || !BLOB_ID.test(listed))) throw problem(`an invalid object id ${JSON.stringify(listed)}`);
  if (entry.lfs !== undefined && (typeof entry.lfs !== "object" || entry.lfs === null)) throw problem(`an invalid lfs record ${JSON.stringify(entry.lfs)}`);
  return entry;
}

function expectedDigest(entry: ListFileEntry): Digest | undefined {
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
