/**
 * Release assets on GitHub: the release for a tag is found or created (once,
 * even when several jobs race to create it), and each asset is uploaded to the
 * release's upload_url; an asset of the same name from an earlier run is
 * deleted first, so re-runs replace instead of failing. The Octokit comes from
 * @actions/github and so honours GITHUB_API_URL (GitHub Enterprise, test fakes).
 * Every request loop is bounded; the token is only ever sent, never printed.
 */
import { createReadStream } from "node:fs";
import { getOctokit } from "@actions/github";
import { UserError } from "../errors.js";

export interface ReleaseAsset {
  /** The asset's name on the release (GitHub keeps letters, digits, '.', '-' and '_'). */
  readonly name: string;
  readonly path: string;
  readonly bytes: number;
  readonly contentType: string;
}

interface PublishOptions {
  readonly token: string;
  readonly owner: string;
  readonly repo: string;
  readonly tag: string;
  /** Commit a new tag is created at (GITHUB_SHA). */
  readonly sha?: string;
  /** Release body when the release is created. */
  readonly body?: string;
  readonly log: (line: string) => void;
  /** Attempts per request on 5xx answers and dropped connections (default 3). */
  readonly attempts?: number;
  readonly retryDelayMs?: number;
}

interface PublishResult {
  readonly releaseId: number;
  readonly url: string;
  readonly created: boolean;
  readonly assets: readonly { readonly name: string; readonly url: string; readonly replaced: boolean }[];
}

/** GitHub's limit: each release asset must be under 2 GiB. */
const MAX_ASSET_BYTES = 2 * 1024 ** 3 - 1;
const MAX_PAGES = 50;

interface Release {
  id: number;
  html_url: string;
  upload_url: string;
}
interface Asset {
  id: number;
  name: string;
  browser_download_url: string;
}

export async function publishRelease(options: PublishOptions, assets: readonly ReleaseAsset[]): Promise<PublishResult> {
  const names = new Set<string>();
  for (const asset of assets) {
    if (!/^[A-Za-z0-9._-]+$/.test(asset.name)) throw new UserError(`release asset name '${asset.name}' has characters GitHub would rename; use letters, digits, '.', '-' and '_'`);
    if (names.has(asset.name)) throw new UserError(`two artifacts would upload as the same release asset '${asset.name}'; give them different file names`);
    if (asset.bytes > MAX_ASSET_BYTES) {
      throw new UserError(`release asset '${asset.name}' is ${asset.bytes} bytes; GitHub takes assets under 2 GiB: split GGUF files with split-max-size (e.g. 1G), or MLX shards with max-shard-size`);
    }
    names.add(asset.name);
  }
  const octokit = getOctokit(options.token);
  const { owner, repo, tag } = options;
  const call = <T>(what: string, request: () => Promise<T>) => withRetries(what, request, options);

  const find = async (): Promise<Release | undefined> => {
    try {
      return (await call(`get release ${tag}`, () => octokit.rest.repos.getReleaseByTag({ owner, repo, tag }))).data as Release;
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw error;
    }
  };
  let release = await find();
  let created = false;
  if (!release) {
    try {
      release = (
        await call(`create release ${tag}`, () =>
          octokit.rest.repos.createRelease({ owner, repo, tag_name: tag, name: tag, ...(options.sha ? { target_commitish: options.sha } : {}), ...(options.body ? { body: options.body } : {}) }),
        )
      ).data as Release;
      created = true;
      options.log(`release ${tag}: created`);
    } catch (error) {
      // Another job created it between our look and our create.
      if (statusOf(error) !== 422) throw error;
      release = await find();
      if (!release) throw error;
    }
  } else {
    options.log(`release ${tag}: found (id ${release.id})`);
  }

  const existing = await listAssets(octokit, owner, repo, release.id, options);
  const uploaded: { name: string; url: string; replaced: boolean }[] = [];
  for (const asset of assets) {
    let replaced = false;
    for (const old of existing.filter((a) => a.name === asset.name)) {
      await call(`delete asset ${asset.name}`, () => octokit.rest.repos.deleteReleaseAsset({ owner, repo, asset_id: old.id }));
      replaced = true;
    }
    const upload = () =>
      call(`upload ${asset.name}`, () =>
        octokit.request(`POST ${release!.upload_url}`, {
          name: asset.name,
          data: createReadStream(asset.path) as unknown as string,
          headers: { "content-type": asset.contentType, "content-length": asset.bytes },
        }),
      );
    let response;
    try {
      response = await upload();
    } catch (error) {
      // An asset of this name appeared meanwhile (a concurrent job, a half-finished upload): replace it once.
      if (statusOf(error) !== 422) throw error;
      const again = (await listAssets(octokit, owner, repo, release.id, options)).filter((a) => a.name === asset.name);
      for (const old of again) await call(`delete asset ${asset.name}`, () => octokit.rest.repos.deleteReleaseAsset({ owner, repo, asset_id: old.id }));
      replaced = true;
      response = await upload();
    }
    const data = response.data as Asset;
    options.log(`release ${tag}: ${replaced ? "replaced" : "uploaded"} ${asset.name} (${asset.bytes} bytes)`);
    uploaded.push({ name: asset.name, url: data.browser_download_url, replaced });
  }
  return { releaseId: release.id, url: release.html_url, created, assets: uploaded };
}

async function listAssets(octokit: ReturnType<typeof getOctokit>, owner: string, repo: string, releaseId: number, options: PublishOptions): Promise<Asset[]> {
  const all: Asset[] = [];
  for (let page = 1; page <= MAX_PAGES; page++) {
    const { data } = await withRetries("list assets", () => octokit.rest.repos.listReleaseAssets({ owner, repo, release_id: releaseId, per_page: 100, page }), options);
    all.push(...(data as Asset[]));
    if (data.length < 100) return all;
  }
  throw new UserError(`release has more than ${MAX_PAGES * 100} assets; edgequant stops listing there`);
}

function statusOf(error: unknown): number | undefined {
  const status = (error as { status?: unknown } | null)?.status;
  return typeof status === "number" ? status : undefined;
}

/** Retries 5xx answers and dropped connections; turns auth problems into a message that says what to change. */
async function withRetries<T>(what: string, request: () => Promise<T>, options: PublishOptions): Promise<T> {
  const attempts = Math.max(1, options.attempts ?? 3);
  for (let attempt = 1; ; attempt++) {
    try {
      return await request();
    } catch (error) {
      const status = statusOf(error);
      if (status === 401) throw new UserError(`${what}: GitHub refused the token (HTTP 401); pass a valid token to the action's 'token' input`);
      if (status === 403) throw new UserError(`${what}: the token may not write releases (HTTP 403); give the workflow 'permissions: contents: write'`);
      const retryable = status === undefined ? error instanceof Error && /fetch failed|socket|ECONN|terminated/i.test(`${error.message} ${String((error as { cause?: unknown }).cause)}`) : status >= 500;
      if (!retryable || attempt >= attempts) {
        if (status !== undefined && status !== 404 && status !== 422) throw new UserError(`${what}: GitHub answered HTTP ${status} (${(error as Error).message.split("\n")[0]})`);
        throw error;
      }
      options.log(`${what}: ${status ? `HTTP ${status}` : "connection failed"}; retrying (${attempt + 1} of ${attempts})`);
      await new Promise((done) => setTimeout(done, (options.retryDelayMs ?? 2000) * attempt));
    }
  }
}
