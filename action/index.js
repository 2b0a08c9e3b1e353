// Entry point of the edgequant GitHub Action (action.yml). Plain JavaScript with
// no dependencies, so it starts on a bare checkout of the action:
//  1. the action's code is the package's own build, dist/pipeline/action.js;
//  2. on a fresh checkout (no node_modules or dist) it installs the locked
//     runtime dependencies (no dev dependencies, no install scripts: the
//     test-only llama.cpp and ONNX Runtime binaries are not needed), then
//     builds dist with the TypeScript compiler and Node types the lockfile pins,
//     installed aside in .edgequant-build/;
//  3. EDGEQUANT_ACTION_FROM_SOURCE=1 runs src/pipeline/action.ts through tsx
//     instead (the tests, and development in this repository).
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const fromSource = process.env.EDGEQUANT_ACTION_FROM_SOURCE === "1";
const built = join(root, "dist", "pipeline", "action.js");
const npm = process.platform === "win32" ? "npm.cmd" : "npm";

function step(title, command, args, { mayFail = false } = {}) {
  process.stdout.write(`::group::${title}\n`);
  const result = spawnSync(command, args, { cwd: root, stdio: ["ignore", "inherit", "inherit"], timeout: 30 * 60 * 1000, shell: process.platform === "win32" });
  process.stdout.write("::endgroup::\n");
  if (result.status === 0) return true;
  const what = `'${command} ${args.join(" ")}' failed (${result.error?.message ?? `exit ${result.status}`})`;
  if (mayFail) {
    process.stdout.write(`::warning::edgequant action: ${what}\n`);
    return false;
  }
  process.stdout.write(`::error::edgequant action: ${what}\n`);
  process.exit(1);
}

/** The version package-lock.json pins for a package. */
function locked(name) {
  const lock = JSON.parse(readFileSync(join(root, "package-lock.json"), "utf8"));
  const version = lock.packages?.[`node_modules/${name}`]?.version;
  if (!version) throw new Error(`package-lock.json pins no ${name}`);
  return `${name}@${version}`;
}

let entry;
if (fromSource) {
  const { register } = await import(pathToFileURL(join(root, "node_modules", "tsx", "dist", "esm", "api", "index.mjs")).href);
  register();
  entry = join(root, "src", "pipeline", "action.ts");
} else {
  if (!existsSync(join(root, "node_modules", ".package-lock.json"))) {
    const flags = ["--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund"];
    // npm ci installs exactly the lockfile; if the lockfile is out of step with package.json, resolve instead (with a warning).
    if (!step("edgequant: install dependencies", npm, ["ci", ...flags], { mayFail: true })) {
      step("edgequant: install dependencies (lockfile out of date)", npm, ["install", "--no-save", ...flags]);
    }
  }
  if (!existsSync(built)) {
    const tools = join(root, ".edgequant-build");
    step("edgequant: install the compiler", npm, ["install", "--prefix", tools, "--no-save", "--no-package-lock", "--ignore-scripts", "--no-audit", "--no-fund", locked("typescript"), locked("@types/node")]);
    step("edgequant: build", process.execPath, [join(tools, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.build.json", "--typeRoots", join(tools, "node_modules", "@types")]);
  }
  entry = built;
}

const { runAction } = await import(pathToFileURL(entry).href);
await runAction();
