/**
 * A loopback stand-in for the Hugging Face Hub: the endpoints @huggingface/hub
 * calls (model info by revision, the tree listing with Link pagination, resolve
 * with Range) plus a second server on another port playing the LFS CDN that
 * resolve redirects to. It records every request and can drop a transfer once
 * after N bytes, answer 401/403 for gated repositories, or ignore Range.
 */
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";

export interface FakeFile {
  readonly path: string;
  readonly data: Buffer;
  /** Stored with Git LFS: listed with lfs.oid = sha256, resolved through a redirect to the CDN. */
  readonly lfs: boolean;
}

export interface FakeRepo {
  readonly id: string;
  readonly commit: string;
  /** Branches and tags -> commit; "main" points at `commit` unless given. */
  readonly refs?: Readonly<Record<string, string>>;
  readonly files: readonly FakeFile[];
  /** Requests need `Authorization: Bearer <token>`. */
  readonly gatedToken?: string;
}

export interface RecordedRequest {
  readonly server: "hub" | "cdn";
  readonly method: string;
  readonly path: string;
  readonly range?: string;
  readonly authorization?: string;
}

export const sha256 = (data: Buffer | string) => createHash("sha256").update(data).digest("hex");
export const gitBlobId = (data: Buffer) => createHash("sha1").update(`blob ${data.length}\0`).update(data).digest("hex");

/** The files of a fixture folder; .safetensors and .model files are LFS, as on the Hub. */
export function fixtureFiles(folder: string, extra: readonly FakeFile[] = []): FakeFile[] {
  const files = readdirSync(folder)
    .sort()
    .map((name) => ({ path: name, data: readFileSync(join(folder, name)), lfs: /\.(safetensors|model|bin|pth)$/.test(name) }));
  return [...files, ...extra];
}

export class FakeHub {
  readonly requests: RecordedRequest[] = [];
  /** Bytes of file content sent, by file path (whatever the client then read of them). */
  readonly bytesServed = new Map<string, number>();
  /** File path -> bytes to send before cutting the connection, once. */
  readonly dropAfter = new Map<string, number>();
  /** Answer Range requests for data with the whole file (status 200); the 1-byte probe still gets its range. */
  ignoreRange = false;
  /** Tree listing page size, to exercise Link pagination. */
  pageSize = 3;
  /** Replaces the bytes served for a path (the listing keeps the real size and hashes), as a hostile endpoint would. */
  tamperServed: ((path: string, data: Buffer) => Buffer) | undefined;
  /** Rewrites tree listing entries, as a hostile or compromised endpoint would. */
  tamperListing: ((entry: Record<string, unknown>) => Record<string, unknown>) | undefined;

  private constructor(
    private readonly repos: readonly FakeRepo[],
    private readonly hub: Server,
    private readonly cdn: Server,
  ) {}

