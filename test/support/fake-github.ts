/**
 * A loopback stand-in for the parts of GitHub's REST API the action uses:
 * get a release by tag, create a release, list / delete release assets, and
 * upload an asset to the release's upload_url (served here under /uploads,
 * as uploads.github.com would). Requests need `Authorization: token <token>`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface FakeAsset {
  readonly id: number;
  readonly name: string;
  readonly contentType: string;
  readonly data: Buffer;
}

export interface FakeRelease {
  readonly id: number;
  readonly tag: string;
  readonly name: string;
  readonly body: string;
  readonly targetCommitish: string | undefined;
  readonly assets: FakeAsset[];
}

export interface GithubRequest {
  readonly method: string;
  readonly path: string;
  readonly authorized: boolean;
  readonly contentLength?: string;
}

const MAX_BODY = 256 * 1024 * 1024;

export class FakeGithub {
  readonly releases: FakeRelease[] = [];
  readonly requests: GithubRequest[] = [];
  /** Answer the next create-release with 422 "already_exists", as when another job created it first. */
  raceOnCreate = false;
  private nextId = 1;

  private constructor(
    private readonly server: Server,
    readonly token: string,
  ) {}

  static async start(token: string): Promise<FakeGithub> {
    let self: FakeGithub | undefined;
    const server = createServer((req, res) => {
      self!.handle(req, res).catch((error: unknown) => {
        if (!res.headersSent) json(res, 500, { message: String(error) });
      });
    });
    self = new FakeGithub(server, token);
    await new Promise<void>((done, fail) => {
      server.once("error", fail);
      server.listen(0, "127.0.0.1", () => done());
    });
    return self;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  count(method: string, pattern: RegExp): number {
    return this.requests.filter((r) => r.method === method && pattern.test(r.path)).length;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((done) => this.server.close(() => done()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", this.url);
    const authorized = req.headers.authorization === `token ${this.token}` || req.headers.authorization === `Bearer ${this.token}`;
    this.requests.push({ method: req.method ?? "GET", path: `${url.pathname}${url.search}`, authorized, ...(req.headers["content-length"] ? { contentLength: req.headers["content-length"] } : {}) });
    const body = await readBody(req);
    if (!authorized) return json(res, 401, { message: "Bad credentials", documentation_url: "https://docs.github.com/rest" });
    const parts = url.pathname.split("/").filter(Boolean).map(decodeURIComponent);
    const uploads = parts[0] === "uploads";
    const p = uploads ? parts.slice(1) : parts;
    if (p[0] !== "repos" || p[3] !== "releases") return json(res, 404, { message: "Not Found" });
    const [owner, repo] = [p[1]!, p[2]!];
    const rest = p.slice(4);

    if (uploads && req.method === "POST" && rest.length === 2 && rest[1] === "assets") {
      const release = this.releases.find((r) => r.id === Number(rest[0]));
      if (!release) return json(res, 404, { message: "Not Found" });
      const name = url.searchParams.get("name");
      if (!name) return json(res, 422, { message: "name is required" });
      if (req.headers["content-length"] === undefined || Number(req.headers["content-length"]) !== body.length) {
        return json(res, 400, { message: `Content-Length ${String(req.headers["content-length"])} does not match ${body.length} bytes` });
      }
      if (release.assets.some((a) => a.name === name)) return json(res, 422, { message: "Validation Failed", errors: [{ resource: "ReleaseAsset", code: "already_exists", field: "name" }] });
      const asset = { id: this.nextId++, name, contentType: String(req.headers["content-type"] ?? ""), data: body };
      release.assets.push(asset);
      return json(res, 201, this.assetJson(owner, repo, release, asset));
    }
    if (req.method === "GET" && rest[0] === "tags" && rest.length === 2) {
      const release = this.releases.find((r) => r.tag === rest[1]);
      return release ? json(res, 200, this.releaseJson(owner, repo, release)) : json(res, 404, { message: "Not Found" });
    }
    if (req.method === "POST" && rest.length === 0) {
      const input = JSON.parse(body.toString("utf8")) as { tag_name: string; name?: string; body?: string; target_commitish?: string };
      if (this.raceOnCreate) {
        this.raceOnCreate = false;
        this.releases.push({ id: this.nextId++, tag: input.tag_name, name: input.tag_name, body: "created by another job", targetCommitish: undefined, assets: [] });
        return json(res, 422, { message: "Validation Failed", errors: [{ resource: "Release", code: "already_exists", field: "tag_name" }] });
      }
      if (this.releases.some((r) => r.tag === input.tag_name)) return json(res, 422, { message: "Validation Failed", errors: [{ resource: "Release", code: "already_exists", field: "tag_name" }] });
      const release = { id: this.nextId++, tag: input.tag_name, name: input.name ?? input.tag_name, body: input.body ?? "", targetCommitish: input.target_commitish, assets: [] };
      this.releases.push(release);
      return json(res, 201, this.releaseJson(owner, repo, release));
    }
    if (req.method === "GET" && rest.length === 2 && rest[1] === "assets") {
      const release = this.releases.find((r) => r.id === Number(rest[0]));
      if (!release) return json(res, 404, { message: "Not Found" });
      const perPage = Number(url.searchParams.get("per_page") ?? "30");
      const page = Number(url.searchParams.get("page") ?? "1");
      return json(res, 200, release.assets.slice((page - 1) * perPage, page * perPage).map((a) => this.assetJson(owner, repo, release, a)));
    }
    if (req.method === "DELETE" && rest[0] === "assets" && rest.length === 2) {
      for (const release of this.releases) {
        const index = release.assets.findIndex((a) => a.id === Number(rest[1]));
        if (index >= 0) {
          release.assets.splice(index, 1);
          res.writeHead(204).end();
          return;
        }
      }
      return json(res, 404, { message: "Not Found" });
    }
    json(res, 404, { message: "Not Found" });
  }

  private releaseJson(owner: string, repo: string, release: FakeRelease) {
    return {
      id: release.id,
      tag_name: release.tag,
      name: release.name,
      body: release.body,
      html_url: `https://github.example/${owner}/${repo}/releases/tag/${release.tag}`,
      upload_url: `${this.url}/uploads/repos/${owner}/${repo}/releases/${release.id}/assets{?name,label}`,
      assets: release.assets.map((a) => this.assetJson(owner, repo, release, a)),
    };
  }

  private assetJson(owner: string, repo: string, release: FakeRelease, asset: FakeAsset) {
    return {
      id: asset.id,
      name: asset.name,
      size: asset.data.length,
      content_type: asset.contentType,
      state: "uploaded",
      browser_download_url: `https://github.example/${owner}/${repo}/releases/download/${release.tag}/${asset.name}`,
    };
  }
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req) {
    total += (chunk as Buffer).length;
    if (total > MAX_BODY) throw new Error("body too large for the fake");
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json; charset=utf-8", "Content-Length": Buffer.byteLength(text) }).end(text);
}
