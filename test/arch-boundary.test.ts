// An architecture is described once, in src/arch/: no other code names a family or a
// Hugging Face tensor. This strips comments (prose may mention them) and looks for both in
// what is left: string, template and regex literals, and the code around them.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { ARCHITECTURES } from "../src/arch/index.js";
import { FOREIGN_GRAPH_TRAITS } from "../src/arch/llama-cpp-graphs.js";
import { TENSOR_ROLES } from "../src/arch/tensor-names.js";

const SRC = join(import.meta.dirname, "..", "src");
const ALLOWED = ["arch", "tokenizer"].map((folder) => join(SRC, folder));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) return ALLOWED.includes(path) ? [] : sourceFiles(path);
    return path.endsWith(".ts") ? [path] : [];
  });
}

/**
 * The file with comments blanked out (line numbers kept) and import lines dropped. Comments are
 * recognised where this code base writes them: whole-line `//` and `/* ... *\/` blocks, and a
 * trailing ` // ` outside quotes.
 */
export function codeWithoutComments(text: string): string {
  let inBlock = false;
  return text
    .split("\n")
    .map((line) => {
      const trimmed = line.trim();
      if (inBlock) {
        inBlock = !trimmed.includes("*/");
        return "";
      }
      if (trimmed.startsWith("/*")) {
        inBlock = !trimmed.includes("*/");
        return "";
      }
      if (trimmed.startsWith("//") || /^(import|export)\b.*\bfrom\s/.test(trimmed)) return "";
      const trailing = line.search(/\s\/\/\s/);
      if (trailing > 0 && (line.slice(0, trailing).match(/["'`]/g)?.length ?? 0) % 2 === 0) return line.slice(0, trailing);
      return line;
    })
    .join("\n");
}

function hits(file: string, test: (line: string) => string | undefined): string[] {
  return codeWithoutComments(readFileSync(file, "utf8"))
    .split("\n")
    .flatMap((line, i) => {
      const found = test(line);
      return found === undefined ? [] : [`${relative(SRC, file)}:${i + 1} ${found}: ${line.trim()}`];
    });
}

/** Family names: every converted architecture's and every foreign one fit knows. */
const FAMILIES = new Set([...ARCHITECTURES.flatMap((a) => [a.gguf, ...a.hfArchitectures]), ...Object.keys(FOREIGN_GRAPH_TRAITS)]);

/** Hugging Face names: whole top-level names, per-block tails and their distinctive last parts (q_proj, embed_tokens...). */
const GGUF_ROLES = new Set(Object.keys(TENSOR_ROLES));
/** GGUF names' per-block tails and last parts: not evidence of a Hugging Face name (LFM2's ffn_norm and in_proj are both). */
const GGUF_PARTS = new Set(Object.values(TENSOR_ROLES).flatMap(({ gguf }) => {
  const tail = gguf.includes("{bid}.") ? gguf.slice(gguf.indexOf("{bid}.") + 6) : gguf;
  return [tail, tail.split(".").at(-1)!];
}));
const HF_FRAGMENTS = [...new Set(
  [...Object.values(TENSOR_ROLES), ...ARCHITECTURES.flatMap((a) => Object.values(a.hfNames ?? {}).map((hf) => ({ hf })))].flatMap(({ hf }) =>
    hf.flatMap((name: string) => {
      const tail = name.includes("{bid}.") ? name.slice(name.indexOf("{bid}.") + 6) : name;
      const last = tail.split(".").at(-1)!;
      // A distinctive last part, unless it is also a GGUF role's name (BitNet's attn_sub_norm is both).
      return (last.includes("_") && !GGUF_ROLES.has(last) ? [tail, last] : [tail]).filter((fragment) => !GGUF_PARTS.has(fragment));
    }),
  ),
)];

describe("no architecture or Hugging Face tensor name outside src/arch/ and src/tokenizer/", () => {
  const files = sourceFiles(SRC);

  it("reads the source tree", () => {
    expect(files.length).toBeGreaterThan(50);
    expect(FAMILIES.has("qwen3")).toBe(true);
    expect(HF_FRAGMENTS).toEqual(expect.arrayContaining(["self_attn.q_proj", "q_proj", "embed_tokens", "input_layernorm", "lm_head"]));
  });

  const quotedFamily = (line: string) => [...FAMILIES].find((family) => ["\"", "'", "`"].some((q) => line.includes(`${q}${family}${q}`)));
  // As a whole name: q_norm is a Hugging Face name, attn_q_norm a GGUF role. A regex may escape the dots.
  const fragmentPatterns = HF_FRAGMENTS.map((fragment) => ({ fragment, regex: new RegExp(`(?<![\\w])${fragment.replaceAll(".", "\\\\?\\.")}(?![\\w])`) }));
  const hfFragment = (line: string) => fragmentPatterns.find(({ regex }) => regex.test(line))?.fragment;

  it("no literal is a family name", () => {
    expect(files.flatMap((file) => hits(file, quotedFamily))).toEqual([]);
  });

  it("no code holds a Hugging Face tensor name", () => {
    expect(files.flatMap((file) => hits(file, hfFragment))).toEqual([]);
  });

  it("would catch one: planted names are found, and comments are not code", () => {
    const planted = join(import.meta.dirname, "fixtures", "arch-boundary-planted.ts.txt");
    expect(hits(planted, quotedFamily)).toHaveLength(1);
    expect(hits(planted, hfFragment)).toHaveLength(2);
  });
});
