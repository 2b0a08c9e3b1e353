// llama.cpp's command-line tools, built from the source of the exact commit node-llama-cpp's
// prebuilt binaries come from (node_modules/node-llama-cpp/llama/gitRelease.bundle, cloned by
// llama-source.ts). node-llama-cpp ships only the addon and shared libraries, so a test that needs
// the real CLI (e.g. peak-RSS measurements under /usr/bin/time) builds it here, CPU only.
//
// Layout, keyed by the bundle's commit:
//   node_modules/.cache/edgequant/llama-build-<commit>/src/          the source tree (git archive)
//   node_modules/.cache/edgequant/llama-build-<commit>/build/        CMake's binary dir; tools in build/bin/
//   node_modules/.cache/edgequant/llama-build-<commit>/configured    stamp: the CMake flags it was configured with
//   node_modules/.cache/edgequant/llama-build-<commit>/build.log     output of the last configure/build
//   node_modules/.cache/edgequant/llama-build-<commit>.lock          held while extracting/configuring/building
//
// A binary newer than the configure stamp is returned without running anything. Otherwise the lock
// (a file created with O_EXCL, holding the owner's pid) serialises processes: the others wait for
// it, then find the binary built. A lock whose owner is dead is taken over. The first build of
// llama-completion (ggml, libllama, llama-common, the tool) took 9m49s wall on 2 cores shared with
// other jobs (8m32s of CPU); llama-tokenize after it, 7 s.

