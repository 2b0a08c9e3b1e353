import { createHash } from "node:crypto";
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, realpathSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UserError } from "../src/errors.js";
import { hubCacheDir, parseHubSource, repoFolderName, resolveSource, type ResolveSourceOptions } from "../src/readers/hub.js";
import { TINY_LLAMA, tempDir } from "./support/cli.js";
import { FakeHub, fixtureFiles, gitBlobId, sha256, type FakeFile } from "./support/fake-hub.js";
import { runEdgequant } from "./support/fake-cli.js";

const COMMIT = "0123456789abcdef0123456789abcdef01234567";
const OLD_COMMIT = "fedcba9876543210fedcba9876543210fedcba98";
const TOKEN = "hf_fakeTokenThatMustNeverBePrinted0123";

/** Files a Hub repository has that a conversion does not need: none of them may be fetched. */
const UNNEEDED: FakeFile[] = [
  { path: "README.md", data: Buffer.from("# tiny\n"), lfs: false },
  { path: ".gitattributes", data: Buffer.from("*.safetensors filter=lfs\n"), lfs: false },
  { path: "pytorch_model.bin", data: Buffer.alloc(4096, 7), lfs: true },
  { path: "onnx/model.onnx", data: Buffer.alloc(2048, 3), lfs: true },
];
const NEEDED = readdirSync(TINY_LLAMA).sort();

