// The test caches (.cache/bench) are keyed by content, never by timestamps: a touched file keeps
// its key, one changed byte anywhere in the converter or the source gives a new one.

import { cpSync, mkdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { TINY_LLAMA, tempDir } from "./support/cli.js";
import { CONVERTER_FILES, contentDigest, converterDigest, folderDigest } from "./support/content-key.js";
import { ggufCacheKey } from "./support/gguf-cache.js";

const dir = tempDir("edgequant-cache-key-");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("content keys of cached test inputs", () => {
  it("a folder's key ignores timestamps and location, and changes with any byte, name or added file", () => {
    const a = join(dir, "a");
    mkdirSync(join(a, "sub"), { recursive: true });
    writeFileSync(join(a, "x.bin"), Buffer.from([1, 2, 3]));
    writeFileSync(join(a, "sub", "y.txt"), "y");
    const key = folderDigest(a);
    expect(key).toMatch(/^[0-9a-f]{64}$/);
    utimesSync(join(a, "x.bin"), new Date(0), new Date(0));
    expect(folderDigest(a)).toBe(key);
    cpSync(a, join(dir, "elsewhere"), { recursive: true });
    expect(folderDigest(join(dir, "elsewhere"))).toBe(key);

    writeFileSync(join(a, "x.bin"), Buffer.from([1, 2, 4]));
    expect(folderDigest(a)).not.toBe(key);
    writeFileSync(join(a, "x.bin"), Buffer.from([1, 2, 3]));
    expect(folderDigest(a)).toBe(key);
    writeFileSync(join(a, "sub", "z.txt"), "");
    expect(folderDigest(a)).not.toBe(key);
    rmSync(join(a, "sub", "z.txt"));
    writeFileSync(join(a, "x2.bin"), readFileSync(join(a, "x.bin")));
    rmSync(join(a, "x.bin"));
    expect(folderDigest(a)).not.toBe(key);
  });

  it("the converter key covers src/, wasm/ and package-lock.json; a GGUF key adds the source and the scheme", () => {
    expect(CONVERTER_FILES).toEqual(["src", "wasm", "package-lock.json"]);
    expect(converterDigest()).toBe(contentDigest(["package-lock.json", "wasm", "src"]));
    expect(converterDigest()).not.toBe(contentDigest(["src"]));
    const source = join(dir, "model");
    cpSync(TINY_LLAMA, source, { recursive: true });
    const key = ggufCacheKey(source, "q4_k_m");
    expect(ggufCacheKey(TINY_LLAMA, "q4_k_m")).toBe(key);
    expect(ggufCacheKey(source, "q8_0")).not.toBe(key);
    const config = JSON.parse(readFileSync(join(source, "config.json"), "utf8"));
    writeFileSync(join(source, "config.json"), JSON.stringify({ ...config, rms_norm_eps: 1e-6 }));
    expect(ggufCacheKey(source, "q4_k_m")).not.toBe(key);
  });
});
