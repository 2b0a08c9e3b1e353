// llama.cpp's source tree, as shipped inside node-llama-cpp (llama/gitRelease.bundle), so tests
// read the exact llama.cpp that node-llama-cpp's binaries were built from, on any fresh clone.
//
// The bundle is cloned once (bare) into node_modules/.cache/edgequant/, keyed by its commit.
// Cloning goes to a private temporary directory that is renamed into place, so concurrent test
// processes either win the rename or discard their copy.

import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ORACLES, requireOracle } from "./oracle.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const BUNDLE = join(ROOT, "node_modules", "node-llama-cpp", "llama", "gitRelease.bundle");
const CACHE = join(ROOT, "node_modules", ".cache", "edgequant");

let repository: string | undefined;

function git(args: readonly string[]): Buffer {
  return execFileSync("git", args, { maxBuffer: 1 << 30, stdio: ["ignore", "pipe", "pipe"] });
}

/** The commit the bundle's HEAD points at; an OracleMissingError when there is no bundle (or no git). */
export function llamaSourceCommit(): string {
  return requireOracle(ORACLES.llamaSource, () => {
    if (!existsSync(BUNDLE)) throw new Error(`${BUNDLE} does not exist`);
    const heads = git(["bundle", "list-heads", BUNDLE]).toString("utf8");
    const commit = /^([0-9a-f]{40}) HEAD$/m.exec(heads)?.[1];
    if (!commit) throw new Error(`${BUNDLE}: no HEAD in the bundle's heads:\n${heads}`);
    return commit;
  });
}

/** The bare clone of the bundle (a git dir for `git --git-dir`), made on first use. */
export function llamaRepository(): string {
  if (repository) return repository;
  const target = join(CACHE, `llama.cpp-${llamaSourceCommit()}.git`);
  if (!existsSync(target)) {
    mkdirSync(CACHE, { recursive: true });
    const temporary = `${target}.tmp-${process.pid}-${Date.now()}`;
    git(["clone", "--quiet", "--bare", BUNDLE, temporary]);
    try {
      renameSync(temporary, target);
    } catch (error) {
      rmSync(temporary, { recursive: true, force: true });
      if (!existsSync(target)) throw error;
    }
  }
  repository = target;
  return target;
}

/** A file of llama.cpp's source tree at the bundled commit, e.g. "src/llama-vocab.cpp". */
export function llamaSourceFile(relPath: string): Buffer {
  return git(["--git-dir", llamaRepository(), "show", `HEAD:${relPath}`]);
}

/** The paths of llama.cpp's source tree under a folder, e.g. "conversion/". */
export function llamaSourceListing(folder: string): string[] {
  return git(["--git-dir", llamaRepository(), "ls-tree", "--name-only", "HEAD", folder]).toString("utf8").split("\n").filter(Boolean);
}

/**
 * The same file materialized on disk (for readers that want a path, e.g. GGUF parsers).
 * Written once under the cache directory, atomically.
 */
export function llamaSourcePath(relPath: string): string {
  const path = join(`${llamaRepository()}.files`, relPath);
  if (!existsSync(path)) {
    mkdirSync(dirname(path), { recursive: true });
    const temporary = `${path}.tmp-${process.pid}-${Date.now()}`;
    writeFileSync(temporary, llamaSourceFile(relPath));
    renameSync(temporary, path);
  }
  return path;
}

/** The members of a C enum in a llama.cpp source file, e.g. llamaEnum("include/llama.h", "llama_token_type"). */
export function llamaEnum(relPath: string, name: string): Record<string, number> {
  const source = llamaSourceFile(relPath).toString("utf8");
  const body = new RegExp(`enum ${name}\\s*\\{([^}]*)\\}`).exec(source)?.[1];
  if (body === undefined) throw new Error(`no enum ${name} in llama.cpp's ${relPath}`);
  const members: Record<string, number> = {};
  for (const [, member, value] of body.matchAll(/^\s*(\w+)\s*=\s*(-?\d+)\s*,/gm)) members[member!] = Number(value);
  if (Object.keys(members).length === 0) throw new Error(`enum ${name} in ${relPath}: no NAME = number members`);
  return members;
}