describe("hf: sources through a loopback Hub", () => {
  let hub: FakeHub;
  const logs: string[] = [];
  const options = (home: string, extra: Partial<ResolveSourceOptions> = {}): ResolveSourceOptions => ({
    hubUrl: hub.url,
    env: { HF_HOME: home },
    progress: false,
    retryDelayMs: 10,
    log: (line) => logs.push(line),
    ...extra,
  });

  beforeAll(async () => {
    hub = await FakeHub.start([
      { id: "test-org/tiny-llama", commit: COMMIT, refs: { main: COMMIT, v1: OLD_COMMIT }, files: fixtureFiles(TINY_LLAMA, UNNEEDED) },
      { id: "test-org/gated-llama", commit: COMMIT, files: fixtureFiles(TINY_LLAMA), gatedToken: TOKEN },
    ]);
  });
  afterAll(async () => {
    await hub?.stop();
    // The token is never printed or logged, whatever happened.
    expect(logs.join("\n")).not.toContain(TOKEN);
  });

  it("parses hf:org/name[@revision] and names the cache folder as huggingface_hub does", () => {
    expect(parseHubSource("hf:HuggingFaceTB/SmolLM2-135M-Instruct")).toEqual({ repo: "HuggingFaceTB/SmolLM2-135M-Instruct" });
    expect(parseHubSource("hf:Qwen/Qwen3-0.6B@refs/pr/3")).toEqual({ repo: "Qwen/Qwen3-0.6B", revision: "refs/pr/3" });
    expect(parseHubSource(`hf:gpt2@${COMMIT}`)).toEqual({ repo: "gpt2", revision: COMMIT });
    // huggingface_hub's own spelling (HfFileSystem paths) names the same model.
    expect(parseHubSource("hf://Qwen/Qwen3-0.6B@main")).toEqual({ repo: "Qwen/Qwen3-0.6B", revision: "main" });
    for (const bad of ["hf:", "hf:a/b/c", "hf:org/na me", "hf:org/name@", "hf:///org/name", "hf:../etc", "hf:org/name@a..b"]) {
      expect(() => parseHubSource(bad), bad).toThrow(UserError);
    }
    expect(repoFolderName("test-org/tiny-llama")).toBe("models--test-org--tiny-llama");
    expect(hubCacheDir({ HF_HOME: "/h" })).toBe("/h/hub");
    expect(hubCacheDir({ HF_HOME: "/h", HF_HUB_CACHE: "/c" })).toBe("/c");
    expect(hubCacheDir({ XDG_CACHE_HOME: "/x" })).toBe("/x/huggingface/hub");
  });

  it("downloads only the needed files into the huggingface_hub cache layout", async () => {
    const home = tempDir("edgequant-hf-home-");
    hub.requests.length = 0;
    const resolved = await resolveSource("hf:test-org/tiny-llama", options(home));
    try {
      const storage = join(home, "hub", "models--test-org--tiny-llama");
      expect(resolved.revision).toBe(COMMIT);
      expect(resolved.fromCache).toBe(false);
      // refs/main holds the commit, without a newline, as huggingface_hub writes it.
      expect(readFileSync(join(storage, "refs", "main"), "utf8")).toBe(COMMIT);
      // snapshots/<commit>/<file> are relative symlinks to blobs named by sha256 (LFS) or git blob id.
      const snapshot = join(storage, "snapshots", COMMIT);
      expect(readdirSync(snapshot).sort()).toEqual(NEEDED);
      for (const name of NEEDED) {
        const data = readFileSync(join(TINY_LLAMA, name));
        const etag = /\.(safetensors|model)$/.test(name) ? sha256(data) : gitBlobId(data);
        expect(lstatSync(join(snapshot, name)).isSymbolicLink(), name).toBe(true);
        expect(readlinkSync(join(snapshot, name)), name).toBe(`../../blobs/${etag}`);
        expect(readFileSync(join(storage, "blobs", etag)).equals(data), name).toBe(true);
      }
      expect(readdirSync(join(storage, "blobs")).filter((b) => b.endsWith(".incomplete"))).toEqual([]);
      // Nothing else was fetched.
      const fetched = new Set(hub.dataRequests().map((r) => decodeURIComponent(r.path)));
      for (const file of UNNEEDED) expect([...fetched].some((p) => p.includes(file.path)), file.path).toBe(false);
      // The folder handed to the converters is named after the model and holds the same files.
      expect(resolved.path.endsWith("/tiny-llama")).toBe(true);
      expect(readdirSync(resolved.path).sort()).toEqual(NEEDED);
      expect(realpathSync(join(resolved.path, "config.json"))).toBe(realpathSync(join(snapshot, "config.json")));
      // The tree listing was paginated (Link: rel="next") and followed.
      expect(hub.requests.filter((r) => r.path.includes("/tree/")).length).toBeGreaterThan(1);
    } finally {
      await resolved.dispose();
    }
    expect(existsSync(resolved.path)).toBe(false);

    // A pinned commit with a complete snapshot needs no request at all.
    hub.requests.length = 0;
    const pinned = await resolveSource(`hf:test-org/tiny-llama@${COMMIT}`, options(home));
    await pinned.dispose();
    expect(pinned.fromCache).toBe(true);
    expect(hub.requests).toEqual([]);

    // HF_HUB_OFFLINE=1 reads refs/main and the snapshot, without the network.
    const offline = await resolveSource("hf:test-org/tiny-llama", options(home, { env: { HF_HOME: home, HF_HUB_OFFLINE: "1" } }));
    await offline.dispose();
    expect(offline).toMatchObject({ revision: COMMIT, fromCache: true });
    expect(hub.requests).toEqual([]);
  });

  it("serves a second run from the cache when the Hub cannot be reached", async () => {
    const home = tempDir("edgequant-hf-home-");
    const first = await resolveSource("hf:test-org/tiny-llama", options(home));
    await first.dispose();
    // A stopped server: a port nothing listens on.
    const dead = await FakeHub.start([]);
    const deadUrl = dead.url;
    await dead.stop();
    const second = await resolveSource("hf:test-org/tiny-llama", options(home, { hubUrl: deadUrl }));
    try {
      expect(second).toMatchObject({ revision: COMMIT, fromCache: true });
      expect(readdirSync(second.path).sort()).toEqual(NEEDED);
      expect(logs.some((l) => l.includes("cannot reach") && l.includes("using the cached snapshot"))).toBe(true);
    } finally {
      await second.dispose();
    }
    // Offline with nothing cached: a clear error, no network.
    const empty = tempDir("edgequant-hf-home-");
    await expect(resolveSource("hf:test-org/tiny-llama", options(empty, { env: { HF_HOME: empty, HF_HUB_OFFLINE: "1" } }))).rejects.toThrow(/HF_HUB_OFFLINE is set and hf:test-org\/tiny-llama is not in the Hub cache/);
    await expect(resolveSource("hf:test-org/tiny-llama", options(empty, { hubUrl: deadUrl }))).rejects.toThrow(/cannot reach .* and hf:test-org\/tiny-llama is not in the Hub cache/);
  });

  it("fails clearly on a gated model without a token, and downloads it with one", async () => {
    const home = tempDir("edgequant-hf-home-");
    const error = await resolveSource("hf:test-org/gated-llama", options(home)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect((error as Error).message).toMatch(/hf:test-org\/gated-llama: the model is gated or private \(HTTP 401\): accept its conditions at .*test-org\/gated-llama, then set HF_TOKEN/);

    const wrong = await resolveSource("hf:test-org/gated-llama", options(home, { env: { HF_HOME: home, HF_TOKEN: "hf_wrongToken000" } })).catch((e: unknown) => e);
    expect((wrong as Error).message).toMatch(/access denied \(HTTP 403\) with the token given/);
    expect((wrong as Error).message).not.toContain("hf_wrongToken000");

    hub.requests.length = 0;
    const resolved = await resolveSource("hf:test-org/gated-llama", options(home, { env: { HF_HOME: home, HF_TOKEN: TOKEN } }));
    await resolved.dispose();
    expect(resolved.revision).toBe(COMMIT);
    // The token goes to the Hub, never to the storage server it redirects to.
    expect(hub.requests.filter((r) => r.server === "hub").every((r) => r.authorization === `Bearer ${TOKEN}`)).toBe(true);
    expect(hub.requests.filter((r) => r.server === "cdn").length).toBeGreaterThan(0);
    expect(hub.requests.filter((r) => r.server === "cdn").some((r) => r.authorization !== undefined)).toBe(false);

    // The token file `huggingface-cli login` writes works too.
    const home2 = tempDir("edgequant-hf-home-");
    writeFileSync(join(home2, "token"), `${TOKEN}\n`);
    const fromFile = await resolveSource("hf:test-org/gated-llama", options(home2, { env: { HF_HOME: home2 } }));
    await fromFile.dispose();
    expect(fromFile.revision).toBe(COMMIT);
  });

  it("resumes a transfer cut midway with a Range request, and the blob's sha256 matches", async () => {
    const home = tempDir("edgequant-hf-home-");
    const data = readFileSync(join(TINY_LLAMA, "model.safetensors"));
    const cut = 5_000_000;
    hub.requests.length = 0;
    hub.dropAfter.set("model.safetensors", cut);
    const resolved = await resolveSource("hf:test-org/tiny-llama", options(home));
    await resolved.dispose();
    const transfers = hub.dataRequests("model.safetensors").filter((r) => r.server === "cdn");
    console.log(`interrupted transfer: ${transfers.map((r) => r.range ?? "(no Range)").join(" -> ")}`);
    expect(transfers.length).toBe(2);
    expect(transfers[0]!.range).toBeUndefined();
    // The server sent `cut` bytes and dropped the connection; how many arrived before the reset
    // depends on timing, so the resume point is whatever was received: more than nothing, at most `cut`.
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(transfers[1]!.range ?? "")?.[1]);
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt).toBeLessThanOrEqual(cut);
    const blob = join(home, "hub", "models--test-org--tiny-llama", "blobs", sha256(data));
    expect(createHash("sha256").update(readFileSync(blob)).digest("hex")).toBe(sha256(data));
    expect(logs.some((l) => /model\.safetensors: transfer interrupted at [\d.]+ [kM]B of 13\.6 MB .*resuming \(attempt 2 of 5\)/.test(l))).toBe(true);
  });

  it("resumes a .incomplete file an earlier process left behind", async () => {
    const home = tempDir("edgequant-hf-home-");
    const data = readFileSync(join(TINY_LLAMA, "model.safetensors"));
    const blobs = join(home, "hub", "models--test-org--tiny-llama", "blobs");
    mkdirSync(blobs, { recursive: true });
    writeFileSync(join(blobs, `${sha256(data)}.incomplete`), data.subarray(0, 1234567));
    hub.requests.length = 0;
    const resolved = await resolveSource("hf:test-org/tiny-llama", options(home));
    await resolved.dispose();
    const transfers = hub.dataRequests("model.safetensors").filter((r) => r.server === "cdn");
    expect(transfers.map((r) => r.range)).toEqual(["bytes=1234567-"]);
    expect(sha256(readFileSync(join(blobs, sha256(data))))).toBe(sha256(data));
    expect(existsSync(join(blobs, `${sha256(data)}.incomplete`))).toBe(false);
  });

  it("starts over when the server ignores Range, and still ends with the right bytes", async () => {
    const home = tempDir("edgequant-hf-home-");
    const data = readFileSync(join(TINY_LLAMA, "model.safetensors"));
    const blobs = join(home, "hub", "models--test-org--tiny-llama", "blobs");
    mkdirSync(blobs, { recursive: true });
    writeFileSync(join(blobs, `${sha256(data)}.incomplete`), Buffer.alloc(1000, 0xff)); // wrong bytes, too
    hub.ignoreRange = true;
    try {
      const resolved = await resolveSource("hf:test-org/tiny-llama", options(home));
      await resolved.dispose();
    } finally {
      hub.ignoreRange = false;
    }
    expect(sha256(readFileSync(join(blobs, sha256(data))))).toBe(sha256(data));
  });

  it("the CLI converts hf:org/name from the Hub, and inspects it later offline from the cache", async () => {
    const home = tempDir();
    const env = { ...process.env, HF_HOME: home, HF_ENDPOINT: hub.url, HF_TOKEN: "" };
    const output = join(tempDir(), "tiny.gguf");
    const converted = await runEdgequant(["convert", "hf:test-org/tiny-llama", "--to", "gguf", "--scheme", "q8_0", "-o", output, "--no-progress"], { env });
    expect(converted.code, converted.stderr).toBe(0);
    const local = join(tempDir(), "local.gguf");
    expect((await runEdgequant(["convert", TINY_LLAMA, "--to", "gguf", "--scheme", "q8_0", "-o", local, "--no-progress"])).code).toBe(0);
    expect(readFileSync(output).equals(readFileSync(local))).toBe(true); // the folder is named after the repo, so even general.name matches
    const offline = await runEdgequant(["inspect", "hf:test-org/tiny-llama", "--json"], { env: { ...env, HF_HUB_OFFLINE: "1", HF_ENDPOINT: "http://127.0.0.1:9" } });
    expect(offline.code, offline.stderr).toBe(0);
    expect(JSON.parse(offline.stdout).tensors).toHaveLength(57);
  });

  it("refuses a listing whose object id or size could reach outside the cache, touching nothing there", async () => {
    const home = tempDir("edgequant-hf-home-");
    const config = readFileSync(join(TINY_LLAMA, "tokenizer_config.json"));
    // A local file of the same size as the listed one, which a traversing blob id would name.
    const secret = join(home, "secret.txt");
    writeFileSync(secret, Buffer.alloc(config.length, "S"));
    const hostile: [string, Record<string, unknown>][] = [
      ["an object id that climbs out of blobs/", { oid: "../../../secret.txt" }],
      ["an absolute object id", { oid: secret }],
      ["a size that is not a byte count", { size: -1 }],
    ];
    try {
      for (const [label, change] of hostile) {
        hub.tamperListing = (entry) => (entry["path"] === "tokenizer_config.json" ? { ...entry, ...change } : entry);
        await expect(resolveSource("hf:test-org/tiny-llama", options(home)), label).rejects.toThrow(/tokenizer_config\.json"; refusing it/);
      }
    } finally {
      hub.tamperListing = undefined;
    }
    const snapshot = join(home, "hub", "models--test-org--tiny-llama", "snapshots", COMMIT);
    const links = existsSync(snapshot) ? readdirSync(snapshot).map((name) => realpathSync(join(snapshot, name))) : [];
    expect(links).not.toContain(realpathSync(secret));
    expect(existsSync(join(snapshot, "tokenizer_config.json"))).toBe(false);
  });

  it("refuses served bytes that are not the listed file (longer, or another content), keeping nothing of them", async () => {
    const cases: [string, (data: Buffer) => Buffer, RegExp][] = [
      ["longer than listed", (data) => Buffer.concat([data, Buffer.alloc(4096, 1)]), /the Hub gives two sizes for 'model\.safetensors' \(13644280 and 13648376\)/],
      ["same size, other bytes", (data) => Buffer.alloc(data.length, 9), /'model\.safetensors' does not match the Hub's checksum \(sha256 [0-9a-f]{64}, got [0-9a-f]{64}\); the partial file was removed/],
    ];
    try {
      for (const [label, change, message] of cases) {
        const home = tempDir("edgequant-hf-home-");
        hub.tamperServed = (path, data) => (path === "model.safetensors" ? change(data) : data);
        await expect(resolveSource("hf:test-org/tiny-llama", options(home)), label).rejects.toThrow(message);
        const snapshot = join(home, "hub", "models--test-org--tiny-llama", "snapshots", COMMIT);
        expect(existsSync(join(snapshot, "model.safetensors")), label).toBe(false);
      }
    } finally {
      hub.tamperServed = undefined;
    }
  });

  it("never follows listed paths or index shard names out of the repository", async () => {
    const home = tempDir("edgequant-hf-home-");
    const outside = join(home, "escaped.safetensors");
    const index = JSON.stringify({ weight_map: { "model.norm.weight": "../../../../escaped.safetensors" } });
    const traversal = await FakeHub.start([
      { id: "test-org/traversal", commit: COMMIT, files: [...fixtureFiles(TINY_LLAMA), { path: "model.safetensors.index.json", data: Buffer.from(index), lfs: false }] },
    ]);
    try {
      await expect(resolveSource("hf:test-org/traversal", { ...options(home), hubUrl: traversal.url })).rejects.toThrow('model.safetensors.index.json: invalid shard name "../../../../escaped.safetensors"');
    } finally {
      await traversal.stop();
    }
    expect(existsSync(outside)).toBe(false);
    expect(readdirSync(home).sort()).toEqual(["hub"]);
  });

  it("a bare org/name that is no local path is answered with its hf: spelling", async () => {
    const missing = "SomeOrg/some-model";
    await expect(resolveSource(missing, { baseDir: tempDir() })).rejects.toThrow(`no such file or folder; for the Hugging Face model '${missing}' write hf:${missing}`);
  });

  it("HF_HUB_DOWNLOAD_TIMEOUT must be a positive number of seconds, as huggingface_hub reads it", async () => {
    await expect(resolveSource("hf:org/name", { env: { HF_HUB_DOWNLOAD_TIMEOUT: "soon" }, offline: true, cacheDir: tempDir() })).rejects.toThrow(
      "HF_HUB_DOWNLOAD_TIMEOUT must be a positive number of seconds, got 'soon'",
    );
  });

  it("names a missing repository or revision", async () => {
    const home = tempDir("edgequant-hf-home-");
    await expect(resolveSource("hf:test-org/nope", options(home))).rejects.toThrow(/hf:test-org\/nope: no such model or revision 'main'.*HTTP 404/);
    await expect(resolveSource("hf:test-org/tiny-llama@v9", options(home))).rejects.toThrow(/no such model or revision 'v9'/);
  });
});
