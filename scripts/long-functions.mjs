#!/usr/bin/env node
// Lists the functions longer than a limit (default 100 lines), longest first, as
// "lines  file:line  name". Functions are found with the TypeScript compiler's own
// parser (typescript/unstable/sync, which talks to the bundled tsgo), so a function
// is what the compiler says it is: declarations, methods, constructors, accessors,
// function expressions and arrow functions, each counted from its first token to its
// last line, nested functions counted on their own as well as inside their parent.
//
//   node scripts/long-functions.mjs [--max N] [folder ...]     (default: src)
//
// Exits 1 when any function is over the limit, so a CI step can use it.
import { relative, resolve } from "node:path";
import { parseArgs } from "node:util";
import { API } from "typescript/unstable/sync";
import { SyntaxKind } from "typescript/unstable/ast";

const { values, positionals } = parseArgs({ options: { max: { type: "string", default: "100" } }, allowPositionals: true });
const max = Number(values.max);
if (!Number.isSafeInteger(max) || max < 1) {
  console.error(`--max takes a positive whole number of lines; got '${values.max}'`);
  process.exit(2);
}
const root = process.cwd();
const folders = (positionals.length > 0 ? positionals : ["src"]).map((folder) => `${resolve(root, folder)}/`);

const FUNCTION_KINDS = new Set([
  SyntaxKind.FunctionDeclaration,
  SyntaxKind.MethodDeclaration,
  SyntaxKind.Constructor,
  SyntaxKind.GetAccessor,
  SyntaxKind.SetAccessor,
  SyntaxKind.FunctionExpression,
  SyntaxKind.ArrowFunction,
]);

/** The name a reader would look for: its own, or the variable, property or class member it is assigned to. */
function nameOf(node) {
  if (node.kind === SyntaxKind.Constructor) return `${nameOf(node.parent)}.constructor`;
  const own = node.name?.text;
  const container = node.parent;
  if (own !== undefined) {
    return container?.kind === SyntaxKind.ClassDeclaration && container.name ? `${container.name.text}.${own}` : own;
  }
  if (container?.kind === SyntaxKind.VariableDeclaration || container?.kind === SyntaxKind.PropertyAssignment) return container.name?.text ?? "(anonymous)";
  return "(anonymous)";
}

function lineOf(lineStarts, position) {
  let lo = 0;
  let hi = lineStarts.length - 1;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (lineStarts[mid] <= position) lo = mid;
    else hi = mid - 1;
  }
  return lo + 1;
}

const api = new API({ cwd: root });
const found = [];
try {
  const snapshot = api.updateSnapshot({ openProject: resolve(root, "tsconfig.json") });
  const program = snapshot.getProjects()[0].program;
  for (const fileName of program.getSourceFileNames()) {
    if (!folders.some((folder) => fileName.startsWith(folder)) || fileName.endsWith(".d.ts")) continue;
    const file = program.getSourceFile(fileName);
    const lineStarts = file.getLineStarts();
    const visit = (node) => {
      if (FUNCTION_KINDS.has(node.kind)) {
        const first = lineOf(lineStarts, node.getStart(file));
        const last = lineOf(lineStarts, node.end - 1);
        const lines = last - first + 1;
        if (lines > max) found.push({ lines, where: `${relative(root, fileName)}:${first}`, name: nameOf(node) });
      }
      node.forEachChild(visit);
    };
    file.forEachChild(visit);
  }
} finally {
  api.close();
}

found.sort((a, b) => b.lines - a.lines || a.where.localeCompare(b.where));
for (const f of found) console.log(`${String(f.lines).padStart(5)}  ${f.where}  ${f.name}`);
console.log(found.length === 0 ? `no function over ${max} lines` : `${found.length} function(s) over ${max} lines`);
process.exitCode = found.length === 0 ? 0 : 1;