import { spawn, spawnSync } from "node:child_process";
import { closeSync, createWriteStream, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync, writeSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { llamaRepository, llamaSourceCommit } from "./llama-source.js";
import { ORACLES, requireOracle, requireOracleAsync } from "./oracle.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const CACHE = join(ROOT, "node_modules", ".cache", "edgequant");

/**
 * CMake flags: a Release build for this CPU only. No GPU backends (none is on by default), no
 * network: curl is gone from this llama.cpp (LLAMA_CURL is deprecated and ignored, passed OFF anyway),
 * OpenSSL (HTTPS model downloads) off, and the server/web UI (which may fetch a prebuilt UI) not
 * configured at all. Tests, examples and the unified app binary are not configured either; the
 * tools/ folder is, and only the requested target is built.
 */
export const LLAMA_CMAKE_FLAGS = [
  "-DCMAKE_BUILD_TYPE=Release",
  "-DGGML_NATIVE=ON",
  "-DGGML_CCACHE=OFF",
  "-DLLAMA_CURL=OFF",
  "-DLLAMA_OPENSSL=OFF",
  "-DLLAMA_BUILD_TESTS=OFF",
  "-DLLAMA_BUILD_EXAMPLES=OFF",
  "-DLLAMA_BUILD_SERVER=OFF",
  "-DLLAMA_BUILD_APP=OFF",
  "-DLLAMA_BUILD_UI=OFF",
  "-DLLAMA_USE_PREBUILT_UI=OFF",
  "-DLLAMA_BUILD_TOOLS=ON",
  "-DGGML_CUDA=OFF",
  "-DGGML_VULKAN=OFF",
  "-DGGML_METAL=OFF",
] as const;

/** How long a process waits for another's build before giving up. */
const LOCK_WAIT_MS = 60 * 60 * 1000;

/** The directory everything of this commit's build lives in. */
export function llamaBuildDir(): string {
  return join(CACHE, `llama-build-${llamaSourceCommit()}`);
}

/**
 * The path of llama.cpp's `target` executable (e.g. "llama-completion"), built once from the
 * bundled source and reused. Throws an OracleMissingError (ORACLES.llamaCppBuild) when cmake, a
 * compiler, git or tar is missing, or when the build fails (with the tail of the build log).
 */
export async function llamaCppTool(target: string): Promise<string> {
  if (!/^[\w.-]+$/.test(target)) throw new Error(`not a CMake target name: ${JSON.stringify(target)}`);
  const dir = llamaBuildDir();
  const binary = join(dir, "build", "bin", target);
  const stamp = join(dir, "configured");
  // Without the lock held by anyone, so no build is linking the binary right now.
  if (isBuilt(binary, stamp) && !existsSync(`${dir}.lock`)) return binary;
  requireOracle(ORACLES.llamaCppBuild, checkToolchain);
  return requireOracleAsync(ORACLES.llamaCppBuild, async () => {
    mkdirSync(dir, { recursive: true });
    const release = await lock(`${dir}.lock`);
    try {
      if (isBuilt(binary, stamp)) return binary;
      const log = join(dir, "build.log");
      const source = extractSource(dir);
      const build = join(dir, "build");
      const flags = `${LLAMA_CMAKE_FLAGS.join("\n")}\n`;
      if (!existsSync(stamp) || readFileSync(stamp, "utf8") !== flags || !existsSync(join(build, "CMakeCache.txt"))) {
        rmSync(stamp, { force: true });
        await run("cmake", ["-S", source, "-B", build, ...LLAMA_CMAKE_FLAGS], log);
        writeFileSync(stamp, flags);
      }
      await run("cmake", ["--build", build, "--target", target, "-j", "2"], log);
      if (!existsSync(binary)) throw new Error(`cmake built target ${target} but ${binary} does not exist (see ${log})`);
      // Up to date but older than a new configure stamp (a flag change that needed no relink):
      // mark it current, so the next call returns at once.
      if (!isBuilt(binary, stamp)) utimesSync(binary, new Date(), new Date());
      return binary;
    } finally {
      release();
    }
  });
}

function isBuilt(binary: string, stamp: string): boolean {
  try {
    return statSync(binary).mtimeMs > statSync(stamp).mtimeMs;
  } catch {
    return false;
  }
}

function checkToolchain(): void {
  for (const [tool, args] of [["cmake", ["--version"]], ["c++", ["--version"]], ["cc", ["--version"]], ["make", ["--version"]], ["git", ["--version"]], ["tar", ["--version"]]] as const) {
    const result = spawnSync(tool, args, { stdio: "ignore" });
    if (result.error || result.status !== 0) throw new Error(`\`${tool} ${args.join(" ")}\` failed: ${result.error?.message ?? `exit status ${result.status}`}`);
  }
}

/** Writes the source tree once (git archive into a private folder, renamed into place). */
function extractSource(dir: string): string {
  const source = join(dir, "src");
  if (existsSync(join(source, "CMakeLists.txt"))) return source;
  const temporary = `${source}.tmp-${process.pid}-${Date.now()}`;
  mkdirSync(temporary, { recursive: true });
  try {
    const tarball = join(temporary, ".source.tar");
    const archive = spawnSync("git", ["--git-dir", llamaRepository(), "archive", "--format=tar", "-o", tarball, "HEAD"], { encoding: "utf8" });
    if (archive.status !== 0) throw new Error(`git archive failed: ${archive.error?.message ?? archive.stderr}`);
    const untar = spawnSync("tar", ["-x", "-f", tarball, "-C", temporary], { encoding: "utf8" });
    if (untar.status !== 0) throw new Error(`tar -x failed: ${untar.error?.message ?? untar.stderr}`);
    rmSync(tarball);
    rmSync(source, { recursive: true, force: true });
    renameSync(temporary, source);
  } finally {
    rmSync(temporary, { recursive: true, force: true });
  }
  return source;
}

/** Runs a command, appending its output to `log`; rejects with the log's tail on failure. */
function run(command: string, args: readonly string[], log: string): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const out = createWriteStream(log, { flags: "a" });
    out.write(`\n$ ${command} ${args.join(" ")}\n`);
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
    let tail = "";
    const keep = (chunk: Buffer) => {
      out.write(chunk);
      tail = (tail + chunk.toString("utf8")).slice(-4000);
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    child.on("error", (error) => out.end(() => reject(error)));
    child.on("close", (code, signal) =>
      out.end(() => (code === 0 ? resolvePromise() : reject(new Error(`\`${command} ${args.join(" ")}\` failed (${signal ?? `exit ${code}`}); full log ${log}; its tail:\n${tail}`)))),
    );
  });
}

/** Takes the lock file (O_EXCL); waits while a live process holds it, takes it over from a dead one. */
async function lock(path: string): Promise<() => void> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      const fd = openSync(path, "wx");
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return () => rmSync(path, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    let owner = Number.NaN;
    try {
      owner = Number.parseInt(readFileSync(path, "utf8"), 10);
    } catch {
      continue; // released between our open and read
    }
    if (Number.isInteger(owner) && owner > 0 && !alive(owner)) {
      // Its owner died mid-build: remove it (only if it is still that owner's) and compete again.
      // CMake's build is incremental, so whatever the dead build left is reused or redone.
      try {
        if (Number.parseInt(readFileSync(path, "utf8"), 10) === owner) rmSync(path, { force: true });
      } catch {
        /* already gone */
      }
      continue;
    }
    if (Date.now() > deadline) throw new Error(`waited ${LOCK_WAIT_MS / 60000} minutes for ${path} (held by pid ${owner})`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