  static async start(repos: readonly FakeRepo[]): Promise<FakeHub> {
    let self: FakeHub | undefined;
    const hub = createServer((req, res) => self!.handleHub(req, res));
    const cdn = createServer((req, res) => self!.handleCdn(req, res));
    self = new FakeHub(repos, hub, cdn);
    await Promise.all([listen(hub), listen(cdn)]);
    return self;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.hub.address() as AddressInfo).port}`;
  }

  get cdnUrl(): string {
    return `http://127.0.0.1:${(this.cdn.address() as AddressInfo).port}`;
  }

  /** Requests that carried file data (not the 1-byte probes). */
  dataRequests(path?: string): RecordedRequest[] {
    return this.requests.filter((r) => r.range !== "bytes=0-0" && (r.server === "cdn" || r.path.includes("/resolve/")) && (!path || r.path.endsWith(`/${path}`) || r.path.endsWith(path)));
  }

  async stop(): Promise<void> {
    for (const server of [this.hub, this.cdn]) {
      server.closeAllConnections();
      await new Promise<void>((done) => server.close(() => done()));
    }
  }

  private record(server: "hub" | "cdn", req: IncomingMessage): void {
    this.requests.push({
      server,
      method: req.method ?? "GET",
      path: req.url ?? "",
      ...(req.headers.range ? { range: req.headers.range } : {}),
      ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
    });
  }

  private handleHub(req: IncomingMessage, res: ServerResponse): void {
    this.record("hub", req);
    const url = new URL(req.url ?? "/", this.url);
    const parts = url.pathname.split("/").filter(Boolean).map(decodeURIComponent);
    // /api/models/<org>/<name>/revision/<rev> and /api/models/<org>/<name>/tree/<rev>
    if (parts[0] === "api" && parts[1] === "models") {
      const repo = this.find(`${parts[2]}/${parts[3]}`, res, req);
      if (!repo) return;
      const revision = parts.slice(5).join("/");
      const commit = this.commitOf(repo, revision, res);
      if (!commit) return;
      if (parts[4] === "revision") {
        return json(res, 200, { _id: "0".repeat(24), id: repo.id, sha: commit, private: false, gated: repo.gatedToken ? "auto" : false, downloads: 0, likes: 0, lastModified: "2025-01-01T00:00:00.000Z", pipeline_tag: "text-generation" });
      }
      if (parts[4] === "tree") {
        const cursor = Number(url.searchParams.get("cursor") ?? "0");
        const entries = repo.files.map((f) => ({
          type: "file",
          path: f.path,
          size: f.data.length,
          oid: f.lfs ? gitBlobId(Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${sha256(f.data)}\nsize ${f.data.length}\n`)) : gitBlobId(f.data),
          ...(f.lfs ? { lfs: { oid: sha256(f.data), size: f.data.length, pointerSize: 134 } } : {}),
        }));
        const page = entries.map((entry) => this.tamperListing?.(entry) ?? entry).slice(cursor, cursor + this.pageSize);
        if (cursor + this.pageSize < entries.length) {
          const next = new URL(url);
          next.searchParams.set("cursor", String(cursor + this.pageSize));
          res.setHeader("Link", `<${next.href}>; rel="next"`);
        }
        return json(res, 200, page);
      }
      return json(res, 404, { error: "unknown api" });
    }
    // /<org>/<name>/resolve/<rev>/<path>
    if (parts[2] === "resolve") {
      const repo = this.find(`${parts[0]}/${parts[1]}`, res, req);
      if (!repo) return;
      const commit = this.commitOf(repo, parts[3] ?? "", res);
      if (!commit) return;
      const path = parts.slice(4).join("/");
      const file = repo.files.find((f) => f.path === path);
      if (!file) {
        res.setHeader("X-Error-Code", "EntryNotFound");
        return json(res, 404, { error: "Entry not found" });
      }
      res.setHeader("X-Repo-Commit", commit);
      if (file.lfs) {
        res.setHeader("X-Linked-Etag", `"${sha256(file.data)}"`);
        res.setHeader("X-Linked-Size", String(file.data.length));
        res.setHeader("ETag", `"${gitBlobId(file.data)}"`);
        res.setHeader("Location", `${this.cdnUrl}/lfs/${sha256(file.data)}?file=${encodeURIComponent(path)}`);
        res.writeHead(302).end();
        return;
      }
      res.setHeader("ETag", `"${gitBlobId(file.data)}"`);
      return this.serve(req, res, file);
    }
    json(res, 404, { error: "not found" });
  }

  private handleCdn(req: IncomingMessage, res: ServerResponse): void {
    this.record("cdn", req);
    const url = new URL(req.url ?? "/", this.cdnUrl);
    const hash = url.pathname.split("/")[2];
    const file = this.repos.flatMap((r) => r.files).find((f) => f.lfs && sha256(f.data) === hash);
    if (!file) return json(res, 404, { error: "no such object" });
    res.setHeader("ETag", `"${hash}"`);
    this.serve(req, res, file);
  }

  private serve(req: IncomingMessage, res: ServerResponse, real: FakeFile): void {
    const file = this.tamperServed ? { ...real, data: this.tamperServed(real.path, real.data) } : real;
    const total = file.data.length;
    const match = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? "");
    let start = 0;
    let end = total - 1;
    let status = 200;
    if (match && !(this.ignoreRange && req.headers.range !== "bytes=0-0")) {
      start = Number(match[1]);
      end = match[2] ? Math.min(Number(match[2]), total - 1) : total - 1;
      if (start >= total) {
        res.setHeader("Content-Range", `bytes */${total}`);
        res.writeHead(416).end();
        return;
      }
      status = 206;
      res.setHeader("Content-Range", `bytes ${start}-${end}/${total}`);
    }
    res.setHeader("Accept-Ranges", "bytes");
    res.setHeader("Content-Type", "application/octet-stream");
    res.setHeader("Content-Length", String(end - start + 1));
    res.writeHead(status);
    if (req.method === "HEAD") return void res.end();
    const body = file.data.subarray(start, end + 1);
    this.bytesServed.set(file.path, (this.bytesServed.get(file.path) ?? 0) + body.length);
    const drop = this.dropAfter.get(file.path);
    if (drop !== undefined && body.length > 1) {
      this.dropAfter.delete(file.path);
      res.write(body.subarray(0, drop), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    res.end(body);
  }

  private find(id: string, res: ServerResponse, req: IncomingMessage): FakeRepo | undefined {
    const repo = this.repos.find((r) => r.id === id);
    if (!repo) {
      res.setHeader("X-Error-Code", "RepoNotFound");
      json(res, 404, { error: "Repository not found" });
      return undefined;
    }
    if (repo.gatedToken) {
      const auth = req.headers.authorization;
      if (!auth) {
        res.setHeader("X-Error-Code", "GatedRepo");
        json(res, 401, { error: `Access to model ${id} is restricted. You must have access to it and be authenticated to access it. Please log in.` });
        return undefined;
      }
      if (auth !== `Bearer ${repo.gatedToken}`) {
        res.setHeader("X-Error-Code", "GatedRepo");
        json(res, 403, { error: `Access to model ${id} is restricted and you are not in the authorized list.` });
        return undefined;
      }
    }
    return repo;
  }

  private commitOf(repo: FakeRepo, revision: string, res: ServerResponse): string | undefined {
    const refs: Record<string, string> = { main: repo.commit, ...repo.refs };
    const commit = revision === repo.commit || Object.values(refs).includes(revision) ? revision : refs[revision];
    if (!commit) {
      res.setHeader("X-Error-Code", "RevisionNotFound");
      json(res, 404, { error: `Invalid rev id: ${revision}` });
    }
    return commit;
  }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) }).end(text);
}

function listen(server: Server): Promise<void> {
  return new Promise((done, fail) => {
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => done());
  });
}
